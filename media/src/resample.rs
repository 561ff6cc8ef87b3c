//! Streaming sample-rate conversion of fixed 20 ms mono frames.
//!
//! Every call leg moves audio in 20 ms frames, and the two ends of a bridge
//! rarely agree on a rate: G.711 trunks run at 8 kHz, Opus at 48 kHz, speech
//! recognisers want 16 kHz, TTS engines produce 22.05 or 24 kHz. [`Resampler`]
//! converts one frame in to exactly one frame out on every call, so the frame
//! clock of the call never slips and no caller has to deal with variable-length
//! output.
//!
//! The telephony pairs 8 ↔ 16 kHz, which every G.711 call runs in both
//! directions, use a polyphase half-band FIR ([`halfband`]): no FFT plan, a
//! shared 16-entry coefficient table, 2 ms of delay (1.875 ms downwards).
//!
//! Every other pair uses rubato's synchronous FFT resampler with both chunk
//! sizes fixed to 20 ms. Twenty milliseconds is a whole number of samples at every
//! rate that is a multiple of 50 Hz, and then the ratio of the two frame lengths
//! is exactly the rate ratio, so one FFT block per frame fits with no internal
//! buffering. The price is a fixed delay of about half a frame (10 ms), which
//! [`Resampler::delay`] reports.

mod halfband;

use std::time::Duration;

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

/// Length of a frame in milliseconds. Everything in a call is paced by it.
pub const FRAME_MS: u32 = 20;

/// Lowest sample rate accepted; below it speech is unintelligible anyway.
pub const MIN_RATE: u32 = 8_000;

/// Highest sample rate accepted. Far above anything telephony uses, but
/// bounding it bounds the FFT sizes and scratch memory.
pub const MAX_RATE: u32 = 192_000;

/// Number of samples in one 20 ms frame at `rate` Hz.
pub const fn frame_len(rate: u32) -> usize {
    (rate / (1000 / FRAME_MS)) as usize
}

/// Why a [`Resampler`] could not be built or could not process a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResampleError {
    /// The rate is outside 8–192 kHz or 20 ms is not a whole number of
    /// samples at it (the rate is not a multiple of 50 Hz).
    #[error(
        "unsupported sample rate {0} Hz: must be a multiple of 50 Hz between {MIN_RATE} and {MAX_RATE} Hz"
    )]
    UnsupportedRate(u32),
    /// The input slice was not exactly one 20 ms frame.
    #[error("input frame has {got} samples, expected {expected} (20 ms at {rate} Hz)")]
    FrameLength {
        /// Samples in a 20 ms frame at the input rate.
        expected: usize,
        /// Samples actually passed.
        got: usize,
        /// The input rate.
        rate: u32,
    },
    /// rubato refused the configuration or the buffers. Not expected once
    /// the rates are validated; kept so that a rubato change cannot panic us.
    #[error("resampler engine error: {0}")]
    Engine(String),
}

/// The FFT path and the scratch it needs, so that `process` never allocates.
struct FftPath {
    fft: Fft<f32>,
    input: Vec<f32>,
    output: Vec<f32>,
}

/// How frames are converted.
enum Path {
    /// Equal rates: the frame is copied as is.
    Passthrough,
    /// 8 → 16 kHz half-band interpolator.
    Up(halfband::Upsampler),
    /// 16 → 8 kHz half-band decimator.
    Down(halfband::Downsampler),
    /// Any other pair.
    Fft(Box<FftPath>),
}

impl Path {
    fn name(&self) -> &'static str {
        match self {
            Path::Passthrough => "passthrough",
            Path::Up(_) => "half-band 2x up",
            Path::Down(_) => "half-band 2x down",
            Path::Fft(_) => "rubato fft",
        }
    }
}

/// Converts a stream of 20 ms mono `i16` frames from one rate to another.
///
/// Each [`process`](Resampler::process) call takes exactly one input frame and
/// appends exactly one output frame. The output lags the input by
/// [`delay`](Resampler::delay); call [`flush`](Resampler::flush) once at the
/// end of a stream to get the delayed tail out.
pub struct Resampler {
    in_rate: u32,
    out_rate: u32,
    in_len: usize,
    out_len: usize,
    path: Path,
    /// Filter delay in input samples (see [`Resampler::delay`]).
    delay_in_samples: u32,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("in_rate", &self.in_rate)
            .field("out_rate", &self.out_rate)
            .field("in_len", &self.in_len)
            .field("out_len", &self.out_len)
            .field("path", &self.path.name())
            .finish()
    }
}

