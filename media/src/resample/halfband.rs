//! The 8 ↔ 16 kHz fast path: a polyphase half-band FIR.
//!
//! Every G.711 call converts 8 → 16 kHz on receive (for VAD and the
//! recogniser) and 16 → 8 kHz on send. Profiling 500 echo calls showed the
//! two rubato FFT resamplers per call taking a third of the media path's CPU,
//! mostly because a thousand separate FFT plans and buffers do not fit in
//! cache. A half-band filter needs no plan: one shared 16-entry coefficient
//! table and 32 samples of history per direction.
//!
//! # The filter
//!
//! A 63-tap linear-phase low-pass at 16 kHz with its cutoff at 4 kHz, a
//! windowed sinc `h[k] = sin(πk/2)/(πk) · w[k]` for `k = −31..=31` with a
//! Kaiser window (β = 7). Because the cutoff is exactly a quarter of the rate,
//! every even tap except the centre (½) is zero, so of the 63 taps only 32
//! are non-zero and, being symmetric, they take 16 multiplies per output:
//!
//! * **8 → 16 kHz**: zero-stuffing puts every input sample on an even output
//!   position, where only the centre tap sees it, so even outputs are the
//!   input samples copied exactly and odd outputs are the 32-tap
//!   interpolation between them.
//! * **16 → 8 kHz**: the kept output sample is ½ × one input sample plus the
//!   32-tap filter over the input samples of the other parity.
//!
//! The non-centre taps are scaled so that each polyphase branch sums to
//! exactly ½, so DC passes with gain exactly 1 and leaves no 8 kHz image.
//!
//! Response (checked by the tests in this module and in
//! `media/tests/resample_halfband.rs`):
//!
//! | band | at 16 kHz | |
//! |---|---|---|
//! | passband 0–3.4 kHz | ripple ±0.003 dB | telephony band (G.711: 300–3400 Hz) |
//! | transition 3.4–4.6 kHz | −6.02 dB at 4 kHz by construction | |
//! | stopband 4.6–8 kHz | ≥ 70 dB down | |
//!
//! In terms of what a listener hears at 8 kHz: images of in-band tones
//! (which land at 4.6–8 kHz after upsampling) and aliases that fold into the
//! 0–3.4 kHz band (from 4.6–8 kHz when downsampling) are at least 70 dB
//! down. Tones at 4–4.6 kHz alias to 3.4–4 kHz, above the telephony band,
//! and are only partly removed; that is the price of a half-band's zero taps
//! against a longer general low-pass.
//!
//! # Delay
//!
//! The filter's group delay is 31 samples at 16 kHz, half a sample at 8 kHz.
//! Both directions pick their output phase so the delay is a whole number
//! of samples at both rates: 8 → 16 kHz delays by one more 16 kHz sample
//! (32 = 16 input samples, 2 ms), 16 → 8 kHz by one less (30 = 15 output
//! samples, 1.875 ms). So the round trip is exactly 31 samples at 8 kHz, and
//! the reported delay is exact, not rounded.

/// Coefficients of one polyphase branch of the half-band filter, for the
/// taps at ±1, ±3, …, ±31 samples (16 kHz) from the centre, in that order,
/// at interpolator gain: each entry serves the two taps at ± its offset, and
/// the 32 taps sum to 1 (the decimator halves them).
///
/// Kaiser-windowed sinc, β = `KAISER_BETA`, rescaled so the taps sum to
/// exactly 1.
/// `tests::table_is_the_kaiser_design` recomputes them.
const COEFFS: [f32; HALF] = [
    6.344928e-1,
    -2.0585717e-1,
    1.16977446e-1,
    -7.694894e-2,
    5.3541154e-2,
    -3.8013104e-2,
    2.7019108e-2,
    -1.8989686e-2,
    1.3069109e-2,
    -8.727355e-3,
    5.597896e-3,
    -3.4042813e-3,
    1.9256828e-3,
    -9.806975e-4,
    4.1982342e-4,
    -1.2181126e-4,
];

