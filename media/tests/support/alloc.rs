//! A counting global allocator for the no-allocation tests.
//!
//! `#[global_allocator]` has to be declared by each test crate itself:
//!
//! ```ignore
//! mod support;
//! #[global_allocator]
//! static GLOBAL: support::alloc::Counting = support::alloc::Counting;
//! ```
//!
//! Allocations are counted per thread: the test harness's own threads
//! (result collection, output) allocate while a test runs, and under load
//! those allocations used to land in a test's measurement window. The code
//! under test runs on the test's thread, so that is the count that matters.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // Const-initialised and without a destructor, so touching it never
    // allocates (which would recurse into the allocator).
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: a thread being torn down may still free memory.
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
}

/// The system allocator, counting allocations and reallocations.
pub struct Counting;

// SAFETY: forwards to the system allocator unchanged, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations (and reallocations) made so far by the calling thread.
pub fn allocations() -> usize {
    COUNT.with(Cell::get)
}

/// Panics unless the counter sees an allocation at all: without this a
/// test that forgot the `#[global_allocator]` line would prove nothing.
pub fn assert_counting() {
    let before = allocations();
    let probe = std::hint::black_box(vec![1u8; 64]);
    assert!(
        allocations() > before,
        "the counting allocator is not installed"
    );
    drop(probe);
}