fn check_rate(rate: u32) -> Result<(), ResampleError> {
    if (MIN_RATE..=MAX_RATE).contains(&rate) && rate.is_multiple_of(1000 / FRAME_MS) {
        Ok(())
    } else {
        Err(ResampleError::UnsupportedRate(rate))
    }
}

/// i16 full scale maps to ±1.0, the range rubato's filters are designed for.
const SCALE: f32 = 32_768.0;

/// Converts back to i16, saturating: a full-scale input can overshoot
/// slightly after band-limiting (Gibbs ripple), and wrapping would turn that
/// into a loud click.
fn to_i16(x: f32) -> i16 {
    // `as` saturates for floats and maps NaN to 0.
    (x * SCALE).round() as i16
}

impl Resampler {
    /// Builds a converter from `in_rate` to `out_rate` (Hz).
    ///
    /// Both rates must be multiples of 50 Hz between 8 and 192 kHz, which
    /// covers 8/16/24/32/44.1/48 kHz and Piper's 22.05 kHz. Equal rates give a
    /// passthrough with no delay and no work.
    pub fn new(in_rate: u32, out_rate: u32) -> Result<Self, ResampleError> {
        check_rate(in_rate)?;
        check_rate(out_rate)?;
        let in_len = frame_len(in_rate);
        let out_len = frame_len(out_rate);
        if in_rate == out_rate {
            return Ok(Self {
                in_rate,
                out_rate,
                in_len,
                out_len,
                path: Path::Passthrough,
                delay_in_samples: 0,
            });
        }
        let half_band = match (in_rate, out_rate) {
            (8_000, 16_000) => Some((Path::Up(halfband::Upsampler::new()), halfband::UP_DELAY_IN)),
            (16_000, 8_000) => Some((
                Path::Down(halfband::Downsampler::new()),
                halfband::DOWN_DELAY_IN,
            )),
            _ => None,
        };
        if let Some((path, delay_in_samples)) = half_band {
            return Ok(Self {
                in_rate,
                out_rate,
                in_len,
                out_len,
                path,
                delay_in_samples,
            });
        }
        // With both sides fixed rubato picks the FFT block as the smallest
        // multiple of `rate / gcd` covering `chunk`; 20 ms is always such a
        // multiple when both rates are multiples of 50 Hz, so one block is
        // exactly one frame on each side.
        let fft = Fft::<f32>::new(
            in_rate as usize,
            out_rate as usize,
            in_len,
            1,
            FixedSync::Both,
        )
        .map_err(|e| ResampleError::Engine(e.to_string()))?;
        if fft.input_frames_next() != in_len || fft.output_frames_next() != out_len {
            return Err(ResampleError::Engine(format!(
                "rubato chose {}→{} sample chunks instead of {in_len}→{out_len}",
                fft.input_frames_next(),
                fft.output_frames_next()
            )));
        }
        // rubato's anti-aliasing filter is a windowed sinc centred on sample
        // `block / 2` (integer division) of the input block, so that is the
        // group delay. For even blocks it equals rubato's `output_delay()`;
        // for odd blocks (22.05 kHz: 441 samples) it is half an input sample
        // earlier, which `output_delay()` does not account for.
        let delay_in_samples = (fft.fft_size_in() / 2) as u32;
        Ok(Self {
            in_rate,
            out_rate,
            in_len,
            out_len,
            path: Path::Fft(Box::new(FftPath {
                fft,
                input: vec![0.0; in_len],
                output: vec![0.0; out_len],
            })),
            delay_in_samples,
        })
    }

    /// Input rate in Hz.
    pub fn in_rate(&self) -> u32 {
        self.in_rate
    }

    /// Output rate in Hz.
    pub fn out_rate(&self) -> u32 {
        self.out_rate
    }

    /// Samples expected per [`process`](Resampler::process) call (20 ms at
    /// the input rate).
    pub fn input_frame_len(&self) -> usize {
        self.in_len
    }

    /// Samples appended per call (20 ms at the output rate).
    pub fn output_frame_len(&self) -> usize {
        self.out_len
    }

    /// True when the rates are equal and frames are copied unchanged.
    pub fn is_passthrough(&self) -> bool {
        matches!(self.path, Path::Passthrough)
    }

