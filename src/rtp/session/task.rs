//! The session task: owns the sockets, the [`Sender`], the receive chain
//! and RTCP, and runs them on the deadline clock.

use std::net::SocketAddr;
use std::task::Poll;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use hotline_media::receive::{InbandDtmf, ReceiveChain, ReceiveConfig, ReceiveEvent};
use hotline_media::rtcp::RtcpSession;
use hotline_media::rtp::{ReceiveStats, RtpPacket, is_rtcp, rtp_units_between};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::catchup::CatchUp;
use super::sender::{MAX_QUEUED_DIGITS, Sender};
use super::{
    Command, FRAME_SAMPLES, MediaEvent, MediaSockets, MediaStats, PTIME, RemoteMedia,
    SessionConfig, SessionError, phase,
};

/// Room for one datagram: more than an Ethernet MTU.
const MAX_DATAGRAM: usize = 2048;
/// Size of the blocks datagrams are received into. Each datagram is split
/// off a block and handed to the jitter buffer as a [`Bytes`] view, so one
/// allocation serves about a hundred G.711 packets instead of one each.
/// A block is freed when the last packet in it leaves the jitter buffer.
const RECV_BLOCK: usize = 16 * 1024;
/// Datagrams read per wake before going back to the clock and commands, so
/// a flood on one socket cannot hold up the session's own packets.
const MAX_READS_PER_WAKE: usize = 32;
/// Frames kept for reuse as received-audio frames (see [`Task::spare`]).
const SPARE_FRAMES: usize = 4;

/// Which socket a datagram came in on.
#[derive(Clone, Copy)]
enum Port {
    Rtp,
    Rtcp,
}

pub(super) struct Task {
    config: SessionConfig,
    rtp: UdpSocket,
    rtcp_socket: Option<UdpSocket>,
    _sockets: MediaSockets,
    commands: mpsc::Receiver<Command>,
    play: mpsc::Receiver<Vec<i16>>,
    pcm_out: mpsc::Sender<Vec<i16>>,
    events_out: mpsc::Sender<MediaEvent>,
    sender: Sender,
    catch_up: CatchUp,
    chain: ReceiveChain,
    recv_stats: ReceiveStats,
    rtcp: RtcpSession,
    latched: Option<SocketAddr>,
    rtcp_latched: Option<SocketAddr>,
    on_hold: bool,
    last_activity: Instant,
    timed_out: bool,
    timeout_pending: bool,
    epoch: Instant,
    stats: MediaStats,
    pcm: Vec<i16>,
    /// Played frames, emptied, to carry received audio out: the consumer
    /// owns each `Vec` it receives, and a call that plays audio hands one
    /// back every tick, so a call in full duplex allocates no frames.
    spare: Vec<Vec<i16>>,
    events: Vec<ReceiveEvent>,
    rtcp_buf: Vec<u8>,
    recv_block: BytesMut,
}

fn receive_config(remote: &RemoteMedia, dsp: bool) -> ReceiveConfig {
    let mut rc = ReceiveConfig::new(remote.codec, remote.payload_type);
    rc.telephone_event_pt = remote.telephone_event_pt;
    if !dsp {
        rc.vad = None;
        rc.inband_dtmf = InbandDtmf::Off;
    }
    rc
}

/// Why the task woke.
enum Wake {
    /// A command, or `None` when every handle is gone.
    Command(Option<Command>),
    /// The clock ticked; the deadline it was due at.
    Tick(Instant),
    /// A socket has datagrams queued.
    Readable(Port),
}

impl Task {
    pub(super) fn new(
        config: SessionConfig,
        sockets: MediaSockets,
        commands: mpsc::Receiver<Command>,
        play: mpsc::Receiver<Vec<i16>>,
        pcm_out: mpsc::Sender<Vec<i16>>,
        events_out: mpsc::Sender<MediaEvent>,
    ) -> Result<Self, SessionError> {
        let rtp = UdpSocket::from_std(sockets.rtp.try_clone()?)?;
        let rtcp_socket = match &sockets.rtcp {
            Some(s) if !config.remote.rtcp_mux => Some(UdpSocket::from_std(s.try_clone()?)?),
            _ => None,
        };
        let sender = Sender::new(&config.remote)?;
        let chain = ReceiveChain::new(receive_config(&config.remote, config.dsp))?;
        let now = Instant::now();
        let rtcp = RtcpSession::new(
            sender.ssrc,
            &config.cname,
            config.rtcp,
            now.into_std(),
            rand::random(),
        );
        let stats = MediaStats {
            local_ssrc: sender.ssrc,
            ..Default::default()
        };
        Ok(Task {
            config,
            rtp,
            rtcp_socket,
            _sockets: sockets,
            commands,
            play,
            pcm_out,
            events_out,
            sender,
            catch_up: CatchUp::default(),
            chain,
            recv_stats: ReceiveStats::new(),
            rtcp,
            latched: None,
            rtcp_latched: None,
            on_hold: false,
            last_activity: now,
            timed_out: false,
            timeout_pending: false,
            epoch: now,
            stats,
            pcm: Vec::with_capacity(FRAME_SAMPLES),
            spare: Vec::with_capacity(SPARE_FRAMES),
            events: Vec::with_capacity(8),
            rtcp_buf: Vec::with_capacity(256),
            recv_block: BytesMut::with_capacity(RECV_BLOCK),
        })
    }

