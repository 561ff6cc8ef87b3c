//! DTMF tone generation: a phase-continuous two-oscillator generator and a
//! dial-string renderer.

use std::f64::consts::TAU;
use std::time::Duration;

use super::{Digit, DtmfError};
use crate::level::dbm0_to_peak;

/// Level and frequency error of the two tones of a digit.
///
/// Twist is expressed, as in Q.24, as the high-group level minus the
/// low-group level: positive twist means the high tone is stronger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneParams {
    /// Level of the low-group tone, dBm0.
    pub low_dbm0: f64,
    /// Level of the high-group tone, dBm0.
    pub high_dbm0: f64,
    /// Frequency error of the low-group tone, percent of nominal.
    pub low_offset_pct: f64,
    /// Frequency error of the high-group tone, percent of nominal.
    pub high_offset_pct: f64,
}

impl Default for ToneParams {
    /// −10 dBm0 per tone, no twist, nominal frequencies: a typical telephone.
    fn default() -> Self {
        ToneParams::level(-10.0)
    }
}

impl ToneParams {
    /// Both tones at `dbm0`, nominal frequencies.
    pub fn level(dbm0: f64) -> Self {
        ToneParams {
            low_dbm0: dbm0,
            high_dbm0: dbm0,
            low_offset_pct: 0.0,
            high_offset_pct: 0.0,
        }
    }

    /// Sets the high tone `twist_db` above (or below, if negative) the low
    /// tone, keeping the low tone where it is.
    pub fn with_twist(mut self, twist_db: f64) -> Self {
        self.high_dbm0 = self.low_dbm0 + twist_db;
        self
    }

    /// Sets the frequency error of each group, in percent.
    pub fn with_offsets(mut self, low_pct: f64, high_pct: f64) -> Self {
        self.low_offset_pct = low_pct;
        self.high_offset_pct = high_pct;
        self
    }
}

/// One sine oscillator. The phase is kept in cycles in f64 so that it stays
/// exact over hours of signal (f32 would drift audibly after minutes).
#[derive(Debug, Clone)]
struct Osc {
    phase: f64,
    step: f64,
    amp: f64,
}

impl Osc {
    fn next(&mut self) -> f64 {
        let v = self.amp * (TAU * self.phase).sin();
        self.phase += self.step;
        if self.phase >= 1.0 {
            self.phase -= 1.0;
        }
        v
    }
}

/// A stateful DTMF generator: two sine oscillators whose phase carries over
/// from one call to the next, so a digit can be produced in 20 ms frames
/// without a click at each frame boundary.
#[derive(Debug, Clone)]
pub struct DtmfGenerator {
    sample_rate: u32,
    params: ToneParams,
    low: Osc,
    high: Osc,
}

impl DtmfGenerator {
    /// A generator for `digit` at `sample_rate` Hz, both phases at zero.
    pub fn new(sample_rate: u32, digit: Digit, params: ToneParams) -> Result<Self, DtmfError> {
        if sample_rate == 0 {
            return Err(DtmfError::UnsupportedRate(sample_rate));
        }
        let mut g = DtmfGenerator {
            sample_rate,
            params,
            low: Osc {
                phase: 0.0,
                step: 0.0,
                amp: 0.0,
            },
            high: Osc {
                phase: 0.0,
                step: 0.0,
                amp: 0.0,
            },
        };
        g.set_digit(digit)?;
        Ok(g)
    }

    /// Switches to another digit (or re-applies the parameters), keeping the
    /// oscillator phases so the waveform stays continuous.
    pub fn set_digit(&mut self, digit: Digit) -> Result<(), DtmfError> {
        let p = self.params;
        for v in [p.low_dbm0, p.high_dbm0, p.low_offset_pct, p.high_offset_pct] {
            if !v.is_finite() {
                return Err(DtmfError::InvalidParameter(
                    "levels and offsets must be finite",
                ));
            }
        }
        if p.low_offset_pct <= -100.0 || p.high_offset_pct <= -100.0 {
            return Err(DtmfError::InvalidParameter("offset must be above -100 %"));
        }
        let (fl, fh) = digit.frequencies();
        let fl = fl * (1.0 + p.low_offset_pct / 100.0);
        let fh = fh * (1.0 + p.high_offset_pct / 100.0);
        let nyquist = f64::from(self.sample_rate) / 2.0;
        for f in [fl, fh] {
            if f >= nyquist {
                return Err(DtmfError::AboveNyquist {
                    freq_hz: f,
                    sample_rate: self.sample_rate,
                });
            }
        }
        let rate = f64::from(self.sample_rate);
        self.low.step = fl / rate;
        self.high.step = fh / rate;
        self.low.amp = dbm0_to_peak(p.low_dbm0);
        self.high.amp = dbm0_to_peak(p.high_dbm0);
        Ok(())
    }

    /// The sample rate this generator was built for.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Overwrites `out` with the next `out.len()` samples, saturating at the
    /// 16-bit limits (a pair at −3 dBm0 with positive twist clips).
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            *s = saturate(self.low.next() + self.high.next());
        }
    }

    /// Adds the next `out.len()` samples to what is already in `out`
    /// (mixing over speech or noise), saturating.
    pub fn add_to(&mut self, out: &mut [i16]) {
        for s in out {
            *s = saturate(f64::from(*s) + self.low.next() + self.high.next());
        }
    }
}