    /// How far the output lags the input.
    ///
    /// A sound at input time *t* comes out at output time *t* + `delay()`.
    /// Zero for a passthrough; 2 ms for 8 → 16 kHz and 1.875 ms for
    /// 16 → 8 kHz (the half-band filter, a whole number of samples at both
    /// rates, so exact); otherwise 10 ms, except from 22.05 kHz where it is
    /// 220 input samples (9.977 ms).
    pub fn delay(&self) -> Duration {
        Duration::from_nanos(
            u64::from(self.delay_in_samples) * 1_000_000_000 / u64::from(self.in_rate),
        )
    }

    /// [`delay`](Resampler::delay) in output samples, rounded to the nearest
    /// sample. This many leading output samples after construction or
    /// [`reset`](Resampler::reset) carry no input signal.
    pub fn delay_samples(&self) -> usize {
        let num = u64::from(self.delay_in_samples) * u64::from(self.out_rate);
        let den = u64::from(self.in_rate);
        ((num + den / 2) / den) as usize
    }

    /// Converts one 20 ms input frame and appends one 20 ms output frame to
    /// `out`.
    ///
    /// `out` is not cleared, so a caller can accumulate a stream in it; a
    /// caller reusing a frame buffer clears it first. Once `out` has the
    /// capacity, this does not allocate.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) -> Result<(), ResampleError> {
        if input.len() != self.in_len {
            return Err(ResampleError::FrameLength {
                expected: self.in_len,
                got: input.len(),
                rate: self.in_rate,
            });
        }
        match &mut self.path {
            Path::Passthrough => out.extend_from_slice(input),
            Path::Up(up) => up.process(input, out),
            Path::Down(down) => down.process(input, out),
            Path::Fft(path) => {
                for (dst, &s) in path.input.iter_mut().zip(input) {
                    *dst = f32::from(s) / SCALE;
                }
                path.run()?;
                out.extend(path.output.iter().map(|&x| to_i16(x)));
            }
        }
        Ok(())
    }

    /// Appends one more output frame made from silence, which carries the
    /// last [`delay`](Resampler::delay) of audio still inside the filter.
    ///
    /// The delay is shorter than a frame, so one call empties the filter,
    /// and it is then ready for a new stream as after
    /// [`reset`](Resampler::reset). Call it once when a stream ends (a prompt
    /// finishes, the call hangs up); it does nothing for a passthrough.
    pub fn flush(&mut self, out: &mut Vec<i16>) -> Result<(), ResampleError> {
        /// A 20 ms frame of silence at 16 kHz, the largest half-band input.
        const SILENCE: [i16; frame_len(16_000)] = [0; frame_len(16_000)];
        match &mut self.path {
            Path::Passthrough => return Ok(()),
            Path::Up(up) => up.process(&SILENCE[..self.in_len], out),
            Path::Down(down) => down.process(&SILENCE[..self.in_len], out),
            Path::Fft(path) => {
                path.input.fill(0.0);
                path.run()?;
                out.extend(path.output.iter().map(|&x| to_i16(x)));
            }
        }
        self.reset();
        Ok(())
    }

    /// Forgets all buffered audio, as if newly constructed. Use it when the
    /// stream is discontinuous (a new prompt, a hold/resume), so that the end
    /// of the old audio does not bleed into the new.
    pub fn reset(&mut self) {
        match &mut self.path {
            Path::Passthrough => {}
            Path::Up(up) => up.reset(),
            Path::Down(down) => down.reset(),
            Path::Fft(path) => path.fft.reset(),
        }
    }
}

