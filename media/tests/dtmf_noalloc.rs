//! The detector and generator do not allocate per frame once built: counted
//! with a wrapping global allocator (this file is its own test binary, so
//! nothing else runs in it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hotline_media::dtmf::{Digit, DtmfDetector, DtmfGenerator, ToneParams};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn twenty_ms_frames_do_not_allocate() {
    for rate in [8000u32, 16000] {
        let mut det = DtmfDetector::new(rate).unwrap();
        let mut tone_gen = DtmfGenerator::new(rate, Digit::D4, ToneParams::level(-12.0)).unwrap();
        let frame_len = rate as usize / 50;
        let mut frame = vec![0i16; frame_len];
        let mut events = Vec::with_capacity(8);
        let mut n_events = 0;
        let before = ALLOCS.load(Ordering::SeqCst);
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
        let after = ALLOCS.load(Ordering::SeqCst);
        assert_eq!(after - before, 0, "{rate} Hz: allocated on the hot path");
        // 20 tone bursts, each a start and an end.
        assert_eq!(n_events, 40, "{rate} Hz");
    }
}
