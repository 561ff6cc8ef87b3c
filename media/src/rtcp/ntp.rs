//! NTP timestamps (RFC 3550 §4): 64-bit fixed point seconds since 1900.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp: seconds in the high 32 bits, fraction in the low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// The NTP time of a wall-clock value. Times before 1970 map to the
    /// Unix epoch: a wall clock that far off is broken, and RTCP only uses
    /// differences.
    pub fn from_system_time(t: SystemTime) -> Self {
        let since_unix = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since_unix.as_secs().wrapping_add(NTP_UNIX_OFFSET) & 0xffff_ffff;
        let frac = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
        NtpTime((secs << 32) | frac)
    }

    /// The middle 32 bits (16.16 fixed point seconds), the form LSR and
    /// DLSR use (RFC 3550 §6.4.1).
    pub fn compact(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// A duration as 16.16 fixed-point seconds (the DLSR unit, 1/65536 s),
/// saturating at the field's maximum.
pub fn duration_to_compact(d: Duration) -> u32 {
    let units = d.as_nanos() * 65_536 / 1_000_000_000;
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// 16.16 fixed-point seconds as a duration.
pub fn compact_to_duration(units: u32) -> Duration {
    Duration::from_nanos(u64::from(units) * 1_000_000_000 / 65_536)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_epoch_is_ntp_offset() {
        let t = NtpTime::from_system_time(UNIX_EPOCH);
        assert_eq!(t.0 >> 32, NTP_UNIX_OFFSET);
        assert_eq!(t.0 & 0xffff_ffff, 0);
    }

    #[test]
    fn half_second_fraction_and_compact() {
        let t = NtpTime::from_system_time(UNIX_EPOCH + Duration::from_millis(1500));
        assert_eq!(t.0 & 0xffff_ffff, 0x8000_0000);
        assert_eq!(t.compact() & 0xffff, 0x8000);
        assert_eq!(t.compact() >> 16, ((NTP_UNIX_OFFSET + 1) & 0xffff) as u32);
    }

    #[test]
    fn compact_duration_round_trip() {
        let d = Duration::from_millis(1250);
        assert_eq!(duration_to_compact(d), 0x0001_4000);
        assert_eq!(compact_to_duration(0x0001_4000), d);
        assert_eq!(duration_to_compact(Duration::from_secs(1 << 20)), u32::MAX);
    }
}