impl FftPath {
    fn run(&mut self) -> Result<(), ResampleError> {
        let frames_in = self.input.len();
        let frames_out = self.output.len();
        let input = InterleavedSlice::new(&self.input[..], 1, frames_in)
            .map_err(|e| ResampleError::Engine(e.to_string()))?;
        let mut output = InterleavedSlice::new_mut(&mut self.output[..], 1, frames_out)
            .map_err(|e| ResampleError::Engine(e.to_string()))?;
        let (used, written) = self
            .fft
            .process_into_buffer(&input, &mut output, None)
            .map_err(|e| ResampleError::Engine(e.to_string()))?;
        if used != frames_in || written != frames_out {
            return Err(ResampleError::Engine(format!(
                "rubato processed {used}→{written} samples instead of {frames_in}→{frames_out}"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths() {
        assert_eq!(frame_len(8_000), 160);
        assert_eq!(frame_len(16_000), 320);
        assert_eq!(frame_len(22_050), 441);
        assert_eq!(frame_len(24_000), 480);
        assert_eq!(frame_len(48_000), 960);
    }

    #[test]
    fn rejects_rates_without_whole_20ms_frames_or_out_of_range() {
        for bad in [0, 7_999, 8_001, 11_025, 192_050, u32::MAX] {
            assert_eq!(
                Resampler::new(bad, 8_000).unwrap_err(),
                ResampleError::UnsupportedRate(bad)
            );
            assert_eq!(
                Resampler::new(8_000, bad).unwrap_err(),
                ResampleError::UnsupportedRate(bad)
            );
        }
    }

    #[test]
    fn rejects_wrong_frame_length_without_output() {
        let mut r = Resampler::new(8_000, 16_000).unwrap();
        let mut out = Vec::new();
        for len in [0, 159, 161, 320] {
            let err = r.process(&vec![0; len], &mut out).unwrap_err();
            assert_eq!(
                err,
                ResampleError::FrameLength {
                    expected: 160,
                    got: len,
                    rate: 8_000
                }
            );
        }
        assert!(out.is_empty());
    }

    #[test]
    fn same_rate_is_an_exact_passthrough() {
        let mut r = Resampler::new(16_000, 16_000).unwrap();
        assert!(r.is_passthrough());
        assert_eq!(r.delay(), Duration::ZERO);
        assert_eq!(r.delay_samples(), 0);
        let frame: Vec<i16> = (0..320)
            .map(|i| (i * 97 % 65_536 - 32_768) as i16)
            .collect();
        let mut out = vec![1, 2];
        r.process(&frame, &mut out).unwrap();
        assert_eq!(&out[..2], &[1, 2]);
        assert_eq!(&out[2..], &frame[..]);
        r.flush(&mut out).unwrap();
        assert_eq!(out.len(), 322);
    }

    #[test]
    fn reported_delays() {
        let r = Resampler::new(8_000, 48_000).unwrap();
        assert_eq!(r.delay(), Duration::from_millis(10));
        assert_eq!(r.delay_samples(), 480);
        let r = Resampler::new(48_000, 8_000).unwrap();
        assert_eq!(r.delay_samples(), 80);
        let r = Resampler::new(22_050, 8_000).unwrap();
        assert_eq!(
            r.delay(),
            Duration::from_nanos(220 * 1_000_000_000 / 22_050)
        );
        assert_eq!(r.delay_samples(), 80);
    }

    #[test]
    fn half_band_pairs_report_whole_sample_delays() {
        let up = Resampler::new(8_000, 16_000).unwrap();
        assert_eq!(up.delay(), Duration::from_millis(2));
        assert_eq!(up.delay_samples(), 32);
        let down = Resampler::new(16_000, 8_000).unwrap();
        assert_eq!(down.delay(), Duration::from_micros(1_875));
        assert_eq!(down.delay_samples(), 15);
        assert!(format!("{up:?}").contains("half-band"));
    }

    #[test]
    fn full_scale_saturates_instead_of_wrapping() {
        // A full-scale square wave overshoots after band-limiting; the
        // overshoot must clip, never wrap to the opposite sign.
        let mut r = Resampler::new(8_000, 48_000).unwrap();
        let frame: Vec<i16> = (0..160)
            .map(|i| if (i / 8) % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        let mut out = Vec::new();
        for _ in 0..10 {
            r.process(&frame, &mut out).unwrap();
        }
        let tail = &out[480 * 2..];
        assert!(tail.contains(&i16::MAX) && tail.contains(&i16::MIN));
        // Within a half period of the square wave (48 output samples) the
        // sign never flips mid-plateau, which wrapping would cause.
        for w in tail.windows(2) {
            assert!(
                (i32::from(w[0]) - i32::from(w[1])).abs() < 40_000,
                "wrap-around step {w:?}"
            );
        }
    }

    #[test]
    fn reset_forgets_previous_audio() {
        let mut r = Resampler::new(16_000, 8_000).unwrap();
        let loud: Vec<i16> = (0..320)
            .map(|i| if i % 2 == 0 { 20_000 } else { -1_000 })
            .collect();
        let mut out = Vec::new();
        r.process(&loud, &mut out).unwrap();
        r.reset();
        out.clear();
        r.process(&[0; 320], &mut out).unwrap();
        assert!(out.iter().all(|&s| s == 0), "{out:?}");
    }
}
