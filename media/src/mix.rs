//! Mixing, gain and click-free fades for 16-bit PCM frames.
//!
//! * [`mix`] sums any number of inputs, each with its own gain in dB, into
//!   an output frame, with hard saturation or a soft limiter ([`Limit`]).
//! * [`apply_gain`] scales a frame in place, saturating.
//! * [`Fader`] fades a stream out or in over a configurable time (10–20 ms
//!   is typical for barge-in), carrying its state from frame to frame so a
//!   fade may start anywhere inside a frame and end in a later one.
//! * [`Crossfader`] / [`crossfade`] blend from one stream into another.
//!
//! Nothing here allocates: callers pass the output buffers.

use std::f32::consts::PI;

pub use crate::level::{db_to_gain, gain_to_db};

/// What happens to a sum that exceeds the 16-bit range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Limit {
    /// Clamp to [−32768, 32767]. Transparent below full scale; harsh when
    /// it acts, but mixing telephony speech rarely drives it.
    #[default]
    Saturate,
    /// Identity below [`SOFT_KNEE`], then a tanh curve that approaches full
    /// scale smoothly, trading a little compression of loud peaks for no
    /// hard clipping.
    Soft,
}

/// Magnitude where [`Limit::Soft`] starts to compress (−3 dBFS): below it
/// mixing is exactly linear.
pub const SOFT_KNEE: f32 = 23_197.0;

/// Soft-limits one sample value (any magnitude) into the 16-bit range.
/// Continuous with slope 1 at the knee and monotonic; the sum of two
/// full-scale inputs still lands short of the rails.
pub fn soft_limit(x: f32) -> i16 {
    let a = x.abs();
    if a <= SOFT_KNEE || x.is_nan() {
        return saturate(x);
    }
    let room = 32_767.0 - SOFT_KNEE;
    let y = SOFT_KNEE + room * ((a - SOFT_KNEE) / room).tanh();
    saturate(y.copysign(x))
}

/// Rounds to nearest and clamps into the 16-bit range (NaN → 0).
pub fn saturate(x: f32) -> i16 {
    // `as` saturates and maps NaN to 0.
    x.round() as i16
}

/// One input to [`mix`].
#[derive(Debug, Clone, Copy)]
pub struct MixInput<'a> {
    /// The input's samples for this frame. Shorter than the output means
    /// the input is silent for the rest of the frame.
    pub samples: &'a [i16],
    /// Gain applied to this input, in dB (0 = unchanged).
    pub gain_db: f32,
}

impl<'a> MixInput<'a> {
    /// An input at unity gain.
    pub fn new(samples: &'a [i16]) -> Self {
        Self {
            samples,
            gain_db: 0.0,
        }
    }

    /// An input with a gain in dB.
    pub fn with_gain(samples: &'a [i16], gain_db: f32) -> Self {
        Self { samples, gain_db }
    }
}