/// Kaiser window shape of the design: 7 gives about 70 dB of stopband with
/// 63 taps and a 1.2 kHz transition band (3.4 → 4.6 kHz).
#[cfg(test)]
const KAISER_BETA: f64 = 7.0;

/// Non-zero taps on each side of the centre, i.e. unique coefficients.
const HALF: usize = 16;

/// Samples of history a polyphase branch needs (its 32 non-zero taps).
const SPAN: usize = 2 * HALF;

/// Delay of 8 → 16 kHz in input (8 kHz) samples; see the module docs.
pub(super) const UP_DELAY_IN: u32 = HALF as u32;

/// Delay of 16 → 8 kHz in input (16 kHz) samples; see the module docs.
pub(super) const DOWN_DELAY_IN: u32 = 2 * (HALF as u32 - 1);

/// Samples handled per block: one 20 ms frame at 8 kHz, i.e. a frame in
/// either direction (160 input samples up, 160 input pairs down).
const BLOCK: usize = 160;

/// Outputs computed together in [`Branch::run`]: two SSE registers.
const LANES: usize = 8;

/// The 32-tap branch run over a block at a time.
///
/// The input sits in one linear buffer behind the last `SPAN - 1` samples
/// of history, and the filter loops over taps outside and samples inside:
/// each inner loop is a multiply-add over contiguous slices, which the
/// compiler turns into SIMD. (A per-sample dot product over a ring buffer
/// ran at 4.6 µs a frame, slower than rubato's FFT.) Each output still sums
/// its taps in the same order whatever the block boundaries, so the output
/// does not depend on how the stream is chunked.
struct Branch {
    /// `SPAN - 1` samples of history, then up to [`BLOCK`] new samples.
    buf: Box<[f32; SPAN - 1 + BLOCK]>,
    /// The branch output for each new sample of the block.
    acc: Box<[f32; BLOCK]>,
    /// New samples staged in `buf` so far.
    len: usize,
}

impl Branch {
    fn new() -> Self {
        Self {
            buf: Box::new([0.0; SPAN - 1 + BLOCK]),
            acc: Box::new([0.0; BLOCK]),
            len: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.len == BLOCK
    }

    /// Stages as many of `input` as the block has room for; returns how
    /// many. The caller runs the block when it is full.
    fn stage(&mut self, input: &[i16]) -> usize {
        let free = &mut self.buf[SPAN - 1 + self.len..];
        let n = free.len().min(input.len());
        for (d, &x) in free[..n].iter_mut().zip(input) {
            *d = f32::from(x);
        }
        self.len += n;
        n
    }

    /// Stages one sample; the caller runs the block when it is full.
    fn push(&mut self, x: f32) {
        if let Some(slot) = self.buf.get_mut(SPAN - 1 + self.len) {
            *slot = x;
            self.len += 1;
        }
    }

    /// For each staged sample `j`, the value half-way between the samples
    /// `HALF` and `HALF - 1` before it, at interpolator gain, into
    /// `acc[j]`; `buf[j + HALF - 1]` is then the one `HALF` before it.
    fn run(&mut self) {
        let n = self.len;
        // Eight outputs at a time keep their sums in registers across the
        // 16 taps; the tail takes the same operations in the same order one
        // output at a time, so results do not depend on where blocks end.
        let mut k = 0;
        while k + LANES <= n {
            let mut sum = [0.0f32; LANES];
            for (i, &c) in COEFFS.iter().enumerate() {
                let older = &self.buf[HALF - 1 - i + k..][..LANES];
                let newer = &self.buf[HALF + i + k..][..LANES];
                for l in 0..LANES {
                    sum[l] += c * (older[l] + newer[l]);
                }
            }
            self.acc[k..k + LANES].copy_from_slice(&sum);
            k += LANES;
        }
        for k in k..n {
            let mut sum = 0.0f32;
            for (i, &c) in COEFFS.iter().enumerate() {
                sum += c * (self.buf[HALF - 1 - i + k] + self.buf[HALF + i + k]);
            }
            self.acc[k] = sum;
        }
    }

    /// Keeps the last `SPAN - 1` samples as the next block's history.
    fn advance(&mut self) {
        let n = self.len;
        self.buf.copy_within(n..n + SPAN - 1, 0);
        self.len = 0;
    }

    fn clear(&mut self) {
        self.buf.fill(0.0);
        self.len = 0;
    }
}

/// Rounds to the nearest `i16`, halves away from zero, saturating: band
/// limiting overshoots a full-scale input slightly, and wrapping would turn
/// that into a loud click. `as` saturates and maps NaN to 0.
fn to_i16(x: f32) -> i16 {
    (x + 0.5f32.copysign(x)) as i16
}

/// 8 → 16 kHz: two output samples per input sample, any chunking.
pub(super) struct Upsampler {
    branch: Branch,
}

impl Upsampler {
    pub(super) fn new() -> Self {
        Self {
            branch: Branch::new(),
        }
    }

