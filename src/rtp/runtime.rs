//! The media runtime: worker threads that run only RTP sessions.
//!
//! Media sessions pace packets against a 20 ms deadline clock, so a tick
//! that waits behind an HTTP handler, a database write or a speech model is
//! a late packet on the wire. Giving sessions their own small runtime keeps
//! control-plane bursts off their threads, and raising those threads'
//! priority (nice) lets a due tick run ahead of other processes on the box
//! (a load generator, a build, a log shipper).
//!
//! Nothing here blocks: sessions never call blocking code, so the runtime
//! has no use for a blocking pool beyond tokio's own bookkeeping.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use tokio::runtime::{Builder, Handle, Runtime};
use tracing::{debug, warn};

use crate::config::RtpConfig;

/// How the media threads are scheduled (`rtp.priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaPriority {
    /// Nice [`HIGH_NICE`]: under contention the media threads get the CPU
    /// first and a larger share of it, while the control plane and other
    /// processes still run. Needs root or `CAP_SYS_NICE` (systemd
    /// `AmbientCapabilities=CAP_SYS_NICE`, or `Nice=` on the whole
    /// service); otherwise the threads stay at the default, with one
    /// warning.
    #[default]
    High,
    /// The scheduler's default, like every other thread.
    Normal,
}

/// The nice value of media threads under [`MediaPriority::High`].
///
/// Real-time scheduling (`SCHED_RR`) was measured and rejected: it kept
/// RTP spacing within ±0.5 ms at 500 calls, but starved Hotline's own SIP
/// task (call setup p99 0.5–15 s) and a co-located packet capture, and
/// cost 40% more CPU. See benches/RESULTS.md.
pub const HIGH_NICE: i32 = -10;

/// What a thread ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Nice [`HIGH_NICE`].
    High,
    /// Unchanged.
    Normal,
}

/// Owns the media runtime. Dropping it stops the runtime's threads without
/// waiting for them, so it may be dropped from async code.
#[derive(Debug)]
pub struct MediaRuntime {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl MediaRuntime {
    /// Starts `rtp.media_threads` worker threads (0: one per CPU) named
    /// `hl-media`, each scheduled as `rtp.priority` asks.
    pub fn start(config: &RtpConfig) -> std::io::Result<MediaRuntime> {
        let threads = match config.media_threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let wanted = config.priority;
        let warned = std::sync::Arc::new(AtomicBool::new(false));
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("hl-media")
            .enable_all()
            .on_thread_start(move || {
                let applied = apply(wanted);
                if applied_below(wanted, applied) && !warned.swap(true, Ordering::Relaxed) {
                    warn!(
                        wanted = ?wanted,
                        got = ?applied,
                        "media threads could not get the priority rtp.priority asks for (needs \
                         root or CAP_SYS_NICE); RTP pacing may suffer when the machine is busy"
                    );
                }
            })
            .build()?;
        debug!(threads, priority = ?wanted, "media runtime started");
        let handle = runtime.handle().clone();
        Ok(MediaRuntime {
            runtime: Some(runtime),
            handle,
        })
    }

    /// Where to spawn media sessions.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for MediaRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn applied_below(wanted: MediaPriority, applied: Applied) -> bool {
    wanted == MediaPriority::High && applied == Applied::Normal
}

/// Sets the calling thread's scheduling as `wanted` asks and says what it
/// got.
pub fn apply(wanted: MediaPriority) -> Applied {
    if wanted == MediaPriority::High && set_nice(HIGH_NICE) {
        return Applied::High;
    }
    Applied::Normal
}

#[cfg(target_os = "linux")]
fn set_nice(nice: i32) -> bool {
    // On Linux, PRIO_PROCESS with a thread id sets that thread only.
    // SAFETY: plain syscalls on the calling thread.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn set_nice(_nice: i32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_changes_nothing() {
        let before = current_nice();
        assert_eq!(apply(MediaPriority::Normal), Applied::Normal);
        assert_eq!(current_nice(), before);
    }

    #[test]
    fn high_sets_this_thread_only_or_reports_that_it_could_not() {
        let outer = current_nice();
        let (applied, inner) = std::thread::spawn(|| (apply(MediaPriority::High), current_nice()))
            .join()
            .unwrap();
        match applied {
            Applied::High => assert_eq!(inner, HIGH_NICE),
            Applied::Normal => assert_eq!(inner, outer),
        }
        assert_eq!(current_nice(), outer, "other threads keep their priority");
    }

    #[test]
    fn only_a_shortfall_warns() {
        assert!(applied_below(MediaPriority::High, Applied::Normal));
        assert!(!applied_below(MediaPriority::High, Applied::High));
        assert!(!applied_below(MediaPriority::Normal, Applied::Normal));
    }

    #[tokio::test]
    async fn runs_tasks_on_named_threads_and_drops_inside_async_code() {
        let rt = MediaRuntime::start(&RtpConfig {
            media_threads: 1,
            priority: MediaPriority::Normal,
            ..RtpConfig::default()
        })
        .unwrap();
        let name = rt
            .handle()
            .spawn(async { std::thread::current().name().map(str::to_owned) })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("hl-media"));
        drop(rt);
    }

    fn current_nice() -> i32 {
        // SAFETY: reads the calling thread's nice value.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }
}
