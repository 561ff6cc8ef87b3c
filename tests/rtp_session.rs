//! Media sessions on 127.0.0.1: audio and digits between two sessions,
//! latching, pacing continuity, inactivity, RTCP.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hotline::config::RtpConfig;
use hotline::rtp::{
    FRAME_SAMPLES, MediaEvent, MediaHandle, MediaOutputs, MediaSession, PortAllocator, RemoteMedia,
    SessionConfig,
};
use hotline_media::codec::CodecKind;
use hotline_media::codec::g711::ulaw_decode;
use hotline_media::dtmf::Digit;
use hotline_media::receive::{DigitSource, ReceiveEvent};
use hotline_media::rtcp::{IntervalConfig, RtcpPacket, parse_compound};
use hotline_media::rtp::{RtpPacket, RtpPacketBuilder};
use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout};

/// Counts heap allocations per thread. `#[tokio::test]` runs a test and
/// every task it spawns on the test's own thread, so a test can count what
/// its sessions allocate without seeing other tests.
struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_allocation() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards to the system allocator unchanged; counting touches
// only a const-initialised thread-local, which never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const TE_PT: u8 = 101;

fn allocator() -> PortAllocator {
    PortAllocator::new(&RtpConfig {
        port_min: 42000,
        port_max: 43999,
        bind_ip: LOCALHOST,
        public_ip: None,
        ..RtpConfig::default()
    })
}

fn remote(rtp: SocketAddr, rtcp_mux: bool) -> RemoteMedia {
    RemoteMedia {
        rtp,
        rtcp: None,
        rtcp_mux,
        codec: CodecKind::Pcmu,
        payload_type: 0,
        telephone_event_pt: Some(TE_PT),
    }
}

