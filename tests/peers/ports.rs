//! Free loopback ports for peers, and bounded waits for a peer to bind one.
//!
//! Blocks come from 20000–32767, below Linux's ephemeral range (32768+) so
//! a kernel-chosen source port never lands in a peer's block, and above the
//! range a server under test should use for RTP (10000–19999). Within one
//! test binary a rotating cursor never hands out the same block twice; across
//! processes a per-process random start makes clashes unlikely, and every
//! port of a block is checked free (UDP and TCP) before it is handed out.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const RANGE_START: u16 = 20000;
const RANGE_END: u16 = 32768;

static CURSOR: Mutex<Option<u16>> = Mutex::new(None);

fn seed() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mix = (std::process::id().wrapping_mul(2_654_435_761)) ^ nanos;
    RANGE_START + (mix % u32::from(RANGE_END - RANGE_START)) as u16
}

fn is_free(port: u16) -> bool {
    UdpSocket::bind((super::LOOPBACK, port)).is_ok()
        && TcpListener::bind((super::LOOPBACK, port)).is_ok()
}

/// The first port of `n` consecutive ports (even start, so RTP/RTCP pairs
/// line up) that are free for both UDP and TCP on 127.0.0.1.
pub fn free_udp_block(n: u16) -> u16 {
    assert!(n > 0 && n < 1000, "block size {n}");
    let mut cursor = CURSOR.lock().unwrap_or_else(|e| e.into_inner());
    let mut start = cursor.unwrap_or_else(seed) & !1;
    // Bounded: at most one pass over the range.
    for _ in 0..(RANGE_END - RANGE_START) / 2 {
        if start < RANGE_START || start + n >= RANGE_END {
            start = RANGE_START;
        }
        if (start..start + n).all(is_free) {
            *cursor = Some(start + n.next_multiple_of(2) + 2);
            return start;
        }
        start += 2;
    }
    panic!("no block of {n} free ports in {RANGE_START}-{RANGE_END}");
}

/// One free port (UDP and TCP) on 127.0.0.1.
pub fn free_port() -> u16 {
    free_udp_block(1)
}

/// Ports bound on `proto` ("udp" or "tcp"; "tcp" counts only listeners)
/// read from `/proc/net/<proto>{,6}`, so checking never binds and never
/// races with the peer that is about to bind.
fn bound_ports(proto: &str) -> Vec<u16> {
    let mut ports = Vec::new();
    for file in [format!("/proc/net/{proto}"), format!("/proc/net/{proto}6")] {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (cols.get(1), cols.get(3)) else {
                continue;
            };
            // TCP state 0A = LISTEN; UDP sockets show 07 (unconnected).
            if proto == "tcp" && *state != "0A" {
                continue;
            }
            if let Some(port) = local
                .rsplit(':')
                .next()
                .and_then(|h| u16::from_str_radix(h, 16).ok())
            {
                ports.push(port);
            }
        }
    }
    ports
}

/// Is some socket bound to UDP `port` (any address)?
pub fn udp_bound(port: u16) -> bool {
    bound_ports("udp").contains(&port)
}

/// Waits until something binds UDP `port`, at most `timeout`.
pub fn wait_udp_bound(port: u16, timeout: Duration) -> anyhow::Result<()> {
    poll_until(timeout, || udp_bound(port))
        .map_err(|_| anyhow::anyhow!("UDP port {port} not bound after {timeout:?}"))
}

/// Waits until nothing is bound to UDP `port` any more, at most `timeout`.
pub fn wait_udp_free(port: u16, timeout: Duration) -> anyhow::Result<()> {
    poll_until(timeout, || !udp_bound(port))
        .map_err(|_| anyhow::anyhow!("UDP port {port} still bound after {timeout:?}"))
}

/// Waits until a TCP connect to 127.0.0.1:`port` succeeds, at most `timeout`.
pub fn wait_tcp_accepting(port: u16, timeout: Duration) -> anyhow::Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(
            &(super::LOOPBACK, port).into(),
            Duration::from_millis(200),
        ) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => {
                anyhow::bail!("TCP port {port} not accepting after {timeout:?}: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
