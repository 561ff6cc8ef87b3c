//! Test harness for driving real third-party SIP peers on 127.0.0.1:
//! **sipp** (`sip-tester`) and **baresip**, plus the media they need and
//! the checks their audio needs. Installed by `scripts/deps`.
//!
//! Use it from an integration test with `mod peers;` (this directory is a
//! module, not a test crate). Everything here is bounded: every wait takes a
//! timeout, every child process is killed when its handle drops, every run
//! writes its files into its own directory under `CARGO_TARGET_TMPDIR/peers/`
//! (kept after the test, for post-mortems: scenario, logs, stat CSVs, WAVs).
//! Tests may run in parallel: ask [`ports`] for distinct ports per test.
//!
//! # Recipes
//!
//! Inbound call from sipp, with speech and RFC 4733 digits, to a server on
//! `server_port`:
//!
//! ```ignore
//! let pcap = peers::pcap::speech_dtmf_pcap("Hello from sipp", "1234#")?;
//! let mut run = peers::sipp::SippRun::uac(
//!     peers::sipp::Scenario::uac_pcap(&pcap, 6000),
//!     ([127, 0, 0, 1], server_port).into(),
//! );
//! run.timeout = Duration::from_secs(20);
//! let result = run.spawn()?.wait()?;
//! assert_eq!((result.successful, result.failed), (1, 0), "{}", result.diagnostics());
//! ```
//!
//! Other sipp scenarios ([`sipp::Scenario`]): a UAC expecting a final status
//! (`uac_expect_status(404)`), a UAC that CANCELs after a provisional
//! (`uac_cancel`), offers with other codecs (`uac_offer(Offer::Pcma)`,
//! `Offer::Opus`), a UAC that answers a digest challenge (`uac_auth`, with
//! `SippRun::auth`), a UAC that ignores the first 200 OK and ACKs only its
//! retransmission (`uac_lost_200`); UAS scenarios that answer
//! (`uas_answer`), answer and play a pcap, challenge with 401 first
//! (`uas_auth`), and hang up themselves after N ms (`hold_ms`).
//!
//! A UAS's audio is received by a Rust [`rtp::RtpSink`] whose port goes into
//! the UAS's SDP (`Scenario::uas_answer(sink.port(), …)`); the sink records
//! every packet and can echo them back. [`rtp::RtpSink::finish`] returns an
//! [`rtp::Capture`]: PCM per stream, RFC 4733 digits, payload types.
//!
//! baresip as UAC or auto-answering UAS ([`baresip::Baresip`]): start it,
//! `dial`, `wait_event("CALL_ESTABLISHED", …)`, `send_dtmf`, `hangup`, then
//! read its `sndfile` recordings (`recordings()`; `dec` = received audio).
//!
//! Audio checks ([`audio`]): RMS, non-silence, duration and the
//! envelope cross-correlation of what was sent against what arrived.
//!
//! # Port plan
//!
//! Peers take ports from 20000–32767 ([`ports::free_udp_block`]), so a
//! server under test should use another range (Hotline's RTP: 10000–19999).

#![allow(dead_code)]

pub mod audio;
pub mod baresip;
pub mod hotline;
pub mod media;
pub mod pcap;
pub mod ports;
pub mod process;
pub mod rtp;
pub mod sipp;
pub mod talker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// The loopback address every peer binds and every target must use.
pub const LOOPBACK: std::net::Ipv4Addr = std::net::Ipv4Addr::LOCALHOST;

/// A fresh directory for one peer run: `CARGO_TARGET_TMPDIR/peers/<label>-<pid>-<n>`.
/// Kept after the test so a failure can be read from its logs.
pub fn run_dir(label: &str) -> anyhow::Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("peers")
        .join(format!("{label}-{}-{n}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The repository's `fixtures/peers/` directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/peers")
}
