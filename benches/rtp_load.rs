//! Load test of the media path: N concurrent echo calls with RTP both ways.
//!
//! Hotline's side is what the `echo` number runs per call: a
//! `MediaSession` (one UDP socket from the port range, latching, the
//! receive chain: jitter buffer, G.711 decode, 16 kHz, and with DSP on,
//! in-band DTMF and VAD) whose received audio is played straight back,
//! paced on the 20 ms deadline clock (16 kHz → 8 kHz → PCMU). It runs on a
//! 2-thread tokio runtime whose threads are named `hl-media`, so their CPU
//! time can be read apart from the load generator's.
//!
//! The peer side runs on one thread of its own (a current-thread runtime):
//! one socket per call sends a PCMU packet every 20 ms, with non-blocking
//! sends in one batch loop, and per-socket receivers record when Hotline's
//! packets arrive. It shares the 2 cores with Hotline: spacing is measured
//! at the peer's sockets, so it includes the generator's own delay in
//! reading them.
//!
//! Run: `cargo bench --bench rtp_load -- [calls] [seconds] [no-dsp]`
//! (defaults: 500 calls, 20 s, DSP on). Bounded in calls and time. No SIP
//! is involved: this measures media only.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotline::config::RtpConfig;
use hotline::rtp::{MediaSession, PortAllocator, RemoteMedia, SessionConfig};
use hotline_media::codec::{self, CodecKind};
use hotline_media::rtp::{RtpPacket, RtpPacketBuilder, is_rtcp};
use tokio::net::UdpSocket;

const MAX_CALLS: usize = 2000;
const MAX_SECONDS: u64 = 120;
const TICK: Duration = Duration::from_millis(20);

#[derive(Default)]
struct PeerStats {
    received: u64,
    seq_gaps: u64,
    /// Sequence numbers the peer should have seen, first to last.
    expected: u64,
    spacing_us: Vec<u32>,
}