/// Sums `inputs` (each scaled by its gain) into `out`, overwriting it.
///
/// The sum is formed at full precision and limited once per sample, so
/// inputs that cancel do not clip on the way. Supports up to 16 inputs
/// without allocating; more are mixed in groups of 16 with the
/// intermediate result limited.
pub fn mix(inputs: &[MixInput<'_>], out: &mut [i16], limit: Limit) {
    const GROUP: usize = 16;
    out.fill(0);
    let mut first = true;
    for group in inputs.chunks(GROUP) {
        let mut gains = [0f32; GROUP];
        for (g, inp) in gains.iter_mut().zip(group) {
            *g = db_to_gain(inp.gain_db);
        }
        for (i, o) in out.iter_mut().enumerate() {
            let mut acc = if first { 0.0 } else { f32::from(*o) };
            for (inp, g) in group.iter().zip(gains) {
                if let Some(&s) = inp.samples.get(i) {
                    acc += f32::from(s) * g;
                }
            }
            *o = match limit {
                Limit::Saturate => saturate(acc),
                Limit::Soft => soft_limit(acc),
            };
        }
        first = false;
    }
}

/// `out = a + b` at unity gain, saturating. A shorter input is silent for
/// the rest of `out`.
pub fn mix2(a: &[i16], b: &[i16], out: &mut [i16]) {
    for (i, o) in out.iter_mut().enumerate() {
        let x =
            i32::from(a.get(i).copied().unwrap_or(0)) + i32::from(b.get(i).copied().unwrap_or(0));
        *o = x.clamp(-32768, 32767) as i16;
    }
}

/// Adds `input` scaled by `gain_db` onto `acc` in place, saturating.
pub fn mix_into(acc: &mut [i16], input: &[i16], gain_db: f32) {
    let g = db_to_gain(gain_db);
    for (a, &x) in acc.iter_mut().zip(input) {
        *a = saturate(f32::from(*a) + f32::from(x) * g);
    }
}

/// Scales `samples` in place by `gain_db`, saturating.
pub fn apply_gain(samples: &mut [i16], gain_db: f32) {
    let g = db_to_gain(gain_db);
    for s in samples {
        *s = saturate(f32::from(*s) * g);
    }
}

/// Shape of a fade, as gain against progress `t` from 0 (silent) to 1
/// (unity). All curves are exactly 0 at `t = 0` and exactly 1 at `t = 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Curve {
    /// `½ − ½·cos(πt)`: zero slope at both ends, so neither the start nor
    /// the end of the fade is audible as a corner. Fade-out and fade-in
    /// gains sum to 1, right for crossfading correlated signals.
    #[default]
    RaisedCosine,
    /// `sin(πt/2)`: fade-out and fade-in powers sum to 1, so a crossfade
    /// between unrelated signals keeps a constant loudness.
    EqualPower,
    /// `t`. Mostly for comparison; the corners at both ends are audible on
    /// loud tones.
    Linear,
}

impl Curve {
    /// Gain at step `pos` of `len` (`pos` ≤ `len`).
    pub fn gain(self, pos: u32, len: u32) -> f32 {
        if pos >= len {
            return 1.0;
        }
        if pos == 0 {
            return 0.0;
        }
        // f64 for the phase: f32 loses the last step of long fades.
        let t = f64::from(pos) / f64::from(len);
        (match self {
            Curve::RaisedCosine => 0.5 - 0.5 * (std::f64::consts::PI * t).cos(),
            Curve::EqualPower => (std::f64::consts::FRAC_PI_2 * t).sin(),
            Curve::Linear => t,
        }) as f32
    }

    /// Largest gain change between adjacent steps of a `len`-step fade,
    /// which bounds how much a fade can add to a signal's sample-to-sample
    /// step (and so how audible its edge is).
    pub fn max_step(self, len: u32) -> f32 {
        let len = len.max(1) as f32;
        match self {
            Curve::RaisedCosine | Curve::EqualPower => (PI / 2.0) / len,
            Curve::Linear => 1.0 / len,
        }
    }
}

/// Where a [`Fader`] is heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Direction {
    Hold,
    Out,
    In,
}

/// A stateful fade on one stream.
///
/// The fader holds a position `pos` in `0..=len` (0 = silent, `len` =
/// unity). Each processed sample moves it one step in the current
/// direction and is multiplied by the curve's gain at the new position, so:
///
/// * a fade-out started before sample `s` attenuates exactly samples
///   `s .. s+len`; sample `s+len−1` is exactly zero, as is everything after;
/// * a fade-in reaches exact unity on sample `s+len−1`;
/// * reversing mid-fade continues from the current gain, without a jump.
///
/// Fades run across frames: to start one in the middle of a frame, process
/// the part before the trigger, call [`fade_out`](Self::fade_out), then
/// process the rest; the fade carries on into the following frames.
///
/// ```
/// use hotline_media::mix::{Curve, Fader};
/// let mut f = Fader::from_ms(8000, 15.0, Curve::RaisedCosine); // 120 samples
/// let mut frame = [1000i16; 160];
/// f.process(&mut frame[..100]);
/// f.fade_out(); // barge-in detected at sample 100
/// f.process(&mut frame[100..]);
/// let mut next = [1000i16; 160];
/// f.process(&mut next);
/// assert_eq!(next[59], 0); // 60 + 60 = 120 samples of fade
/// assert!(f.is_muted());
/// ```
#[derive(Debug, Clone)]
pub struct Fader {
    len: u32,
    pos: u32,
    dir: Direction,
    curve: Curve,
}