    /// Appends `2 * input.len()` samples to `out`. Output depends only on
    /// the samples pushed so far, not on how they were split into calls.
    pub(super) fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let mut rest = input;
        while !rest.is_empty() {
            let taken = self.branch.stage(rest);
            rest = &rest[taken..];
            if self.branch.is_full() {
                self.emit(out);
            }
        }
        self.emit(out);
    }

    fn emit(&mut self, out: &mut Vec<i16>) {
        let b = &mut self.branch;
        if b.len == 0 {
            return;
        }
        b.run();
        let n = b.len;
        let start = out.len();
        out.resize(start + 2 * n, 0);
        let pairs = out[start..].chunks_exact_mut(2);
        // Even output: the input sample HALF back, copied exactly (only the
        // centre tap, 1 at this gain, lands on it). Odd output: half-way
        // between it and the next.
        for ((o, &x), &y) in pairs.zip(&b.buf[HALF - 1..HALF - 1 + n]).zip(&b.acc[..n]) {
            o[0] = to_i16(x);
            o[1] = to_i16(y);
        }
        b.advance();
    }

    pub(super) fn reset(&mut self) {
        self.branch.clear();
    }
}

/// Even-indexed samples the 16 → 8 kHz centre tap needs: the one `HALF - 1`
/// pairs back, so that many of history, then the block's.
const EVEN_HIST: usize = HALF - 1;

/// 16 → 8 kHz: one output sample per two input samples, any chunking.
pub(super) struct Downsampler {
    /// Odd-indexed input samples, which the 32-tap branch filters.
    odd: Branch,
    /// Even-indexed input samples, which only the centre tap reaches:
    /// `EVEN_HIST` of history, then the block's, aligned with `odd`.
    even: Box<[f32; EVEN_HIST + BLOCK]>,
    /// An even-indexed sample whose odd partner has not arrived yet.
    pending: Option<f32>,
}

impl Downsampler {
    pub(super) fn new() -> Self {
        Self {
            odd: Branch::new(),
            even: Box::new([0.0; EVEN_HIST + BLOCK]),
            pending: None,
        }
    }

