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
//! The load generator is one plain thread with one non-blocking socket per
//! call. Every 20 ms it sends one PCMU packet per call in a batch, then
//! reads every socket until it would block. It needs no wake-up per packet
//! because the kernel stamps each datagram as it is queued on the socket
//! (`SO_TIMESTAMPNS`): spacing is measured from those stamps, i.e. when
//! Hotline's packets reached the peer, not when the generator got round to
//! reading them. The generator still shares the 2 cores with Hotline.
//!
//! Run: `cargo bench --bench rtp_load -- [calls] [seconds] [no-dsp]`
//! (defaults: 500 calls, 20 s, DSP on). Bounded in calls and time. No SIP
//! is involved: this measures media only.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hotline::config::RtpConfig;
use hotline::rtp::{MediaSession, PortAllocator, RemoteMedia, SessionConfig};
use hotline_media::codec::{self, CodecKind};
use hotline_media::rtp::{RtpPacket, RtpPacketBuilder, is_rtcp};

const MAX_CALLS: usize = 2000;
const MAX_SECONDS: u64 = 120;
const TICK: Duration = Duration::from_millis(20);
/// The generator's send phases: one per millisecond of a frame.
const SLOTS: usize = 20;
/// The generator's SSRC; Hotline's packets carry their own.
const PEER_SSRC: u32 = 0x5eed;

/// What one call's peer socket saw of Hotline's stream.
#[derive(Default)]
struct PeerStats {
    received: u64,
    seq_gaps: u64,
    /// Sequence numbers the peer should have seen, first to last.
    expected: u64,
    /// Hotline's SSRC, from the first packet.
    ssrc: Option<u32>,
    last: Option<(Duration, u16)>,
    spacing_us: Vec<u32>,
}

impl PeerStats {
    fn on_packet(&mut self, data: &[u8], stamp: Duration) {
        // Hotline sends RTCP to the port above this one, which may be
        // another call's socket.
        if is_rtcp(data) {
            return;
        }
        let Ok(p) = RtpPacket::parse(data) else {
            return;
        };
        if *self.ssrc.get_or_insert(p.ssrc()) != p.ssrc() {
            return;
        }
        self.received += 1;
        self.expected += match self.last {
            // Forward distance; a reordered packet adds nothing.
            Some((_, seq)) => {
                let d = p.sequence().wrapping_sub(seq);
                if d < 0x8000 { u64::from(d) } else { 0 }
            }
            None => 1,
        };
        if let Some((t, seq)) = self.last {
            if p.sequence() == seq.wrapping_add(1) {
                // Spacing is only meaningful between consecutive packets.
                let us = stamp.saturating_sub(t).as_micros();
                self.spacing_us.push(u32::try_from(us).unwrap_or(u32::MAX));
            } else {
                self.seq_gaps += 1;
            }
        }
        self.last = Some((stamp, p.sequence()));
    }
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

    // Peer sockets first, so Hotline knows where to send.
    let peers: Vec<UdpSocket> = (0..calls)
        .map(|_| {
            let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            s.set_nonblocking(true).unwrap();
            stamp::enable(&s).expect("SO_TIMESTAMPNS");
            s
        })
        .collect();

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
    let machine_start = machine_busy();
    let process_start = process_cpu();
    let wall_start = Instant::now();