    pub(super) async fn run(mut self) -> MediaStats {
        let mut ticker = tokio::time::interval_at(phase::first_tick(Instant::now()), PTIME);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        loop {
            match self.next_wake(&mut ticker).await {
                Wake::Command(Some(Command::Stop) | None) => break,
                Wake::Command(Some(c)) => self.on_command(c),
                Wake::Tick(deadline) => self.on_tick(deadline).await,
                Wake::Readable(port) => self.drain(port),
            }
        }
        self.send_bye().await;
        self.snapshot()
    }

    /// Waits for the next thing to do, in priority order: commands, the
    /// clock, then the sockets. Hand-polled rather than `select!`: the
    /// sources are polled in place on every wake instead of building and
    /// dropping a future per source (socket readiness futures take a lock
    /// to register and again to deregister), and the sockets use their
    /// single-waker readiness slot.
    fn next_wake<'a>(&'a mut self, ticker: &'a mut Interval) -> impl Future<Output = Wake> + 'a {
        std::future::poll_fn(move |cx| {
            if let Poll::Ready(c) = self.commands.poll_recv(cx) {
                return Poll::Ready(Wake::Command(c));
            }
            if let Poll::Ready(deadline) = ticker.poll_tick(cx) {
                return Poll::Ready(Wake::Tick(deadline));
            }
            // An error here means the runtime is shutting down; the
            // command channel still ends the task.
            if let Poll::Ready(Ok(())) = self.rtp.poll_recv_ready(cx) {
                return Poll::Ready(Wake::Readable(Port::Rtp));
            }
            if let Some(rtcp) = &self.rtcp_socket
                && let Poll::Ready(Ok(())) = rtcp.poll_recv_ready(cx)
            {
                return Poll::Ready(Wake::Readable(Port::Rtcp));
            }
            Poll::Pending
        })
    }

    /// Reads what is queued on `port` without waiting. Reading until the
    /// socket would block is what re-arms tokio's readiness, so one wake
    /// handles every datagram that arrived since the last one.
    fn drain(&mut self, port: Port) {
        for _ in 0..MAX_READS_PER_WAKE {
            if self.recv_block.capacity() < MAX_DATAGRAM {
                // Reclaims the block in place when every packet split off
                // it is gone, else starts a new one of RECV_BLOCK bytes.
                self.recv_block.reserve(RECV_BLOCK);
            }
            let socket = match port {
                Port::Rtp => &self.rtp,
                Port::Rtcp => match &self.rtcp_socket {
                    Some(s) => s,
                    None => return,
                },
            };
            match socket.try_recv_buf_from(&mut self.recv_block) {
                Ok((_, from)) => {
                    let datagram = self.recv_block.split().freeze();
                    self.on_datagram(datagram, from, port);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // ICMP errors reported on the socket (port unreachable from
                // a peer that went away) say nothing about the next read.
                Err(_) => {}
            }
        }
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Flush => {
                self.sender.fading = true;
            }
            Command::Dtmf(digit, duration, reply) => {
                let ok = self.sender.events.is_some()
                    && self.sender.digits.len() < MAX_QUEUED_DIGITS
                    && !duration.is_zero();
                if ok {
                    self.sender.digits.push_back((digit, duration));
                }
                let _ = reply.send(ok);
            }
            Command::UpdateRemote(remote) => self.update_remote(remote),
            Command::Hold(on) => {
                self.on_hold = on;
                self.last_activity = Instant::now();
                self.timed_out = false;
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Command::Stop => {}
        }
    }

    fn update_remote(&mut self, remote: RemoteMedia) {
        let codec_changed = remote.codec != self.config.remote.codec
            || remote.payload_type != self.config.remote.payload_type
            || remote.telephone_event_pt != self.config.remote.telephone_event_pt;
        if codec_changed {
            let rebuilt = self.sender.configure(&remote).and_then(|()| {
                ReceiveChain::new(receive_config(&remote, self.config.dsp))
                    .map_err(SessionError::from)
            });
            match rebuilt {
                Ok(chain) => {
                    self.chain = chain;
                    self.recv_stats = ReceiveStats::new();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "keeping the previous codec after a bad update");
                    return;
                }
            }
        }
        if remote.rtcp_mux {
            self.rtcp_socket = None;
        }
        self.config.remote = remote;
        self.latched = None;
        self.rtcp_latched = None;
        self.last_activity = Instant::now();
        self.timed_out = false;
    }