fn tone(freq: f64, frame_index: usize) -> Vec<i16> {
    (0..FRAME_SAMPLES)
        .map(|i| {
            let t = (frame_index * FRAME_SAMPLES + i) as f64 / 16_000.0;
            (8000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
        })
        .collect()
}

fn rms(frame: &[i16]) -> f64 {
    (frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / frame.len().max(1) as f64).sqrt()
}

/// Two sessions pointed at each other, with rtcp-mux or not.
fn pair(
    alloc: &PortAllocator,
    mux: bool,
    tweak: impl Fn(&mut SessionConfig),
) -> ((MediaHandle, MediaOutputs), (MediaHandle, MediaOutputs)) {
    let sa = alloc.allocate(mux).unwrap();
    let sb = alloc.allocate(mux).unwrap();
    let addr_a = SocketAddr::new(LOCALHOST, sa.port());
    let addr_b = SocketAddr::new(LOCALHOST, sb.port());
    let mut ca = SessionConfig::new(remote(addr_b, mux));
    let mut cb = SessionConfig::new(remote(addr_a, mux));
    tweak(&mut ca);
    tweak(&mut cb);
    let a = MediaSession::start(ca, sa).unwrap();
    let b = MediaSession::start(cb, sb).unwrap();
    (a, b)
}

#[tokio::test]
async fn audio_arrives_through_the_receive_chain() {
    let alloc = allocator();
    let ((a, _a_out), (_b, mut b_out)) = pair(&alloc, true, |_| {});
    let player = a.clone();
    tokio::spawn(async move {
        for i in 0..100 {
            if player.play(tone(440.0, i)).await.is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut loud = 0;
    let mut frames = 0;
    while loud < 20 && Instant::now() < deadline {
        let Ok(Some(frame)) = timeout(Duration::from_secs(1), b_out.pcm.recv()).await else {
            break;
        };
        assert_eq!(frame.len(), FRAME_SAMPLES);
        frames += 1;
        if rms(&frame) > 1000.0 {
            loud += 1;
        }
    }
    assert!(loud >= 20, "{loud} loud of {frames} frames");
    let mut latched = false;
    while let Ok(e) = b_out.events.try_recv() {
        latched |= matches!(e, MediaEvent::Latched(addr) if addr.port() == a.local_port());
    }
    assert!(latched, "B latched onto A's port");
}

#[tokio::test]
async fn rfc4733_digits_arrive_as_digit_events() {
    let alloc = allocator();
    let ((a, _a_out), (_b, mut b_out)) = pair(&alloc, false, |_| {});
    for d in ['1', '#'] {
        let digit = Digit::from_char(d).unwrap();
        assert!(
            a.send_dtmf(digit, Duration::from_millis(120))
                .await
                .unwrap()
        );
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < 2 && Instant::now() < deadline {
        let Ok(Some(e)) = timeout(Duration::from_secs(2), b_out.events.recv()).await else {
            break;
        };
        if let MediaEvent::Receive(ReceiveEvent::Digit(d)) = e
            && d.duration.is_some()
        {
            assert_eq!(d.source, DigitSource::Rfc4733);
            let len = d.duration.unwrap();
            assert!(len >= Duration::from_millis(100), "{len:?}");
            got.push(d.digit.to_char());
        }
    }
    assert_eq!(got, vec!['1', '#']);
}

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut buf = Vec::new();
    RtpPacketBuilder {
        payload_type: 0,
        sequence: seq,
        timestamp: u32::from(seq) * 160,
        ssrc,
        payload: &[0xff; 160],
        ..Default::default()
    }
    .write_to(&mut buf)
    .unwrap();
    buf
}

/// Receives RTP datagrams on `socket` until `n` arrived or `limit` passed.
async fn collect(socket: &UdpSocket, n: usize, limit: Duration) -> Vec<(Instant, Vec<u8>)> {
    let mut out = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = vec![0u8; 2048];
    while out.len() < n {
        let Ok(Ok((len, _))) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await
        else {
            break;
        };
        if !hotline_media::rtp::is_rtcp(&buf[..len]) {
            out.push((Instant::now(), buf[..len].to_vec()));
        }
    }
    out
}

#[tokio::test]
async fn latches_onto_the_real_source_and_ignores_others() {
    let alloc = allocator();
    let sdp_addr = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let real = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let intruder = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let sockets = alloc.allocate(true).unwrap();
    let ours = SocketAddr::new(LOCALHOST, sockets.port());
    let cfg = SessionConfig::new(remote(sdp_addr.local_addr().unwrap(), true));
    let (handle, mut out) = MediaSession::start(cfg, sockets).unwrap();

    // Before any media arrives we send where the SDP said.
    assert!(
        !collect(&sdp_addr, 2, Duration::from_secs(2))
            .await
            .is_empty()
    );

    // The peer's media comes from another port (a NAT).
    for seq in 0..5 {
        real.send_to(&rtp(seq, 77), ours).await.unwrap();
    }
    let latched = timeout(Duration::from_secs(2), async {
        loop {
            if let Some(MediaEvent::Latched(a)) = out.events.recv().await {
                break a;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(latched, real.local_addr().unwrap());
    let at_real = collect(&real, 5, Duration::from_secs(2)).await;
    assert_eq!(at_real.len(), 5, "replies go to the latched source");

    // Injected packets from a third socket are ignored and counted.
    for seq in 5..15 {
        intruder.send_to(&rtp(seq, 99), ours).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let stats = loop {
        let s = handle.stats().await.unwrap();
        if s.foreign_packets >= 10 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(stats.foreign_packets, 10);
    assert_eq!(stats.rtp_received, 5);
    assert_eq!(stats.remote_ssrc, Some(77));
    assert_eq!(stats.latched, Some(real.local_addr().unwrap()));
    // Media keeps flowing to the latched source, never to the intruder.
    assert!(!collect(&real, 3, Duration::from_secs(2)).await.is_empty());
    let mut buf = [0u8; 2048];
    assert!(
        timeout(Duration::from_millis(100), intruder.recv_from(&mut buf))
            .await
            .is_err()
    );

    // A re-INVITE releases the latch: the intruder's address, now
    // legitimate, latches.
    handle
        .update_remote(remote(intruder.local_addr().unwrap(), true))
        .await
        .unwrap();
    intruder.send_to(&rtp(20, 99), ours).await.unwrap();
    intruder.send_to(&rtp(21, 99), ours).await.unwrap();
    assert!(
        !collect(&intruder, 3, Duration::from_secs(2))
            .await
            .is_empty()
    );
    let s = handle.stats().await.unwrap();
    assert_eq!(s.latched, Some(intruder.local_addr().unwrap()));
}

fn is_silent(payload: &[u8]) -> bool {
    payload.iter().all(|&c| ulaw_decode(c).unsigned_abs() < 64)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Plays talkspurts of `spurt` frames separated by pauses.
fn spawn_talker(handle: MediaHandle, spurts: usize, spurt: usize, pause: Duration) {
    tokio::spawn(async move {
        for s in 0..spurts {
            for i in 0..spurt {
                if handle.play(tone(500.0, s * spurt + i)).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(pause).await;
        }
    });
}

#[tokio::test]
async fn pacing_keeps_timestamps_continuous_and_marks_talkspurts() {
    let alloc = allocator();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let sockets = alloc.allocate(true).unwrap();
    let mut cfg = SessionConfig::new(remote(peer.local_addr().unwrap(), true));
    cfg.play_capacity = 4;
    let (handle, _out) = MediaSession::start(cfg, sockets).unwrap();
    spawn_talker(handle.clone(), 40, 40, Duration::from_millis(400));

    let packets = collect(&peer, 500, Duration::from_secs(20)).await;
    assert_eq!(packets.len(), 500);
    let parsed: Vec<_> = packets
        .iter()
        .map(|(_, b)| RtpPacket::parse(b).unwrap())
        .collect();
    let ssrc = parsed[0].ssrc();
    let mut spurts = 0;
    for (i, p) in parsed.iter().enumerate() {
        assert_eq!(p.ssrc(), ssrc);
        assert_eq!(p.payload_type(), 0);
        assert_eq!(p.payload().len(), 160);
        if i == 0 {
            assert!(p.marker(), "the first packet starts the stream");
            continue;
        }
        let prev = &parsed[i - 1];
        assert_eq!(p.sequence(), prev.sequence().wrapping_add(1), "packet {i}");
        assert_eq!(
            p.timestamp(),
            prev.timestamp().wrapping_add(160),
            "packet {i}"
        );
        let starts = !is_silent(p.payload()) && is_silent(prev.payload());
        assert_eq!(p.marker(), starts, "packet {i}");
        spurts += usize::from(starts);
    }
    assert!(spurts >= 2, "{spurts} talkspurts seen");

    let mut gaps: Vec<_> = packets.windows(2).map(|w| w[1].0 - w[0].0).collect();
    gaps.sort();
    println!(
        "arrival spacing over {} packets: p50 {:?}, p99 {:?}, max {:?}",
        gaps.len() + 1,
        percentile(&gaps, 0.5),
        percentile(&gaps, 0.99),
        gaps.last().unwrap()
    );
}

#[tokio::test]
async fn without_silence_the_timestamp_still_advances() {
    let alloc = allocator();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let sockets = alloc.allocate(true).unwrap();
    let mut cfg = SessionConfig::new(remote(peer.local_addr().unwrap(), true));
    cfg.send_silence = false;
    cfg.play_capacity = 4;
    let (handle, _out) = MediaSession::start(cfg, sockets).unwrap();
    spawn_talker(handle.clone(), 3, 10, Duration::from_millis(200));

    let packets = collect(&peer, 30, Duration::from_secs(5)).await;
    assert_eq!(packets.len(), 30);
    let parsed: Vec<_> = packets
        .iter()
        .map(|(_, b)| RtpPacket::parse(b).unwrap())
        .collect();
    let mut jumps = 0;
    for (i, w) in parsed.windows(2).enumerate() {
        assert_eq!(w[1].sequence(), w[0].sequence().wrapping_add(1));
        let step = w[1].timestamp().wrapping_sub(w[0].timestamp());
        assert_eq!(step % 160, 0, "packet {}", i + 1);
        if step > 160 {
            // A pause: the next packet starts a talkspurt.
            assert!(w[1].marker(), "packet {}", i + 1);
            jumps += 1;
        } else {
            assert_eq!(step, 160);
            assert!(!w[1].marker(), "packet {}", i + 1);
        }
    }
    assert!(parsed[0].marker());
    assert!(jumps >= 2, "{jumps}");
}

#[tokio::test]
async fn inactivity_timeout_fires() {
    let alloc = allocator();
    let silent_peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let sockets = alloc.allocate(false).unwrap();
    let mut cfg = SessionConfig::new(remote(silent_peer.local_addr().unwrap(), false));
    cfg.inactivity_timeout = Duration::from_millis(300);
    let (_handle, mut out) = MediaSession::start(cfg, sockets).unwrap();
    let started = Instant::now();
    let event = timeout(Duration::from_secs(3), async {
        loop {
            match out.events.recv().await {
                Some(MediaEvent::Timeout) => break Some(Instant::now()),
                Some(_) => {}
                None => break None,
            }
        }
    })
    .await
    .unwrap();
    let at = event.expect("timeout event");
    assert!(at - started >= Duration::from_millis(300));
}

#[tokio::test]
async fn inactivity_timeout_rearms_on_traffic() {
    let alloc = allocator();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let sockets = alloc.allocate(true).unwrap();
    let ours = SocketAddr::new(LOCALHOST, sockets.port());
    let mut cfg = SessionConfig::new(remote(peer.local_addr().unwrap(), true));
    cfg.inactivity_timeout = Duration::from_millis(300);
    let (_handle, mut out) = MediaSession::start(cfg, sockets).unwrap();
    // Keep sending for 600 ms: no timeout while media flows.
    for seq in 0..30 {
        peer.send_to(&rtp(seq, 5), ours).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while let Ok(e) = out.events.try_recv() {
        assert!(!matches!(e, MediaEvent::Timeout), "timed out with traffic");
    }
    let got = timeout(Duration::from_secs(3), async {
        loop {
            if let Some(MediaEvent::Timeout) = out.events.recv().await {
                break;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "timeout after traffic stopped");
}

fn fast_rtcp(cfg: &mut SessionConfig) {
    cfg.rtcp = IntervalConfig {
        min_interval: Duration::from_millis(400),
        ..IntervalConfig::default()
    };
}

#[tokio::test]
async fn rtcp_reports_carry_our_ssrc_to_the_peer() {
    let alloc = allocator();
    // A raw peer with separate RTP and RTCP ports.
    let (peer_rtp, peer_rtcp) = loop {
        let rtp = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
        let port = rtp.local_addr().unwrap().port();
        if let Some(p) = port.checked_add(1)
            && let Ok(rtcp) = UdpSocket::bind((LOCALHOST, p)).await
        {
            break (rtp, rtcp);
        }
    };
    let sockets = alloc.allocate(false).unwrap();
    let ours = SocketAddr::new(LOCALHOST, sockets.port());
    let mut cfg = SessionConfig::new(remote(peer_rtp.local_addr().unwrap(), false));
    fast_rtcp(&mut cfg);
    let (handle, _out) = MediaSession::start(cfg, sockets).unwrap();
    let local_ssrc = handle.stats().await.unwrap().local_ssrc;
    let peer_ssrc = 0x00c0_ffee;

    let feeder = tokio::spawn(async move {
        for seq in 0..100u16 {
            peer_rtp.send_to(&rtp(seq, peer_ssrc), ours).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peer_rtp
    });

    // RTCP arrives on our port + 1's counterpart: the peer's RTCP port.
    let mut buf = vec![0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut found = None;
    while found.is_none() {
        let Ok(Ok((n, from))) =
            tokio::time::timeout_at(deadline, peer_rtcp.recv_from(&mut buf)).await
        else {
            break;
        };
        assert_eq!(from.port(), ours.port() + 1, "RTCP comes from the odd port");
        for p in parse_compound(&buf[..n]) {
            if let Ok(RtcpPacket::SenderReport(sr)) = p
                && let Some(block) = sr.reports.iter().find(|b| b.ssrc == peer_ssrc)
            {
                assert_eq!(sr.ssrc, local_ssrc);
                assert!(sr.info.packet_count > 0);
                assert!(block.extended_highest > 0);
                found = Some(*block);
            }
        }
    }
    assert!(found.is_some(), "an SR with a block about the peer");
    let _ = feeder.await;
}

#[tokio::test]
async fn two_sessions_exchange_reports_and_measure_rtt() {
    let alloc = allocator();
    for mux in [true, false] {
        let ((a, _ao), (b, _bo)) = pair(&alloc, mux, fast_rtcp);
        let deadline = Instant::now() + Duration::from_secs(5);
        let (sa, sb) = loop {
            let sa = a.stats().await.unwrap();
            let sb = b.stats().await.unwrap();
            let done = sa.rtt.is_some() && sb.rtt.is_some();
            if done || Instant::now() > deadline {
                break (sa, sb);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        for (s, other) in [(&sa, &sb), (&sb, &sa)] {
            assert!(s.rtcp_sent > 0 && s.rtcp_received > 0, "mux {mux}: {s:?}");
            assert_eq!(s.remote_ssrc, Some(other.local_ssrc), "mux {mux}");
            assert_eq!(s.remote_cumulative_lost, Some(0), "mux {mux}: {s:?}");
            let rtt = s.rtt.expect("rtt");
            assert!(rtt < Duration::from_millis(500), "mux {mux}: {rtt:?}");
        }
        a.stop().await.unwrap();
        b.stop().await.unwrap();
    }
}

#[tokio::test]
async fn stop_sends_bye_and_reports_final_stats() {
    let alloc = allocator();
    let ((a, a_out), (_b, mut b_out)) = pair(&alloc, true, |_| {});
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.stop().await.unwrap();
    let stats = timeout(Duration::from_secs(2), a_out.finished)
        .await
        .unwrap()
        .unwrap();
    assert!(stats.rtp_sent >= 5, "{stats:?}");
    let bye = timeout(Duration::from_secs(2), async {
        loop {
            match b_out.events.recv().await {
                Some(MediaEvent::RemoteBye) => break true,
                Some(_) => {}
                None => break false,
            }
        }
    })
    .await
    .unwrap();
    assert!(bye);
    assert!(
        a.stats().await.is_err(),
        "handle reports the session stopped"
    );
}

#[tokio::test]
async fn opus_audio_arrives() {
    let alloc = allocator();
    let ((a, _a_out), (_b, mut b_out)) = pair(&alloc, true, |cfg| {
        cfg.remote.codec = CodecKind::Opus;
        cfg.remote.payload_type = 111;
    });
    let player = a.clone();
    tokio::spawn(async move {
        for i in 0..100 {
            if player.play(tone(440.0, i)).await.is_err() {
                break;
            }
        }
    });
    let mut loud = 0;
    for _ in 0..250 {
        let Ok(Some(frame)) = timeout(Duration::from_secs(1), b_out.pcm.recv()).await else {
            break;
        };
        if rms(&frame) > 1000.0 {
            loud += 1;
            if loud >= 20 {
                break;
            }
        }
    }
    assert!(loud >= 20, "{loud} loud frames");
}

#[tokio::test]
async fn flush_with_fade_drops_queued_audio_smoothly() {
    let alloc = allocator();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let sockets = alloc.allocate(true).unwrap();
    let mut cfg = SessionConfig::new(remote(peer.local_addr().unwrap(), true));
    cfg.play_capacity = 50;
    let (handle, _out) = MediaSession::start(cfg, sockets).unwrap();
    let collector = tokio::spawn(async move { collect(&peer, 75, Duration::from_secs(4)).await });
    for i in 0..50 {
        handle.play(tone(500.0, i)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    handle.flush_with_fade().await.unwrap();
    let packets = collector.await.unwrap();
    assert_eq!(packets.len(), 75);
    let peaks: Vec<i16> = packets
        .iter()
        .map(|(_, b)| {
            let p = RtpPacket::parse(b).unwrap();
            p.payload()
                .iter()
                .map(|&c| ulaw_decode(c).saturating_abs())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let loud: Vec<usize> = (0..peaks.len()).filter(|&i| peaks[i] >= 64).collect();
    // About 10 frames played before the flush, far fewer than the 50 queued.
    assert!(
        (3..30).contains(&loud.len()),
        "{} loud packets: {peaks:?}",
        loud.len()
    );
    let last = *loud.last().unwrap();
    assert!(
        loud.windows(2).all(|w| w[1] == w[0] + 1),
        "one contiguous run: {peaks:?}"
    );
    assert!(peaks[last] < 6400, "the tail is faded: {peaks:?}");
    assert!(peaks[last + 1..].iter().all(|&p| p < 64));
}

#[tokio::test]
async fn hold_stops_rtp_and_uses_the_longer_timeout() {
    let alloc = allocator();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let sockets = alloc.allocate(true).unwrap();
    let mut cfg = SessionConfig::new(remote(peer.local_addr().unwrap(), true));
    cfg.inactivity_timeout = Duration::from_millis(400);
    cfg.hold_timeout = Duration::from_secs(30);
    let (handle, mut out) = MediaSession::start(cfg, sockets).unwrap();
    assert!(!collect(&peer, 3, Duration::from_secs(2)).await.is_empty());
    handle.hold().await.unwrap();
    // Drain what was in flight, then nothing but RTCP for 800 ms.
    tokio::time::sleep(Duration::from_millis(60)).await;
    let mut buf = [0u8; 2048];
    while peer.try_recv_from(&mut buf).is_ok() {}
    let on_hold = collect(&peer, 1, Duration::from_millis(800)).await;
    assert!(on_hold.is_empty(), "RTP sent while on hold");
    while let Ok(e) = out.events.try_recv() {
        assert!(!matches!(e, MediaEvent::Timeout), "short timeout on hold");
    }
    handle.resume().await.unwrap();
    assert!(!collect(&peer, 3, Duration::from_secs(2)).await.is_empty());
    let got = timeout(Duration::from_secs(3), async {
        loop {
            if let Some(MediaEvent::Timeout) = out.events.recv().await {
                break;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "the normal timeout applies after resume");
}

/// Plays `digits` as in-band DTMF tones (120 ms on, 120 ms off) at -10 dBm0.
fn spawn_inband_digits(handle: MediaHandle, digits: &'static str) {
    use hotline_media::dtmf::{DtmfGenerator, ToneParams};
    tokio::spawn(async move {
        for d in digits.chars() {
            let digit = Digit::from_char(d).unwrap();
            let mut generator =
                DtmfGenerator::new(16_000, digit, ToneParams::level(-10.0)).unwrap();
            for _ in 0..6 {
                let mut frame = vec![0i16; FRAME_SAMPLES];
                generator.fill(&mut frame);
                if handle.play(frame).await.is_err() {
                    return;
                }
            }
            for _ in 0..6 {
                if handle.play(vec![0; FRAME_SAMPLES]).await.is_err() {
                    return;
                }
            }
        }
    });
}

/// Everything B reports within `limit`, and how many of its audio frames
/// were loud.
async fn gather(out: &mut MediaOutputs, limit: Duration) -> (Vec<MediaEvent>, usize) {
    let mut events = Vec::new();
    let mut loud = 0;
    let deadline = Instant::now() + limit;
    loop {
        tokio::select! {
            e = out.events.recv() => match e {
                Some(e) => events.push(e),
                None => break,
            },
            f = out.pcm.recv() => match f {
                Some(f) => loud += usize::from(rms(&f) > 500.0),
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    (events, loud)
}

fn inband_digits(events: &[MediaEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Receive(ReceiveEvent::Digit(d))
                if d.source == DigitSource::InBand && d.duration.is_none() =>
            {
                Some(d.digit.to_char())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn without_dsp_inband_tones_are_audio_not_digits() {
    let alloc = allocator();
    let ((a, _a_out), (_b, mut b_out)) = pair(&alloc, true, |c| c.dsp = false);
    spawn_inband_digits(a.clone(), "159");
    let (events, loud) = gather(&mut b_out, Duration::from_millis(1500)).await;
    drop(a);
    assert_eq!(inband_digits(&events), "", "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, MediaEvent::Receive(ReceiveEvent::Speech(_)))),
        "no VAD without DSP: {events:?}"
    );
    // The call still gets the audio.
    assert!(loud >= 10, "{loud} loud frames");
}

#[tokio::test]
async fn with_dsp_the_same_tones_are_digits() {
    let alloc = allocator();
    let ((a, _a_out), (_b, mut b_out)) = pair(&alloc, true, |_| {});
    spawn_inband_digits(a.clone(), "159");
    let (events, _) = gather(&mut b_out, Duration::from_millis(1500)).await;
    drop(a);
    assert_eq!(inband_digits(&events), "159", "{events:?}");
}

#[tokio::test]
async fn without_dsp_rfc4733_digits_still_arrive() {
    let alloc = allocator();
    let ((a, _a_out), (_b, mut b_out)) = pair(&alloc, false, |c| c.dsp = false);
    for d in ['7', '*'] {
        let digit = Digit::from_char(d).unwrap();
        assert!(
            a.send_dtmf(digit, Duration::from_millis(100))
                .await
                .unwrap()
        );
    }
    let (events, _) = gather(&mut b_out, Duration::from_millis(1500)).await;
    let ends: String = events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Receive(ReceiveEvent::Digit(d)) if d.duration.is_some() => {
                assert_eq!(d.source, DigitSource::Rfc4733);
                Some(d.digit.to_char())
            }
            _ => None,
        })
        .collect();
    assert_eq!(ends, "7*");
}

#[tokio::test]
async fn a_burst_of_datagrams_is_read_in_full() {
    // More than one read batch per wake and more than one receive block.
    const BURST: u16 = 300;
    let alloc = allocator();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let sockets = alloc.allocate(true).unwrap();
    let port = sockets.port();
    let cfg = SessionConfig::new(remote(peer.local_addr().unwrap(), true));
    let (handle, _out) = MediaSession::start(cfg, sockets).unwrap();
    let to = SocketAddr::new(LOCALHOST, port);
    for seq in 0..BURST {
        peer.send_to(&rtp(seq, 0xb0b), to).await.unwrap();
    }
    let mut received = 0;
    for _ in 0..50 {
        received = handle.stats().await.unwrap().rtp_received;
        if received == u64::from(BURST) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(received, u64::from(BURST));
}

#[tokio::test]
async fn received_frames_are_whole_whatever_is_played() {
    // A's played frames are recycled to carry what A receives from B: odd
    // sizes and capacities must not leak into what A's consumer gets.
    let alloc = allocator();
    let ((a, mut a_out), (_b, _b_out)) = pair(&alloc, true, |_| {});
    let player = a.clone();
    tokio::spawn(async move {
        for i in 0..60 {
            let mut frame = tone(440.0, i);
            match i % 3 {
                0 => frame.truncate(FRAME_SAMPLES / 2),
                1 => frame.extend_from_within(..),
                _ => frame.reserve(10 * FRAME_SAMPLES),
            }
            if player.play(frame).await.is_err() {
                return;
            }
        }
    });
    let mut frames = 0;
    let deadline = Instant::now() + Duration::from_millis(1200);
    while let Ok(Some(f)) = tokio::time::timeout_at(deadline, a_out.pcm.recv()).await {
        assert_eq!(f.len(), FRAME_SAMPLES);
        frames += 1;
    }
    drop(a);
    assert!(frames >= 40, "{frames} frames");
}

#[tokio::test]
async fn the_inactivity_timeout_comes_from_the_rtp_config() {
    let alloc = allocator();
    let silent_peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let rtp = RtpConfig {
        inactivity_timeout_secs: 1,
        ..RtpConfig::default()
    };
    let cfg = SessionConfig::from_rtp_config(remote(silent_peer.local_addr().unwrap(), true), &rtp);
    assert_eq!(cfg.inactivity_timeout, Duration::from_secs(1));
    let (_handle, mut out) = MediaSession::start(cfg, alloc.allocate(true).unwrap()).unwrap();
    let started = Instant::now();
    let got = timeout(Duration::from_secs(3), async {
        loop {
            match out.events.recv().await {
                Some(MediaEvent::Timeout) => break true,
                Some(_) => {}
                None => break false,
            }
        }
    })
    .await;
    assert_eq!(got, Ok(true));
    assert!(started.elapsed() >= Duration::from_millis(980));
}

#[tokio::test]
async fn a_duplex_call_hardly_allocates_once_warm() {
    // Two sessions echoing each other: audio both ways every tick. Before
    // the pool and the shared receive blocks this cost two allocations per
    // session per tick (a frame and a datagram copy), 200 a second here.
    let alloc = allocator();
    let ((a, mut a_out), (b, mut b_out)) = pair(&alloc, true, |c| c.dsp = false);
    let echo = |handle: &MediaHandle, mut pcm: tokio::sync::mpsc::Receiver<Vec<i16>>| {
        let sink = handle.pcm_sink();
        tokio::spawn(async move {
            while let Some(frame) = pcm.recv().await {
                let _ = sink.try_send(frame);
            }
        });
    };
    let (a_pcm, b_pcm) = (
        std::mem::replace(&mut a_out.pcm, tokio::sync::mpsc::channel(1).1),
        std::mem::replace(&mut b_out.pcm, tokio::sync::mpsc::channel(1).1),
    );
    echo(&a, a_pcm);
    echo(&b, b_pcm);
    // Seed A with a tone so there is audio to echo.
    for i in 0..5 {
        a.play(tone(440.0, i)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = ALLOCATIONS.with(Cell::get);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let allocations = ALLOCATIONS.with(Cell::get) - before;
    let stats = a.stats().await.unwrap();
    assert!(stats.rtp_received > 60, "{stats:?}");
    // About 100 ticks and 100 datagrams in that second. What is left is a
    // new 16 KiB receive block every ~90 datagrams and the runtime's own.
    assert!(allocations <= 20, "{allocations} allocations in 1 s");
}
