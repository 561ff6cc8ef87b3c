//! The detector and generator do not allocate per frame once built: counted
//! with a wrapping global allocator (`support::alloc`).

mod support;

use hotline_media::dtmf::{Digit, DtmfDetector, DtmfGenerator, ToneParams};
use support::alloc::{Counting, allocations, assert_counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn twenty_ms_frames_do_not_allocate() {
    assert_counting();
    for rate in [8000u32, 16000] {
        let mut det = DtmfDetector::new(rate).unwrap();
        let mut tone_gen = DtmfGenerator::new(rate, Digit::D4, ToneParams::level(-12.0)).unwrap();
        let frame_len = rate as usize / 50;
        let mut frame = vec![0i16; frame_len];
        let mut events = Vec::with_capacity(8);
        let mut n_events = 0;
        let before = allocations();
        for i in 0..200 {
            // 100 ms of tone, 100 ms of silence, repeated.
            if (i / 5) % 2 == 0 {
                tone_gen.fill(&mut frame);
            } else {
                frame.fill(0);
            }
            det.process(&frame, &mut events);
            n_events += events.len();
            events.clear();
        }
        let after = allocations();
        assert_eq!(after - before, 0, "{rate} Hz: allocated on the hot path");
        // 20 tone bursts, each a start and an end.
        assert_eq!(n_events, 40, "{rate} Hz");
    }
}