    // The peer: send a packet per call per tick, record what comes back.
    let peer_thread = std::thread::Builder::new()
        .name("peer".into())
        .spawn(move || {
            let cpu_start = own_thread_cpu();
            let mut stats: Vec<PeerStats> = (0..calls).map(|_| PeerStats::default()).collect();
            let mut enc = codec::encoder(CodecKind::Pcmu, 8000).unwrap();
            let tone: Vec<i16> = (0..160)
                .map(|i| (6000.0 * (i as f64 * 0.35).sin()) as i16)
                .collect();
            let mut payload = Vec::new();
            enc.encode(&tone, &mut payload).unwrap();
            let mut packet = Vec::with_capacity(200);
            let mut buf = [0u8; 2048];
            let start = Instant::now();
            let end = start + Duration::from_secs(seconds);
            // Each call sends on its own millisecond of the 20 ms frame, as
            // independent phones would, rather than all 500 in one burst
            // that every session would have to absorb at once.
            let mut next = start;
            let mut slot = 0usize;
            let mut frame: u32 = 0;
            let (mut sent_total, mut send_failures) = (0u64, 0u64);
            while next < end {
                for call in (slot..calls).step_by(SLOTS) {
                    packet.clear();
                    RtpPacketBuilder {
                        marker: frame == 0,
                        payload_type: 0,
                        sequence: frame as u16,
                        timestamp: frame.wrapping_mul(160),
                        ssrc: PEER_SSRC,
                        csrcs: &[],
                        extension: None,
                        padding: 0,
                        payload: &payload,
                    }
                    .write_to(&mut packet)
                    .unwrap();
                    match peers[call].send_to(&packet, hotline_addrs[call]) {
                        Ok(_) => sent_total += 1,
                        Err(_) => send_failures += 1,
                    }
                    // The kernel stamped each datagram as it arrived, so
                    // reading once a frame loses no precision.
                    while let Ok((len, at)) = stamp::recv(&peers[call], &mut buf) {
                        stats[call].on_packet(&buf[..len], at);
                    }
                }
                slot += 1;
                if slot == SLOTS {
                    slot = 0;
                    frame += 1;
                }
                next += TICK / SLOTS as u32;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            // What was already on its way when the generator stopped.
            std::thread::sleep(TICK);
            for (sock, st) in peers.iter().zip(stats.iter_mut()) {
                while let Ok((len, at)) = stamp::recv(sock, &mut buf) {
                    st.on_packet(&buf[..len], at);
                }
            }
            let cpu = own_thread_cpu()
                .zip(cpu_start)
                .map(|(a, b)| a.saturating_sub(b));
            (sent_total, send_failures, stats, cpu)
        })
        .unwrap();
    let (peer_sent, send_failures, stats, peer_cpu) = peer_thread.join().unwrap();
    let wall = wall_start.elapsed();
    let cpu = thread_cpu("hl-media")
        .zip(cpu_start)
        .map(|(a, b)| a.saturating_sub(b));
    let machine = machine_busy()
        .zip(machine_start)
        .map(|(a, b)| a.saturating_sub(b));
    let process = process_cpu()
        .zip(process_start)
        .map(|(a, b)| a.saturating_sub(b));

    let (mut sent, mut late_ticks, mut skipped_ticks, mut received_by_hotline) =
        (0u64, 0u64, 0u64, 0u64);
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
        skipped_ticks += s.skipped_ticks;
        received_by_hotline += s.rtp_received;
    }
    let mut spacing: Vec<u32> = Vec::new();
    let (mut peer_received, mut gaps, mut expected) = (0u64, 0u64, 0u64);
    for st in &stats {
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
        load_before
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let (Some(machine), Some(process)) = (machine, process) {
        // Other processes (builds) on the same cores slow everything down;
        // a figure taken while they ran is not comparable.
        println!(
            "  other processes during the run: {:.2} cores",
            machine.saturating_sub(process).as_secs_f64() / wall.as_secs_f64()
        );
    }
    if let Some(peer) = peer_cpu {
        println!(
            "  load generator thread: {:.2} cores",
            peer.as_secs_f64() / wall.as_secs_f64()
        );
    }
    println!(
        "  peer -> Hotline: {received_by_hotline} of {peer_sent} received ({:.4}% lost; {send_failures} sends refused)",
        peer_sent.saturating_sub(received_by_hotline) as f64 * 100.0 / peer_sent.max(1) as f64
    );
    println!(
        "  Hotline -> peer: {peer_received} of {expected} received in the peer's window ({:.4}% lost); Hotline sent {sent} in all",
        expected.saturating_sub(peer_received) as f64 * 100.0 / expected.max(1) as f64
    );
    println!(
        "  sequence gaps seen by the peer: {gaps}; late ticks in Hotline: {late_ticks}, skipped (catch-up bound): {skipped_ticks}"
    );
    println!(
        "  outgoing spacing at the peer (kernel arrival stamps): p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; within 20 +/- 2 ms: {:.2}%",
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

/// Kernel receive timestamps (Linux `SO_TIMESTAMPNS`). The only unsafe code
/// of the bench: `setsockopt` and `recvmsg` with a control buffer, which
/// neither std nor tokio expose.
mod stamp {
    use std::io;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    /// Asks the kernel to stamp every datagram queued on `socket`.
    pub fn enable(socket: &UdpSocket) -> io::Result<()> {
        let on: libc::c_int = 1;
        // SAFETY: a valid fd and a pointer to a c_int of the given size.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// One datagram without waiting, with the time (since the Unix epoch)
    /// the kernel queued it.
    pub fn recv(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, Duration)> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // u64 keeps the control buffer aligned for cmsghdr.
        let mut control = [0u64; 16];
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: msg points at live buffers of the lengths it states.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut at = None;
        // SAFETY: the CMSG_* macros walk the control buffer recvmsg filled
        // in, bounded by msg_controllen.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    at = Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        let at = at.ok_or_else(|| io::Error::other("no SO_TIMESTAMPNS stamp"))?;
        Ok((n as usize, at))
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
        total += stat_cpu(&std::fs::read_to_string(dir.join("stat")).ok()?)?;
    }
    Some(Duration::from_millis(total * 10))
}

/// CPU time of the calling thread.
fn own_thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    Some(Duration::from_millis(stat_cpu(&stat)? * 10))
}

/// CPU time of this whole process.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    Some(Duration::from_millis(stat_cpu(&stat)? * 10))
}

/// utime + stime, in clock ticks (10 ms), of a /proc `stat` line.
fn stat_cpu(stat: &str) -> Option<u64> {
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Busy CPU time of the whole machine (every state but idle and iowait),
/// from /proc/stat (Linux).
fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal; guest time is already
    // counted in user.
    let all: u64 = fields.iter().take(8).sum();
    let busy = all.checked_sub(fields.get(3)? + fields.get(4)?)?;
    Some(Duration::from_millis(busy * 10))
}