fn main() {
    let nums: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let calls = nums
        .first()
        .copied()
        .unwrap_or(500)
        .clamp(1, MAX_CALLS as u64) as usize;
    let seconds = nums.get(1).copied().unwrap_or(20).clamp(2, MAX_SECONDS);
    let dsp = !std::env::args().any(|a| a == "no-dsp" || a == "--no-dsp");
    // Other work on the 2 cores skews every figure; say how much there was.
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let hotline_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hl-media")
        .enable_all()
        .build()
        .unwrap();
    let peer_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Peer sockets first, so Hotline knows where to send.
    let peers: Vec<Arc<UdpSocket>> = peer_rt.block_on(async {
        let mut v = Vec::with_capacity(calls);
        for _ in 0..calls {
            v.push(Arc::new(
                UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap(),
            ));
        }
        v
    });

    // Hotline's sessions: echo what arrives.
    let allocator = PortAllocator::new(&RtpConfig {
        port_min: 10000,
        port_max: 19999,
        bind_ip: Ipv4Addr::LOCALHOST.into(),
        ..RtpConfig::default()
    });
    let (handles, hotline_addrs): (Vec<_>, Vec<SocketAddr>) = hotline_rt.block_on(async {
        let mut handles = Vec::new();
        let mut addrs = Vec::new();
        for peer in &peers {
            let sockets = allocator.allocate(false).expect("enough RTP ports");
            let remote = RemoteMedia {
                rtp: peer.local_addr().unwrap(),
                rtcp: None,
                rtcp_mux: false,
                codec: CodecKind::Pcmu,
                payload_type: 0,
                telephone_event_pt: Some(101),
            };
            let mut config = SessionConfig::new(remote);
            config.dsp = dsp;
            let (handle, mut out) = MediaSession::start(config, sockets).unwrap();
            addrs.push(SocketAddr::from((Ipv4Addr::LOCALHOST, handle.local_port())));
            let sink = handle.pcm_sink();
            tokio::spawn(async move {
                while let Some(frame) = out.pcm.recv().await {
                    // Echo: never wait on a full sink, drop instead.
                    let _ = sink.try_send(frame);
                }
            });
            handles.push(handle);
        }
        (handles, addrs)
    });

    let cpu_start = thread_cpu("hl-media");
    let wall_start = Instant::now();

    // The peer: send a packet per call per tick, record what comes back.
    let stats: Vec<Arc<Mutex<PeerStats>>> = (0..calls).map(|_| Arc::default()).collect();
    let peer_thread = {
        let peers = peers.clone();
        let stats = stats.clone();
        std::thread::Builder::new()
            .name("peer".into())
            .spawn(move || {
                peer_rt.block_on(async move {
                    let deadline = Instant::now() + Duration::from_secs(seconds);
                    for (sock, st) in peers.iter().zip(&stats) {
                        let (sock, st) = (Arc::clone(sock), Arc::clone(st));
                        tokio::spawn(async move {
                            let mut buf = [0u8; 1500];
                            let mut last: Option<(Instant, u16)> = None;
                            // Runs until the runtime is dropped with the
                            // thread; no per-packet timer.
                            loop {
                                let Ok(n) = sock.recv(&mut buf).await else {
                                    continue;
                                };
                                let now = Instant::now();
                                // Hotline sends RTCP to the port above this
                                // one, which may be another call's socket.
                                if is_rtcp(&buf[..n]) {
                                    continue;
                                }
                                let Ok(p) = RtpPacket::parse(&buf[..n]) else {
                                    continue;
                                };
                                let mut st = st.lock().unwrap();
                                st.received += 1;
                                st.expected += match last {
                                    // Forward distance; a reordered packet
                                    // adds nothing.
                                    Some((_, seq)) => {
                                        let d = p.sequence().wrapping_sub(seq);
                                        if d < 0x8000 { u64::from(d) } else { 0 }
                                    }
                                    None => 1,
                                };
                                if let Some((t, seq)) = last {
                                    if p.sequence() != seq.wrapping_add(1) {
                                        st.seq_gaps += 1;
                                    }
                                    // Spacing is only meaningful between consecutive packets.
                                    if p.sequence() == seq.wrapping_add(1) {
                                        st.spacing_us.push((now - t).as_micros() as u32);
                                    }
                                }
                                last = Some((now, p.sequence()));
                            }
                        });
                    }
                    let mut enc = codec::encoder(CodecKind::Pcmu, 8000).unwrap();
                    let tone: Vec<i16> = (0..160)
                        .map(|i| (6000.0 * (i as f64 * 0.35).sin()) as i16)
                        .collect();
                    let mut payload = Vec::new();
                    enc.encode(&tone, &mut payload).unwrap();
                    let mut next = tokio::time::Instant::now();
                    let mut n: u32 = 0;
                    let mut buf = Vec::with_capacity(200);
                    while Instant::now() < deadline {
                        for (sock, to) in peers.iter().zip(&hotline_addrs) {
                            buf.clear();
                            RtpPacketBuilder {
                                marker: n == 0,
                                payload_type: 0,
                                sequence: n as u16,
                                timestamp: n.wrapping_mul(160),
                                ssrc: 0x5eed,
                                csrcs: &[],
                                extension: None,
                                padding: 0,
                                payload: &payload,
                            }
                            .write_to(&mut buf)
                            .unwrap();
                            if sock.try_send_to(&buf, *to).is_err() {
                                let _ = sock.send_to(&buf, to).await;
                            }
                        }
                        n += 1;
                        next += TICK;
                        tokio::time::sleep_until(next).await;
                    }
                    n
                })
            })
            .unwrap()
    };
    let peer_sent_per_call = peer_thread.join().unwrap();
    let wall = wall_start.elapsed();
    let cpu = thread_cpu("hl-media")
        .zip(cpu_start)
        .map(|(a, b)| a.saturating_sub(b));

    let (mut sent, mut late_ticks, mut received_by_hotline) = (0u64, 0u64, 0u64);
    let snapshot: Vec<_> = hotline_rt.block_on(async {
        let mut v = Vec::new();
        for h in &handles {
            if let Ok(s) = h.stats().await {
                v.push(s);
            }
        }
        v
    });
    for s in &snapshot {
        sent += s.rtp_sent;
        late_ticks += s.late_ticks;
        received_by_hotline += s.rtp_received;
    }
    let mut spacing: Vec<u32> = Vec::new();
    let (mut peer_received, mut gaps, mut expected) = (0u64, 0u64, 0u64);
    for st in &stats {
        let st = st.lock().unwrap();
        peer_received += st.received;
        gaps += st.seq_gaps;
        expected += st.expected;
        spacing.extend_from_slice(&st.spacing_us);
    }
    spacing.sort_unstable();
    let pct = |p: f64| f64::from(spacing[((spacing.len() - 1) as f64 * p) as usize]) / 1000.0;
    let within = spacing
        .iter()
        .filter(|&&s| (18_000..=22_000).contains(&s))
        .count();

    let mode = if dsp {
        "DSP on: jitter buffer, decode, 16 kHz, DTMF, VAD"
    } else {
        "no DSP: jitter buffer, decode, 16 kHz"
    };
    println!("rtp_load: {calls} echo calls (PCMU, {mode}, played back) for {seconds} s");
    println!(
        "  load average before the run: {}",
        load_before.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let peer_sent = u64::from(peer_sent_per_call) * calls as u64;
    println!(
        "  peer -> Hotline: {received_by_hotline} of {peer_sent} received ({:.4}% lost)",
        peer_sent.saturating_sub(received_by_hotline) as f64 * 100.0 / peer_sent.max(1) as f64
    );
    println!(
        "  Hotline -> peer: {peer_received} of {expected} received in the peer's window ({:.4}% lost); Hotline sent {sent} in all",
        expected.saturating_sub(peer_received) as f64 * 100.0 / expected.max(1) as f64
    );
    println!("  sequence gaps seen by the peer: {gaps}; late ticks in Hotline: {late_ticks}");
    println!(
        "  outgoing spacing at the peer: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; within 20 +/- 2 ms: {:.2}%",
        pct(0.5),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        within as f64 * 100.0 / spacing.len() as f64
    );
    if let Some(cpu) = cpu {
        let cores = cpu.as_secs_f64() / wall.as_secs_f64();
        println!(
            "  Hotline media threads: {cores:.2} cores = {:.3}% of a core per call",
            cores * 100.0 / calls as f64
        );
    }
    for h in handles {
        hotline_rt.block_on(async move {
            let _ = h.stop().await;
        });
    }
}

/// CPU time of this process's threads named `name`, from /proc (Linux).
fn thread_cpu(name: &str) -> Option<Duration> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = entry.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.trim().starts_with(name) {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
        total += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    Some(Duration::from_millis(total * 10))
}