impl Fader {
    /// A fader with fades of `len` samples (at least 1), starting open
    /// (unity gain).
    pub fn new(len: u32, curve: Curve) -> Self {
        let len = len.max(1);
        Self {
            len,
            pos: len,
            dir: Direction::Hold,
            curve,
        }
    }

    /// A fader whose fades last `ms` milliseconds at `sample_rate`
    /// (rounded to the nearest sample, at least 1).
    pub fn from_ms(sample_rate: u32, ms: f32, curve: Curve) -> Self {
        let len = (f64::from(sample_rate) * f64::from(ms) / 1000.0).round();
        Self::new(len.clamp(1.0, f64::from(u32::MAX)) as u32, curve)
    }

    /// Fade length in samples.
    pub fn fade_len(&self) -> u32 {
        self.len
    }

    /// Starts (or continues) fading out from the current gain.
    pub fn fade_out(&mut self) {
        if self.pos > 0 {
            self.dir = Direction::Out;
        }
    }

    /// Starts (or continues) fading in from the current gain.
    pub fn fade_in(&mut self) {
        if self.pos < self.len {
            self.dir = Direction::In;
        }
    }

    /// Jumps to unity gain with no fade.
    pub fn open(&mut self) {
        self.pos = self.len;
        self.dir = Direction::Hold;
    }

    /// Jumps to silence with no fade.
    pub fn mute(&mut self) {
        self.pos = 0;
        self.dir = Direction::Hold;
    }

    /// True at unity gain and not fading.
    pub fn is_open(&self) -> bool {
        self.pos == self.len && self.dir == Direction::Hold
    }

    /// True when silent and not fading (a fade-out has completed).
    pub fn is_muted(&self) -> bool {
        self.pos == 0 && self.dir == Direction::Hold
    }

    /// True while a fade is in progress.
    pub fn is_fading(&self) -> bool {
        self.dir != Direction::Hold
    }

    /// Samples left until the current fade completes (0 when not fading).
    pub fn remaining(&self) -> u32 {
        match self.dir {
            Direction::Hold => 0,
            Direction::Out => self.pos,
            Direction::In => self.len - self.pos,
        }
    }

    /// The gain applied to the most recent sample.
    pub fn gain(&self) -> f32 {
        self.curve.gain(self.pos, self.len)
    }

    /// Applies the fader to `frame` in place, advancing any fade.
    pub fn process(&mut self, frame: &mut [i16]) {
        let mut i = 0;
        while i < frame.len() {
            match self.dir {
                Direction::Hold => {
                    if self.pos == 0 {
                        frame[i..].fill(0);
                    }
                    // Open: unity, samples untouched (bit-exact pass-through).
                    return;
                }
                Direction::Out => {
                    self.pos -= 1;
                    let g = self.curve.gain(self.pos, self.len);
                    frame[i] = saturate(f32::from(frame[i]) * g);
                    if self.pos == 0 {
                        self.dir = Direction::Hold;
                    }
                }
                Direction::In => {
                    self.pos += 1;
                    let g = self.curve.gain(self.pos, self.len);
                    frame[i] = saturate(f32::from(frame[i]) * g);
                    if self.pos == self.len {
                        self.dir = Direction::Hold;
                    }
                }
            }
            i += 1;
        }
    }
}

/// Blends from one stream into another over a fixed number of samples,
/// across as many frames as it takes.
///
/// Output sample `k` of the crossfade is
/// `from[k]·gain(len−k−1) + to[k]·gain(k+1)`; after `len` samples the
/// output is `to` alone. With [`Curve::RaisedCosine`] the two gains sum to 1
/// (a crossfade between identical streams is transparent); with
/// [`Curve::EqualPower`] their squares do.
#[derive(Debug, Clone)]
pub struct Crossfader {
    len: u32,
    pos: u32,
    curve: Curve,
}