fn saturate(v: f64) -> i16 {
    v.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
}

fn samples_for(d: Duration, sample_rate: u32) -> usize {
    (d.as_secs_f64() * f64::from(sample_rate)).round() as usize
}

/// Appends a dial string to `out`: each digit of `digits` as a tone of
/// length `on` followed by `off` of silence. Tones are gated (no ramp), as
/// in Q.24 test signals. Each digit starts at zero phase.
pub fn render_sequence(
    sample_rate: u32,
    digits: &str,
    params: ToneParams,
    on: Duration,
    off: Duration,
    out: &mut Vec<i16>,
) -> Result<(), DtmfError> {
    let seq = Digit::parse_sequence(digits)?;
    let on = samples_for(on, sample_rate);
    let off = samples_for(off, sample_rate);
    out.reserve(seq.len() * (on + off));
    for d in seq {
        let mut g = DtmfGenerator::new(sample_rate, d, params)?;
        let start = out.len();
        out.resize(start + on, 0);
        g.fill(&mut out[start..]);
        out.resize(out.len() + off, 0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Correlates `x` with a complex exponential at `f`: the tone's peak
    /// amplitude if `x` holds a whole number of its periods (or many).
    fn amplitude_at(x: &[i16], f: f64, rate: f64) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (n, &s) in x.iter().enumerate() {
            let ph = TAU * f * n as f64 / rate;
            re += f64::from(s) * ph.cos();
            im += f64::from(s) * ph.sin();
        }
        2.0 * (re * re + im * im).sqrt() / x.len() as f64
    }

    #[test]
    fn levels_twist_and_offsets_are_as_asked() {
        for rate in [8000u32, 16000] {
            let p = ToneParams::level(-10.0)
                .with_twist(-6.0)
                .with_offsets(1.5, -2.0);
            let mut g = DtmfGenerator::new(rate, Digit::D5, p).unwrap();
            let mut x = vec![0i16; rate as usize];
            g.fill(&mut x);
            let lo = amplitude_at(&x, 770.0 * 1.015, f64::from(rate));
            let hi = amplitude_at(&x, 1336.0 * 0.98, f64::from(rate));
            let want_lo = dbm0_to_peak(-10.0);
            let want_hi = dbm0_to_peak(-16.0);
            assert!((lo / want_lo - 1.0).abs() < 0.01, "{lo} vs {want_lo}");
            assert!((hi / want_hi - 1.0).abs() < 0.01, "{hi} vs {want_hi}");
            // Nothing left at the nominal frequency of the shifted tone.
            assert!(amplitude_at(&x, 770.0, f64::from(rate)) < want_lo * 0.05);
        }
    }

    #[test]
    fn frames_are_phase_continuous() {
        let p = ToneParams::level(-6.0);
        let mut whole = DtmfGenerator::new(8000, Digit::Hash, p).unwrap();
        let mut framed = DtmfGenerator::new(8000, Digit::Hash, p).unwrap();
        let mut a = vec![0i16; 1600];
        whole.fill(&mut a);
        let mut b = vec![0i16; 1600];
        for chunk in b.chunks_mut(160) {
            framed.fill(chunk);
        }
        assert_eq!(a, b);
        let mut mixed = vec![100i16; 160];
        framed.add_to(&mut mixed);
        let mut alone = vec![0i16; 160];
        whole.fill(&mut alone);
        for (m, a) in mixed.iter().zip(&alone) {
            assert_eq!(*m, a + 100);
        }
    }

    #[test]
    fn hot_pairs_saturate_instead_of_wrapping() {
        let p = ToneParams::level(-3.0).with_twist(4.0);
        let mut g = DtmfGenerator::new(8000, Digit::D, p).unwrap();
        let mut x = vec![0i16; 8000];
        g.fill(&mut x);
        assert!(x.contains(&i16::MAX));
        assert!(x.contains(&i16::MIN));
    }

    #[test]
    fn sequence_has_the_asked_layout() {
        let mut out = Vec::new();
        let p = ToneParams::default();
        render_sequence(
            8000,
            "1#",
            p,
            Duration::from_millis(50),
            Duration::from_millis(30),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 2 * (400 + 240));
        assert!(out[..400].iter().any(|&s| s != 0));
        assert!(out[400..640].iter().all(|&s| s == 0));
        assert!(out[640..1040].iter().any(|&s| s != 0));
        assert_eq!(
            render_sequence(8000, "1x", p, Duration::ZERO, Duration::ZERO, &mut out),
            Err(DtmfError::InvalidDigit('x'))
        );
    }

    #[test]
    fn bad_parameters_are_errors() {
        let p = ToneParams::default();
        assert!(matches!(
            DtmfGenerator::new(3000, Digit::D, p),
            Err(DtmfError::AboveNyquist { .. })
        ));
        assert!(DtmfGenerator::new(0, Digit::D, p).is_err());
        assert!(DtmfGenerator::new(8000, Digit::D, ToneParams::level(f64::NAN)).is_err());
        let p = ToneParams::default().with_offsets(-100.0, 0.0);
        assert!(DtmfGenerator::new(8000, Digit::D, p).is_err());
    }
}
