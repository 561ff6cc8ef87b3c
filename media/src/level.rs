//! Level conventions shared by every module that talks about loudness.
//!
//! Telephony measures levels in dBm0 against G.711's digital milliwatt:
//! 0 dBm0 is a sine of peak amplitude [`DBM0_PEAK`] in 16-bit linear PCM,
//! so a full-scale sine is +3.17 dBm0. Tones, DTMF, the VAD and the tests
//! all use these conversions so that "−10 dBm0" means the same signal
//! everywhere.

/// Peak amplitude of a 0 dBm0 sine in 16-bit linear PCM (G.711's digital
/// milliwatt).
pub const DBM0_PEAK: f64 = 22_706.0;

/// Converts a level in dBm0 to the peak amplitude of a sine in 16-bit PCM.
pub fn dbm0_to_peak(dbm0: f64) -> f64 {
    DBM0_PEAK * 10f64.powf(dbm0 / 20.0)
}

/// Converts the peak amplitude of a sine in 16-bit PCM to dBm0.
pub fn peak_to_dbm0(peak: f64) -> f64 {
    20.0 * (peak / DBM0_PEAK).log10()
}

/// Linear amplitude factor for a gain in dB (`-inf` gives 0).
pub fn db_to_gain(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// Gain in dB for a linear amplitude factor.
pub fn gain_to_db(gain: f32) -> f32 {
    20.0 * gain.log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbm0_peak_round_trip() {
        assert!((dbm0_to_peak(0.0) - 22_706.0).abs() < 1e-9);
        // Full scale is about +3.17 dBm0 (G.711); 32767 is a hair above μ-law's peak.
        assert!((peak_to_dbm0(32767.0) - 3.17).abs() < 0.02);
        assert!((peak_to_dbm0(dbm0_to_peak(-19.0)) + 19.0).abs() < 1e-9);
    }
}
