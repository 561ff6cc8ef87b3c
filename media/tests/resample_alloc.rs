//! The per-frame path must not allocate once warmed up: it runs for every
//! 20 ms frame of every call. A counting global allocator (this test binary
//! only, `support::alloc`) checks it.

mod support;

use hotline_media::resample::{Resampler, frame_len};
use support::alloc::{Counting, allocations, assert_counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn process_flush_and_reset_do_not_allocate() {
    // The counter must see allocations at all, or the test proves nothing.
    assert_counting();

    let rates = [8_000, 16_000, 22_050, 24_000, 48_000];
    for from in rates {
        for to in rates {
            let mut r = Resampler::new(from, to).unwrap();
            let input: Vec<i16> = (0..frame_len(from))
                .map(|i| (i as i16).wrapping_mul(37))
                .collect();
            let mut out = Vec::with_capacity(frame_len(to));
            // Warm up: rubato plans its FFTs at construction, but give any
            // lazy state one frame to settle.
            r.process(&input, &mut out).unwrap();
            let before = allocations();
            for _ in 0..50 {
                out.clear();
                r.process(&input, &mut out).unwrap();
            }
            out.clear();
            r.flush(&mut out).unwrap();
            r.reset();
            out.clear();
            r.process(&input, &mut out).unwrap();
            let after = allocations();
            assert_eq!(
                after - before,
                0,
                "{from}->{to}: {} allocations",
                after - before
            );
            assert_eq!(out.len(), frame_len(to));
        }
    }
}
