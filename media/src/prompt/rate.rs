//! Whole-clip rate conversion between arbitrary rates.
//!
//! Prompt files come at any rate (11.025, 22.05, 32, 44.1 kHz...), so this
//! cannot use the 20 ms frame [`Resampler`](crate::resample::Resampler),
//! which needs rates that are multiples of 50 Hz. A whole clip is converted
//! at once with rubato's FFT resampler, which trims its own delay so the
//! output is aligned with the input.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};

use super::PromptError;

/// Minimum FFT block length on either side: long enough for a sharp
/// anti-aliasing filter. The delay it adds is trimmed anyway.
const BLOCK: usize = 1024;

/// FFT blocks per rubato call. Only a memory/speed trade-off.
const SUB_CHUNKS: usize = 4;

/// Highest source rate converted. Symphonia accepts any rate a header
/// declares; the FFT size grows with `rate / gcd(rates)`, so an absurd rate
/// is refused instead of allocating huge transforms.
const MAX_SOURCE_RATE: u32 = 768_000;

pub(super) fn convert(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, PromptError> {
    if from == to {
        return Ok(samples.to_vec());
    }
    if from > MAX_SOURCE_RATE {
        return Err(PromptError::InvalidSourceRate(format!(
            "{from} Hz is above {MAX_SOURCE_RATE} Hz"
        )));
    }
    let engine = |e: &dyn std::fmt::Display| PromptError::Resample(e.to_string());
    let mut fft = Fft::<f32>::new_custom(
        from as usize,
        to as usize,
        block_len(from, to) * SUB_CHUNKS,
        SUB_CHUNKS,
        1,
        WindowFunction::BlackmanHarris2,
        FixedSync::Input,
    )
    .map_err(|e| engine(&e))?;
    let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| engine(&e))?;
    let out = fft
        .process_all(&input, samples.len(), None)
        .map_err(|e| engine(&e))?;
    Ok(out.take_data())
}

/// FFT block length (input samples) rubato must use for `from` → `to`.
///
/// Blocks are multiples of `from / gcd` on the input side and `to / gcd` on
/// the output side. rubato centres its filter on input sample `block_in / 2`
/// but trims `block_out / 2` output samples of delay (integer divisions);
/// the two agree only when both blocks are even. Otherwise the output is
/// shifted by half a sample (48 kHz → 8 kHz with odd blocks comes out with a
/// half-sample error that wrecks the waveform).
fn block_len(from: u32, to: u32) -> usize {
    let (mut a, mut b) = (from as usize, to as usize);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let (unit_in, unit_out) = (from as usize / a, to as usize / a);
    // The filter's cutoff sharpens with the block on the narrower side, so
    // both sides get at least BLOCK samples.
    let mut blocks = BLOCK.div_ceil(unit_in).max(BLOCK.div_ceil(unit_out));
    if blocks % 2 == 1 && (unit_in % 2 == 1 || unit_out % 2 == 1) {
        blocks += 1;
    }
    blocks * unit_in
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, len: usize) -> Vec<f32> {
        (0..len)
            .map(|n| 0.5 * (std::f32::consts::TAU * freq * n as f32 / rate as f32).sin())
            .collect()
    }

    /// Largest deviation of one second `y` at 8 kHz from the sine it should
    /// be, skipping the edges where the clip starts and stops abruptly.
    fn error_vs_8k_sine(y: &[f32], freq: f32) -> f32 {
        let expect = sine(freq, 8_000, 8_000);
        y[400..7_600]
            .iter()
            .zip(&expect[400..7_600])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn odd_ratio_keeps_length_and_phase() {
        // 44.1 kHz -> 8 kHz: one second in, one second out, aligned.
        let x = sine(440.0, 44_100, 44_100);
        let y = convert(&x, 44_100, 8_000).unwrap();
        assert_eq!(y.len(), 8_000);
        let err = error_vs_8k_sine(&y, 440.0);
        assert!(err < 0.001, "max error {err}");
    }

    #[test]
    fn blocks_are_even_multiples_of_the_rate_unit() {
        assert_eq!(block_len(44_100, 8_000), 14 * 441);
        assert_eq!(block_len(22_050, 16_000), 4 * 441);
        assert_eq!(block_len(48_000, 8_000), 1024 * 6);
        assert_eq!(block_len(11_025, 8_000), 4 * 441);
        assert_eq!(block_len(16_000, 48_000), 1024);
        assert_eq!(block_len(8_000, 44_100), 14 * 80);
    }

    #[test]
    fn downsampling_by_six_is_aligned() {
        // 48 kHz -> 8 kHz has a one-sample output unit; an odd number of
        // blocks would misalign by half an output sample.
        let x = sine(1000.0, 48_000, 48_000);
        let y = convert(&x, 48_000, 8_000).unwrap();
        let err = error_vs_8k_sine(&y, 1000.0);
        assert!(err < 0.001, "max error {err}");
    }

    #[test]
    fn same_rate_is_a_copy() {
        let x = sine(1000.0, 16_000, 100);
        assert_eq!(convert(&x, 16_000, 16_000).unwrap(), x);
    }

    #[test]
    fn absurd_source_rate_is_refused() {
        assert!(matches!(
            convert(&[0.0; 10], 4_000_000, 8_000),
            Err(PromptError::InvalidSourceRate(_))
        ));
    }
}
