//! Where in the 20 ms frame each session ticks.
//!
//! tokio timers have 1 ms granularity, so sessions whose deadlines fall in
//! the same millisecond are woken together. Started back to back (a burst
//! of calls, a load test) every session would share one phase: all of them
//! would wake on the same millisecond, the runtime would work through them
//! one after the other, and the last packet of the burst would leave
//! milliseconds after the first, a different one each tick. That is the
//! spacing jitter a receiver sees. Spreading the sessions over the 20
//! millisecond slots of a frame keeps each burst to 1/20 of the sessions.
//!
//! Slots are handed out by stepping a shared counter by 7, which is coprime
//! with 20: consecutive sessions land 7 ms apart, and every 20 sessions
//! cover all slots once. Slots are measured on one process-wide grid, so
//! the spread holds whenever the sessions started.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::PTIME;

/// Slots per frame: the timer granularity is 1 ms.
const SLOTS: u32 = 20;
/// Step between consecutive sessions' slots; coprime with [`SLOTS`].
const STEP: u32 = 7;

static NEXT_SLOT: AtomicU32 = AtomicU32::new(0);
static GRID: OnceLock<Instant> = OnceLock::new();

/// The slot (0–19 ms into the frame) of the `n`th session.
fn slot(n: u32) -> Duration {
    Duration::from_millis(u64::from(n.wrapping_mul(STEP) % SLOTS))
}

/// The first deadline strictly after `now` that falls on `slot` of the
/// 20 ms grid starting at `grid`.
fn first_deadline(grid: Instant, now: Instant, slot: Duration) -> Instant {
    // A grid in the future (a paused test clock) is treated as starting now.
    let grid = grid.min(now);
    let since = now.duration_since(grid);
    let frames = since.as_nanos() / PTIME.as_nanos();
    let mut at = grid + PTIME * u32::try_from(frames).unwrap_or(u32::MAX) + slot;
    while at <= now {
        at += PTIME;
    }
    at
}

/// The first tick of a session starting at `now`: on the next free slot,
/// within one frame.
pub(super) fn first_tick(now: Instant) -> Instant {
    let grid = *GRID.get_or_init(|| now);
    let n = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
    first_deadline(grid, now, slot(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_consecutive_sessions_cover_every_slot_once() {
        let mut seen: Vec<u64> = (0..20).map(|n| slot(n).as_millis() as u64).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        assert_eq!(slot(1).as_millis(), 7, "neighbours are spread apart");
    }

    #[test]
    fn the_first_deadline_is_on_the_slot_and_within_a_frame() {
        let grid = Instant::now();
        for (offset_ms, slot_ms, expect_ms) in [
            (0u64, 0u64, 20u64),
            (0, 5, 5),
            (3, 5, 5),
            (5, 5, 25),
            (6, 5, 25),
            (47, 13, 53),
            (41, 0, 60),
        ] {
            let now = grid + Duration::from_millis(offset_ms);
            let at = first_deadline(grid, now, Duration::from_millis(slot_ms));
            assert_eq!(
                at - grid,
                Duration::from_millis(expect_ms),
                "now +{offset_ms} ms, slot {slot_ms}"
            );
            assert!(at > now && at - now <= PTIME);
        }
    }

    #[test]
    fn a_grid_in_the_future_starts_at_now() {
        let now = Instant::now();
        let grid = now + Duration::from_secs(1);
        let at = first_deadline(grid, now, Duration::from_millis(4));
        assert_eq!(at - now, Duration::from_millis(4));
    }
}
