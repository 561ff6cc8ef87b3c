//! The per-frame path must not allocate once warmed up: it runs for every
//! 20 ms frame of every call. A counting global allocator (this test binary
//! only) checks it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hotline_media::resample::{Resampler, frame_len};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn process_flush_and_reset_do_not_allocate() {
    // One test function only: the harness runs tests on several threads and
    // the counter is global.
    // The counter must see allocations at all, or the test proves nothing.
    let before = ALLOCS.load(Ordering::SeqCst);
    let probe = std::hint::black_box(vec![1u8; 64]);
    assert!(ALLOCS.load(Ordering::SeqCst) > before);
    drop(probe);

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
            let before = ALLOCS.load(Ordering::SeqCst);
            for _ in 0..50 {
                out.clear();
                r.process(&input, &mut out).unwrap();
            }
            out.clear();
            r.flush(&mut out).unwrap();
            r.reset();
            out.clear();
            r.process(&input, &mut out).unwrap();
            let after = ALLOCS.load(Ordering::SeqCst);
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