    /// Appends one sample to `out` per pair of input samples, counting
    /// pairs from the first sample after construction or reset; an odd
    /// sample left over is kept for the next call.
    pub(super) fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        for &x in input {
            let x = f32::from(x);
            match self.pending.take() {
                None => self.pending = Some(x),
                Some(even) => {
                    if let Some(slot) = self.even.get_mut(EVEN_HIST + self.odd.len) {
                        *slot = even;
                    }
                    self.odd.push(x);
                    if self.odd.is_full() {
                        self.emit(out);
                    }
                }
            }
        }
        self.emit(out);
    }

    fn emit(&mut self, out: &mut Vec<i16>) {
        let n = self.odd.len;
        if n == 0 {
            return;
        }
        self.odd.run();
        // Output n takes even sample n − 15 through the centre tap and odd
        // samples n − 31 ..= n through the branch, so the centre sits at
        // input 2n − 30: 30 samples (15 outputs) of delay.
        let start = out.len();
        out.resize(start + n, 0);
        for ((o, &e), &b) in out[start..]
            .iter_mut()
            .zip(&self.even[..n])
            .zip(&self.odd.acc[..n])
        {
            *o = to_i16(0.5 * (e + b));
        }
        self.even.copy_within(n..n + EVEN_HIST, 0);
        self.odd.advance();
    }

    pub(super) fn reset(&mut self) {
        self.odd.clear();
        self.even.fill(0.0);
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bessel_i0(x: f64) -> f64 {
        let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
        while term > 1e-18 * sum {
            term *= (x / (2.0 * k)).powi(2);
            sum += term;
            k += 1.0;
        }
        sum
    }

    /// The full 63-tap half-band filter at decimator gain (DC gain 1), from
    /// the table.
    fn taps() -> Vec<f64> {
        let mut h = vec![0.0; 2 * SPAN - 1];
        let c = SPAN - 1;
        h[c] = 0.5;
        for (i, &g) in COEFFS.iter().enumerate() {
            h[c + 2 * i + 1] = f64::from(g) / 2.0;
            h[c - 2 * i - 1] = f64::from(g) / 2.0;
        }
        h
    }

    /// Magnitude response at `f` Hz (16 kHz rate) of the zero-phase filter.
    fn response(f: f64) -> f64 {
        let h = taps();
        let c = (h.len() / 2) as f64;
        h.iter()
            .enumerate()
            .map(|(n, &v)| v * (std::f64::consts::TAU * f / 16_000.0 * (n as f64 - c)).cos())
            .sum::<f64>()
            .abs()
    }

    #[test]
    fn table_is_the_kaiser_design() {
        let c = (SPAN - 1) as f64;
        let raw: Vec<f64> = (0..HALF)
            .map(|i| {
                let k = (2 * i + 1) as f64;
                let sinc = (std::f64::consts::FRAC_PI_2 * k).sin() / (std::f64::consts::PI * k);
                let w = bessel_i0(KAISER_BETA * (1.0 - (k / c).powi(2)).sqrt())
                    / bessel_i0(KAISER_BETA);
                sinc * w
            })
            .collect();
        let sum: f64 = raw.iter().sum();
        for (i, (&r, &t)) in raw.iter().zip(&COEFFS).enumerate() {
            let want = r / (2.0 * sum);
            assert!(
                // The table is the design rounded to f32.
                (want - f64::from(t)).abs() <= f64::from(f32::EPSILON) * want.abs(),
                "tap {i}: table {t}, design {want}"
            );
        }
        // The table, rounded to f32, still gives the 32 taps a sum of 1:
        // DC gain is exact.
        let table_sum: f64 = COEFFS.iter().map(|&g| 2.0 * f64::from(g)).sum();
        assert!((table_sum - 1.0).abs() < 1e-6, "{table_sum}");
    }

    #[test]
    fn designed_passband_and_stopband() {
        let mut worst_ripple = 0.0f64;
        for f in (0..=3_400).step_by(5) {
            worst_ripple = worst_ripple.max((20.0 * response(f64::from(f)).log10()).abs());
        }
        assert!(worst_ripple <= 0.01, "passband ripple {worst_ripple} dB");
        let mut worst_stop = f64::NEG_INFINITY;
        for f in (4_600..=8_000).step_by(2) {
            worst_stop = worst_stop.max(20.0 * response(f64::from(f)).log10());
        }
        assert!(worst_stop <= -70.0, "stopband only {worst_stop} dB");
        // Half-band symmetry: exactly half amplitude at a quarter of the rate.
        assert!((response(4_000.0) - 0.5).abs() < 1e-6);
    }

    fn test_signal(n: usize) -> Vec<i16> {
        // Loud, broadband and deterministic: a chirp plus a pseudo-random
        // component, with full-scale samples to exercise saturation.
        let mut state = 0x9E37_79B9u32;
        (0..n)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let t = i as f64;
                let chirp = 20_000.0 * (0.0005 * t * t / 100.0).sin();
                let noise = f64::from(state % 20_001) - 10_000.0;
                if i % 997 == 0 {
                    i16::MIN
                } else {
                    (chirp + noise).clamp(-32_768.0, 32_767.0) as i16
                }
            })
            .collect()
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        let input = test_signal(4_000);
        let mut whole_up = Vec::new();
        Upsampler::new().process(&input, &mut whole_up);
        let mut whole_down = Vec::new();
        Downsampler::new().process(&input, &mut whole_down);
        assert_eq!(whole_up.len(), 8_000);
        assert_eq!(whole_down.len(), 2_000);
        for chunk in 1..=320 {
            let (mut up, mut down) = (Upsampler::new(), Downsampler::new());
            let (mut got_up, mut got_down) = (Vec::new(), Vec::new());
            for piece in input.chunks(chunk) {
                up.process(piece, &mut got_up);
                down.process(piece, &mut got_down);
            }
            assert_eq!(got_up, whole_up, "8->16 in chunks of {chunk}");
            assert_eq!(got_down, whole_down, "16->8 in chunks of {chunk}");
        }
    }

    #[test]
    fn impulse_responses_are_the_filter_at_the_stated_delay() {
        // 8 -> 16: an impulse at input k comes out as the whole filter
        // (interpolator gain) centred on output 2 (k + 16).
        let amp = 16_384.0;
        let k = 40;
        let mut input = vec![0i16; 100];
        input[k] = amp as i16;
        let mut out = Vec::new();
        Upsampler::new().process(&input, &mut out);
        let h = taps();
        let centre = 2 * (k + UP_DELAY_IN as usize);
        for (j, &y) in out.iter().enumerate() {
            let tap = (j as isize - centre as isize) + (h.len() / 2) as isize;
            let want = if (0..h.len() as isize).contains(&tap) {
                2.0 * amp * h[tap as usize]
            } else {
                0.0
            };
            assert!(
                (f64::from(y) - want).abs() <= 0.5,
                "output {j}: {y}, want {want:.2}"
            );
        }
        assert_eq!(out[centre], amp as i16);

        // 16 -> 8: the filter sampled every other tap, centred on the input
        // sample 30 after the impulse. An even-indexed impulse meets only
        // the centre tap.
        for k in [80usize, 81] {
            let mut input = vec![0i16; 200];
            input[k] = amp as i16;
            let mut out = Vec::new();
            Downsampler::new().process(&input, &mut out);
            for (n, &y) in out.iter().enumerate() {
                // Output n is centred on input 2n - 30.
                let tap =
                    k as isize - (2 * n as isize - DOWN_DELAY_IN as isize) + (h.len() / 2) as isize;
                let want = if (0..h.len() as isize).contains(&tap) {
                    amp * h[tap as usize]
                } else {
                    0.0
                };
                assert!(
                    (f64::from(y) - want).abs() <= 0.5,
                    "impulse at {k}, output {n}: {y}, want {want:.2}"
                );
            }
            if k % 2 == 0 {
                let n = (k + DOWN_DELAY_IN as usize) / 2;
                assert_eq!(out[n], (amp / 2.0) as i16);
            }
        }
    }

    #[test]
    fn reset_is_a_fresh_filter() {
        let input = test_signal(641);
        let (mut up, mut down) = (Upsampler::new(), Downsampler::new());
        let mut junk = Vec::new();
        up.process(&input, &mut junk);
        // An odd count leaves the downsampler mid-pair: reset must realign.
        down.process(&input, &mut junk);
        up.reset();
        down.reset();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        up.process(&input, &mut a);
        Upsampler::new().process(&input, &mut b);
        assert_eq!(a, b);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        down.process(&input, &mut a);
        Downsampler::new().process(&input, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn rounding_saturates() {
        assert_eq!(to_i16(32_767.4), 32_767);
        assert_eq!(to_i16(40_000.0), i16::MAX);
        assert_eq!(to_i16(-40_000.0), i16::MIN);
        assert_eq!(to_i16(-0.5), -1);
        assert_eq!(to_i16(0.49), 0);
        assert_eq!(to_i16(f32::NAN), 0);
    }
}