    fn rtp_destination(&self) -> SocketAddr {
        self.latched.unwrap_or(self.config.remote.rtp)
    }

    fn rtcp_destination(&self) -> (SocketAddr, bool) {
        if self.config.remote.rtcp_mux || self.rtcp_socket.is_none() {
            return (self.rtp_destination(), true);
        }
        let addr = self
            .rtcp_latched
            .or(self.config.remote.rtcp)
            .unwrap_or_else(|| {
                let rtp = self.rtp_destination();
                SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))
            });
        (addr, false)
    }

    async fn on_tick(&mut self, deadline: Instant) {
        let now = Instant::now();
        let late = now.saturating_duration_since(deadline);
        if late > PTIME {
            self.stats.late_ticks += 1;
        }
        if self.catch_up.on_tick(late) {
            self.send_tick().await;
        } else {
            self.stats.skipped_ticks += 1;
            self.sender.skip();
        }

        self.chain
            .pull(now.into_std(), &mut self.pcm, &mut self.events);
        if !self.on_hold {
            let next = self
                .spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(FRAME_SAMPLES));
            let frame = std::mem::replace(&mut self.pcm, next);
            if let Err(e) = self.pcm_out.try_send(frame) {
                self.stats.pcm_dropped += 1;
                self.recycle(e.into_inner());
            }
        }
        for i in 0..self.events.len() {
            let e = MediaEvent::Receive(self.events[i]);
            self.emit(e);
        }
        self.events.clear();

        self.rtcp_buf.clear();
        let rtp_ts = self.sender.timestamp;
        if self
            .rtcp
            .poll_report(
                now.into_std(),
                SystemTime::now(),
                rtp_ts,
                &mut self.recv_stats,
                &mut self.rtcp_buf,
            )
            .is_some()
        {
            self.send_rtcp().await;
        }

        let timeout = if self.on_hold {
            self.config.hold_timeout
        } else {
            self.config.inactivity_timeout
        };
        if !self.timed_out && now.saturating_duration_since(self.last_activity) >= timeout {
            self.timed_out = true;
            self.timeout_pending = true;
        }
        if self.timeout_pending && self.events_out.try_send(MediaEvent::Timeout).is_ok() {
            self.timeout_pending = false;
        }
    }

    /// The send half of a tick: the next queued frame (or silence) as one
    /// RTP packet.
    async fn send_tick(&mut self) {
        let frame = if self.sender.fading {
            // Barge-in: fade the next queued frame out and drop the rest,
            // bounded by what is queued now.
            let first = self.play.try_recv().ok();
            for _ in 0..self.config.play_capacity {
                match self.play.try_recv() {
                    Ok(dropped) => self.recycle(dropped),
                    Err(_) => break,
                }
            }
            first
        } else if self.on_hold {
            None
        } else {
            self.play.try_recv().ok()
        };
        let send_silence = self.config.send_silence && !self.on_hold;
        let built = self.sender.tick(frame.as_deref(), send_silence);
        if let Some(frame) = frame {
            self.recycle(frame);
        }
        if built {
            let dest = self.rtp_destination();
            // The socket is almost always writable: try the send directly
            // and only wait for writability when the kernel pushes back.
            let sent = match self.rtp.try_send_to(&self.sender.packet, dest) {
                Ok(_) => true,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.rtp.send_to(&self.sender.packet, dest).await.is_ok()
                }
                Err(_) => false,
            };
            if sent {
                self.stats.rtp_sent += 1;
                let header = hotline_media::rtp::FIXED_HEADER_LEN;
                self.rtcp
                    .on_rtp_sent(self.sender.packet.len().saturating_sub(header));
            }
        }
    }

    async fn send_rtcp(&mut self) {
        let (dest, mux) = self.rtcp_destination();
        let socket = match (&self.rtcp_socket, mux) {
            (Some(s), false) => s,
            _ => &self.rtp,
        };
        if socket.send_to(&self.rtcp_buf, dest).await.is_ok() {
            self.stats.rtcp_sent += 1;
        }
    }

    async fn send_bye(&mut self) {
        self.rtcp_buf.clear();
        let now = Instant::now().into_std();
        let ts = self.sender.timestamp;
        self.rtcp.build_bye(
            now,
            SystemTime::now(),
            ts,
            &mut self.recv_stats,
            &mut self.rtcp_buf,
        );
        self.send_rtcp().await;
    }

    /// Keeps a frame's allocation for a later received-audio frame.
    fn recycle(&mut self, mut frame: Vec<i16>) {
        // A producer may hand over odd sizes; keep only buffers that hold a
        // frame without growing and would not pin a lot of memory.
        if self.spare.len() < SPARE_FRAMES
            && (FRAME_SAMPLES..=4 * FRAME_SAMPLES).contains(&frame.capacity())
        {
            frame.clear();
            self.spare.push(frame);
        }
    }

    fn emit(&mut self, e: MediaEvent) {
        if self.events_out.try_send(e).is_err() {
            self.stats.events_dropped += 1;
        }
    }

    fn on_datagram(&mut self, data: Bytes, from: SocketAddr, port: Port) {
        let now = Instant::now();
        if matches!(port, Port::Rtcp) || is_rtcp(&data) {
            self.on_rtcp(&data, from, port, now);
            return;
        }
        if let Some(latched) = self.latched
            && latched != from
        {
            self.stats.foreign_packets += 1;
            return;
        }
        let Ok(packet) = RtpPacket::parse(&data) else {
            self.stats.invalid_packets += 1;
            return;
        };
        let pt = packet.payload_type();
        let remote = &self.config.remote;
        let audio = pt == remote.payload_type;
        if !audio && Some(pt) != remote.telephone_event_pt {
            self.stats.invalid_packets += 1;
            return;
        }
        if self.latched.is_none() {
            // Symmetric RTP: answer where the media really comes from, which
            // behind a NAT is not what the SDP said.
            self.latched = Some(from);
            tracing::debug!(%from, "RTP latched");
            self.emit(MediaEvent::Latched(from));
        }
        if audio {
            let arrival = rtp_units_between(
                self.epoch.into_std(),
                now.into_std(),
                self.sender.clock_rate,
            );
            self.recv_stats.on_rtp(&packet, arrival);
        }
        self.stats.rtp_received += 1;
        self.mark_activity(now);
        let _ = self.chain.push_rtp(data, now.into_std());
    }

    fn on_rtcp(&mut self, data: &[u8], from: SocketAddr, port: Port, now: Instant) {
        // With rtcp-mux RTCP must come from the latched RTP source; on the
        // RTCP port it latches on its own.
        let latched = match port {
            Port::Rtp => self.latched,
            Port::Rtcp => self.rtcp_latched,
        };
        if let Some(l) = latched
            && l != from
        {
            self.stats.foreign_packets += 1;
            return;
        }
        match self.rtcp.on_rtcp(data, now.into_std(), SystemTime::now()) {
            Ok(got) => {
                if matches!(port, Port::Rtcp) && self.rtcp_latched.is_none() {
                    self.rtcp_latched = Some(from);
                }
                self.stats.rtcp_received += 1;
                self.mark_activity(now);
                if got.bye {
                    self.emit(MediaEvent::RemoteBye);
                }
            }
            Err(_) => self.stats.invalid_packets += 1,
        }
    }

    fn mark_activity(&mut self, now: Instant) {
        self.last_activity = now;
        self.timed_out = false;
    }

    fn snapshot(&self) -> MediaStats {
        let mut s = self.stats;
        s.latched = self.latched;
        s.remote_ssrc = self.recv_stats.ssrc();
        s.rtt = self.rtcp.rtt();
        if let Some(r) = self.rtcp.remote_report() {
            s.remote_fraction_lost = Some(f32::from(r.block.fraction_lost) / 256.0);
            s.remote_cumulative_lost = Some(r.block.cumulative_lost);
            s.remote_jitter = Some(r.block.jitter);
        }
        s
    }
}