impl Crossfader {
    /// A crossfade of `len` samples (at least 1).
    pub fn new(len: u32, curve: Curve) -> Self {
        Self {
            len: len.max(1),
            pos: 0,
            curve,
        }
    }

    /// True once the output is `to` alone.
    pub fn is_done(&self) -> bool {
        self.pos >= self.len
    }

    /// Writes the next `out.len()` samples of the crossfade. Inputs shorter
    /// than `out` are silent for the rest of the frame. Saturates (an
    /// equal-power blend of correlated signals can exceed full scale).
    pub fn process(&mut self, from: &[i16], to: &[i16], out: &mut [i16]) {
        for (i, o) in out.iter_mut().enumerate() {
            let a = f32::from(from.get(i).copied().unwrap_or(0));
            let b = f32::from(to.get(i).copied().unwrap_or(0));
            if self.pos >= self.len {
                *o = saturate(b);
                continue;
            }
            self.pos += 1;
            let gi = self.curve.gain(self.pos, self.len);
            let go = self.curve.gain(self.len - self.pos, self.len);
            *o = saturate(a * go + b * gi);
        }
    }
}

/// Crossfades `from` into `to` over the whole of `out` (one-shot form of
/// [`Crossfader`]).
pub fn crossfade(from: &[i16], to: &[i16], out: &mut [i16], curve: Curve) {
    let len = u32::try_from(out.len()).unwrap_or(u32::MAX);
    Crossfader::new(len, curve).process(from, to, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_hit_exact_endpoints() {
        for c in [Curve::RaisedCosine, Curve::EqualPower, Curve::Linear] {
            for len in [1u32, 2, 80, 160, 961] {
                assert_eq!(c.gain(0, len), 0.0);
                assert_eq!(c.gain(len, len), 1.0);
                let mut prev = 0.0;
                for p in 1..=len {
                    let g = c.gain(p, len);
                    assert!(g > prev, "{c:?} {p}/{len}");
                    assert!(g - prev <= c.max_step(len) + 1e-6);
                    prev = g;
                }
            }
        }
    }

    #[test]
    fn soft_limit_is_transparent_below_the_knee_and_bounded_above() {
        for x in [-23_000.0f32, -1.0, 0.0, 1.5, 23_197.0] {
            assert_eq!(soft_limit(x), saturate(x));
        }
        let mut prev = soft_limit(SOFT_KNEE);
        for k in 1..=850 {
            // Up to twice full scale: two full-scale inputs summed.
            let x = SOFT_KNEE + k as f32 * 50.0;
            let y = soft_limit(x);
            assert!(y >= prev && y < 32_767, "{x} -> {y}");
            assert_eq!(soft_limit(-x), -y);
            prev = y;
        }
        assert_eq!(soft_limit(f32::NAN), 0);
        assert_eq!(soft_limit(1e9), 32_767);
        assert_eq!(soft_limit(-1e9), -32_767);
    }

    #[test]
    fn fader_state_queries() {
        let mut f = Fader::new(10, Curve::RaisedCosine);
        assert!(f.is_open() && !f.is_fading());
        f.fade_out();
        assert_eq!(f.remaining(), 10);
        let mut buf = [100i16; 4];
        f.process(&mut buf);
        assert_eq!(f.remaining(), 6);
        f.fade_in();
        assert_eq!(f.remaining(), 4);
        f.process(&mut [0; 4]);
        assert!(f.is_open());
        f.mute();
        assert!(f.is_muted());
        // Fading in from silence and fading out when already silent.
        f.fade_out();
        assert!(f.is_muted());
        f.fade_in();
        assert!(f.is_fading());
        assert_eq!(Fader::from_ms(8000, 15.0, Curve::Linear).fade_len(), 120);
        assert_eq!(Fader::from_ms(8000, 0.0, Curve::Linear).fade_len(), 1);
    }
}
