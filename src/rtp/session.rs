//! The media session task of one call leg.
//!
//! One tokio task per session owns every piece of state: sockets, encoder,
//! [`ReceiveChain`], RTCP state, latch. It `select!`s over
//!
//! * commands from the [`MediaHandle`] (bounded channel),
//! * the 20 ms tick of an absolute deadline clock ([`tokio::time::interval_at`]
//!   with [`MissedTickBehavior::Burst`], so a late tick is caught up rather
//!   than shifting every later packet),
//! * datagrams on the RTP socket, and on the RTCP socket without rtcp-mux.
//!
//! Each tick sends one packet (audio, silence or an RFC 4733 event), pulls
//! 20 ms of received audio from the chain, sends RTCP when due, and checks
//! inactivity. Output goes through bounded channels with `try_send`: a slow
//! consumer loses frames (counted) instead of stalling the media clock.
//! There are no locks; the handle talks to the task only through channels.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use hotline_media::codec::{self, AudioEncoder, CodecError, CodecKind};
use hotline_media::dtmf::Digit;
use hotline_media::dtmf::rfc4733::{EventSender, SenderConfig};
use hotline_media::mix::{Curve, Fader};
use hotline_media::receive::{ChainError, ReceiveChain, ReceiveConfig, ReceiveEvent};
use hotline_media::resample::{ResampleError, Resampler};
use hotline_media::rtcp::{IntervalConfig, RtcpSession};
use hotline_media::rtp::{ReceiveStats, RtpPacket, RtpPacketBuilder, is_rtcp, rtp_units_between};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use super::ports::MediaSockets;

/// The packetization interval: one packet per tick.
pub const PTIME: Duration = Duration::from_millis(20);
/// The rate of PCM played into and received from a session.
pub const PCM_RATE: u32 = 16_000;
/// Samples in one 20 ms frame at [`PCM_RATE`].
pub const FRAME_SAMPLES: usize = (PCM_RATE / 50) as usize;
/// Digits queued behind the one playing; more are refused.
const MAX_QUEUED_DIGITS: usize = 32;
/// Silence between consecutive queued digits, in ticks.
const INTER_DIGIT_TICKS: u32 = 3;

/// Where to send media, as the SDP negotiation decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// The `c=`/`m=` address for RTP.
    pub rtp: SocketAddr,
    /// The RTCP address (`a=rtcp`, or RTP port + 1); ignored with rtcp-mux.
    pub rtcp: Option<SocketAddr>,
    /// Whether RTP and RTCP share the RTP socket (RFC 5761).
    pub rtcp_mux: bool,
    /// The negotiated audio codec.
    pub codec: CodecKind,
    /// Its payload type.
    pub payload_type: u8,
    /// The telephone-event payload type, if negotiated.
    pub telephone_event_pt: Option<u8>,
}

/// How to run a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The negotiated remote side.
    pub remote: RemoteMedia,
    /// Send encoded silence when there is nothing to play (keeps NAT
    /// pinholes open and carriers happy); otherwise send nothing, while the
    /// RTP timestamp keeps advancing.
    pub send_silence: bool,
    /// No RTP or RTCP for this long raises [`MediaEvent::Timeout`].
    pub inactivity_timeout: Duration,
    /// The timeout while on hold, when the peer may legitimately send no
    /// RTP; RTCP still counts as activity.
    pub hold_timeout: Duration,
    /// The SDES CNAME (RFC 3550 §6.5.1).
    pub cname: String,
    /// RTCP interval settings.
    pub rtcp: IntervalConfig,
    /// Received 20 ms frames held for a slow consumer before dropping.
    pub pcm_capacity: usize,
    /// Events held for a slow consumer before dropping.
    pub event_capacity: usize,
    /// Frames to play queued in the PCM sink.
    pub play_capacity: usize,
}

impl SessionConfig {
    /// Defaults: send silence, 30 s inactivity (5 min on hold), 5 %/5 s RTCP,
    /// channels of 50 frames (1 s).
    pub fn new(remote: RemoteMedia) -> Self {
        SessionConfig {
            remote,
            send_silence: true,
            inactivity_timeout: Duration::from_secs(30),
            hold_timeout: Duration::from_secs(300),
            cname: format!("hotline-{:08x}", rand::random::<u32>()),
            rtcp: IntervalConfig::default(),
            pcm_capacity: 50,
            event_capacity: 64,
            play_capacity: 50,
        }
    }
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The encoder could not be built.
    #[error("encoder: {0}")]
    Codec(#[from] CodecError),
    /// The receive chain could not be built.
    #[error("receive chain: {0}")]
    Chain(#[from] ChainError),
    /// The send-side resampler could not be built.
    #[error("resampler: {0}")]
    Resample(#[from] ResampleError),
    /// The telephone-event sender rejected its configuration.
    #[error("telephone-event sender: {0}")]
    Dtmf(String),
    /// The sockets could not be registered with tokio.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Something the session noticed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MediaEvent {
    /// A digit or speech event from the receive chain.
    Receive(ReceiveEvent),
    /// The first valid RTP packet came from this address; media now goes
    /// there.
    Latched(SocketAddr),
    /// No RTP or RTCP arrived within the inactivity timeout.
    Timeout,
    /// The peer sent an RTCP BYE.
    RemoteBye,
}

/// Counters of one session.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MediaStats {
    /// RTP packets sent (audio, silence and events).
    pub rtp_sent: u64,
    /// RTP packets accepted from the latched source.
    pub rtp_received: u64,
    /// Datagrams from sources other than the latched one, ignored.
    pub foreign_packets: u64,
    /// Datagrams that were neither valid RTP with a negotiated payload type
    /// nor RTCP.
    pub invalid_packets: u64,
    /// RTCP compound packets sent.
    pub rtcp_sent: u64,
    /// RTCP compound packets received and parsed.
    pub rtcp_received: u64,
    /// Received frames dropped because the PCM consumer was slow.
    pub pcm_dropped: u64,
    /// Events dropped because the event consumer was slow.
    pub events_dropped: u64,
    /// Ticks that were late by more than a frame.
    pub late_ticks: u64,
    /// The address RTP is latched to.
    pub latched: Option<SocketAddr>,
    /// The peer's SSRC.
    pub remote_ssrc: Option<u32>,
    /// Our SSRC.
    pub local_ssrc: u32,
    /// Round-trip time from the peer's reports.
    pub rtt: Option<Duration>,
    /// Fraction of our packets the peer lost, from its last report (0–1).
    pub remote_fraction_lost: Option<f32>,
    /// Cumulative packets of ours the peer lost.
    pub remote_cumulative_lost: Option<i32>,
    /// The peer's interarrival jitter of our stream, in RTP units.
    pub remote_jitter: Option<u32>,
}

enum Command {
    Flush,
    Dtmf(Digit, Duration, oneshot::Sender<bool>),
    UpdateRemote(RemoteMedia),
    Hold(bool),
    Stats(oneshot::Sender<MediaStats>),
    Stop,
}

/// Controls a running session. Dropping every clone of it stops the
/// session.
#[derive(Debug, Clone)]
pub struct MediaHandle {
    commands: mpsc::Sender<Command>,
    play: mpsc::Sender<Vec<i16>>,
    local_port: u16,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Flush => "Flush",
            Command::Dtmf(..) => "Dtmf",
            Command::UpdateRemote(_) => "UpdateRemote",
            Command::Hold(_) => "Hold",
            Command::Stats(_) => "Stats",
            Command::Stop => "Stop",
        })
    }
}

/// The channels a session delivers to.
#[derive(Debug)]
pub struct MediaOutputs {
    /// Received audio, 20 ms frames of [`FRAME_SAMPLES`] at [`PCM_RATE`].
    pub pcm: mpsc::Receiver<Vec<i16>>,
    /// Digits, speech, latching, timeouts.
    pub events: mpsc::Receiver<MediaEvent>,
    /// Resolves with the final counters when the task ends.
    pub finished: oneshot::Receiver<MediaStats>,
}

/// The session is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("media session has stopped")]
pub struct Stopped;

impl MediaHandle {
    /// The local RTP port, for the SDP.
    pub fn local_port(&self) -> u16 {
        self.local_port
    }

    /// Queues one 20 ms frame (16 kHz, [`FRAME_SAMPLES`] samples; shorter
    /// frames are padded, longer ones cut) to be sent; waits while the
    /// queue is full, which paces a producer to real time.
    pub async fn play(&self, frame: Vec<i16>) -> Result<(), Stopped> {
        self.play.send(frame).await.map_err(|_| Stopped)
    }

    /// A sender for frames to play, for a producer task of its own.
    pub fn pcm_sink(&self) -> mpsc::Sender<Vec<i16>> {
        self.play.clone()
    }

    /// Drops the queued audio, fading the next frame out over 20 ms so
    /// barge-in does not click.
    pub async fn flush_with_fade(&self) -> Result<(), Stopped> {
        self.command(Command::Flush).await
    }

    /// Sends `digit` as RFC 4733 events lasting `duration`, after any digit
    /// already playing. Resolves `false` when telephone-event was not
    /// negotiated or too many digits are queued.
    pub async fn send_dtmf(&self, digit: Digit, duration: Duration) -> Result<bool, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Dtmf(digit, duration, tx)).await?;
        rx.await.map_err(|_| Stopped)
    }

    /// Applies a new SDP answer/offer (re-INVITE): new address, codec or
    /// payload types. Releases the latch so the next valid packet latches
    /// again.
    pub async fn update_remote(&self, remote: RemoteMedia) -> Result<(), Stopped> {
        self.command(Command::UpdateRemote(remote)).await
    }

    /// Puts the call on hold: stop sending RTP (queued audio waits) and
    /// delivering received audio, keep RTCP going, and use the hold
    /// timeout instead of the inactivity timeout.
    pub async fn hold(&self) -> Result<(), Stopped> {
        self.command(Command::Hold(true)).await
    }

    /// Takes the call off hold.
    pub async fn resume(&self) -> Result<(), Stopped> {
        self.command(Command::Hold(false)).await
    }

    /// The current counters.
    pub async fn stats(&self) -> Result<MediaStats, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Stats(tx)).await?;
        rx.await.map_err(|_| Stopped)
    }

    /// Sends an RTCP BYE and ends the task; the final counters arrive on
    /// [`MediaOutputs::finished`].
    pub async fn stop(&self) -> Result<(), Stopped> {
        self.command(Command::Stop).await
    }

    async fn command(&self, c: Command) -> Result<(), Stopped> {
        self.commands.send(c).await.map_err(|_| Stopped)
    }
}

/// Starts sessions; see the module documentation.
#[derive(Debug)]
pub struct MediaSession;

impl MediaSession {
    /// Spawns the session task on `sockets` (from
    /// [`PortAllocator::allocate`](super::PortAllocator::allocate)). Must
    /// be called inside a tokio runtime.
    pub fn start(
        config: SessionConfig,
        sockets: MediaSockets,
    ) -> Result<(MediaHandle, MediaOutputs), SessionError> {
        let local_port = sockets.port();
        let (cmd_tx, cmd_rx) = mpsc::channel(32);
        let (play_tx, play_rx) = mpsc::channel(config.play_capacity.max(1));
        let (pcm_tx, pcm_rx) = mpsc::channel(config.pcm_capacity.max(1));
        let (ev_tx, ev_rx) = mpsc::channel(config.event_capacity.max(1));
        let (fin_tx, fin_rx) = oneshot::channel();
        let task = Task::new(config, sockets, cmd_rx, play_rx, pcm_tx, ev_tx)?;
        tokio::spawn(async move {
            let stats = task.run().await;
            let _ = fin_tx.send(stats);
        });
        Ok((
            MediaHandle {
                commands: cmd_tx,
                play: play_tx,
                local_port,
            },
            MediaOutputs {
                pcm: pcm_rx,
                events: ev_rx,
                finished: fin_rx,
            },
        ))
    }
}

/// The send side: encoder, sequence/timestamp state, digits.
struct Sender {
    encoder: Box<dyn AudioEncoder + Send>,
    resampler: Option<Resampler>,
    payload_type: u8,
    te_pt: Option<u8>,
    clock_rate: u32,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    first: bool,
    in_talkspurt: bool,
    events: Option<EventSender>,
    digits: VecDeque<(Digit, Duration)>,
    digit_gap: u32,
    fader: Fader,
    fading: bool,
    pcm: Vec<i16>,
    enc_in: Vec<i16>,
    payload: Vec<u8>,
    packet: Vec<u8>,
}

impl Sender {
    fn new(remote: &RemoteMedia) -> Result<Self, SessionError> {
        let mut s = Sender {
            encoder: codec::encoder(CodecKind::Pcmu, 8000)?,
            resampler: None,
            payload_type: 0,
            te_pt: None,
            clock_rate: 8000,
            ssrc: rand::random(),
            seq: rand::random(),
            timestamp: rand::random(),
            first: true,
            in_talkspurt: false,
            events: None,
            digits: VecDeque::with_capacity(MAX_QUEUED_DIGITS),
            digit_gap: 0,
            fader: Fader::from_ms(PCM_RATE, 20.0, Curve::RaisedCosine),
            fading: false,
            pcm: Vec::with_capacity(FRAME_SAMPLES),
            enc_in: Vec::with_capacity(FRAME_SAMPLES),
            payload: Vec::with_capacity(1500),
            packet: Vec::with_capacity(1500),
        };
        s.configure(remote)?;
        Ok(s)
    }

    /// (Re)builds the codec side for `remote`; sequence, timestamp and SSRC
    /// continue (RFC 3550 §5.1: one stream per SSRC).
    fn configure(&mut self, remote: &RemoteMedia) -> Result<(), SessionError> {
        let encode_rate = match remote.codec {
            CodecKind::Opus => PCM_RATE,
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
        };
        self.encoder = codec::encoder(remote.codec, encode_rate)?;
        self.resampler = if encode_rate == PCM_RATE {
            None
        } else {
            Some(Resampler::new(PCM_RATE, encode_rate)?)
        };
        self.payload_type = remote.payload_type;
        self.te_pt = remote.telephone_event_pt;
        self.clock_rate = remote.codec.rtp_clock_rate();
        self.events = match remote.telephone_event_pt {
            Some(_) => Some(
                EventSender::new(SenderConfig::for_clock(self.clock_rate, 20))
                    .map_err(|e| SessionError::Dtmf(e.to_string()))?,
            ),
            None => None,
        };
        Ok(())
    }

    fn ticks_per_frame(&self) -> u32 {
        self.clock_rate / 50
    }

    /// Builds this tick's packet into `self.packet`; returns false when
    /// nothing is to be sent. The timestamp advances every tick regardless.
    fn tick(&mut self, frame: Option<Vec<i16>>, send_silence: bool) -> bool {
        let ts = self.timestamp;
        self.timestamp = ts.wrapping_add(self.ticks_per_frame());
        self.packet.clear();

        if let Some(events) = self.events.as_mut() {
            if events.is_idle() {
                if self.digit_gap > 0 {
                    self.digit_gap -= 1;
                } else if let Some((digit, duration)) = self.digits.pop_front() {
                    let units = (duration.as_millis() as u64 * u64::from(self.clock_rate) / 1000)
                        .clamp(1, u64::from(u32::MAX)) as u32;
                    let _ = events.start_digit(digit, ts, units);
                }
            }
            if !events.is_idle() {
                self.in_talkspurt = false;
                let Some(p) = events.next_packet(ts) else {
                    return false;
                };
                if events.is_idle() {
                    self.digit_gap = INTER_DIGIT_TICKS;
                }
                let te_pt = self.te_pt.unwrap_or(101);
                let payload = p.payload;
                return self.build(te_pt, p.marker, p.timestamp, &payload);
            }
        }

        let speech = frame.is_some();
        self.pcm.clear();
        match frame {
            Some(f) => {
                self.pcm.extend(f.iter().take(FRAME_SAMPLES));
                self.pcm.resize(FRAME_SAMPLES, 0);
                if self.fading {
                    self.fader.fade_out();
                    self.fader.process(&mut self.pcm);
                }
            }
            None => {
                if !send_silence {
                    self.in_talkspurt = false;
                    return false;
                }
                self.pcm.resize(FRAME_SAMPLES, 0);
            }
        }
        if self.fading {
            self.fading = false;
            self.fader.open();
        }
        let marker = self.first || (speech && !self.in_talkspurt);
        self.in_talkspurt = speech;

        self.enc_in.clear();
        match self.resampler.as_mut() {
            Some(r) => {
                if r.process(&self.pcm, &mut self.enc_in).is_err() {
                    self.enc_in.clear();
                    self.enc_in.resize(self.encoder.frame_samples(), 0);
                }
            }
            None => self.enc_in.extend_from_slice(&self.pcm),
        }
        let mut payload = std::mem::take(&mut self.payload);
        payload.clear();
        let ok = self.encoder.encode(&self.enc_in, &mut payload).is_ok();
        let built = ok && self.build(self.payload_type, marker, ts, &payload);
        self.payload = payload;
        built
    }

    fn build(&mut self, pt: u8, marker: bool, timestamp: u32, payload: &[u8]) -> bool {
        let ok = RtpPacketBuilder {
            marker,
            payload_type: pt,
            sequence: self.seq,
            timestamp,
            ssrc: self.ssrc,
            payload,
            ..Default::default()
        }
        .write_to(&mut self.packet)
        .is_ok();
        if ok {
            self.seq = self.seq.wrapping_add(1);
            self.first = false;
        }
        ok
    }
}

/// Which socket a datagram came in on.
#[derive(Clone, Copy)]
enum Port {
    Rtp,
    Rtcp,
}

struct Task {
    config: SessionConfig,
    rtp: UdpSocket,
    rtcp_socket: Option<UdpSocket>,
    _sockets: MediaSockets,
    commands: mpsc::Receiver<Command>,
    play: mpsc::Receiver<Vec<i16>>,
    pcm_out: mpsc::Sender<Vec<i16>>,
    events_out: mpsc::Sender<MediaEvent>,
    sender: Sender,
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
    events: Vec<ReceiveEvent>,
    rtcp_buf: Vec<u8>,
}

fn receive_config(remote: &RemoteMedia) -> ReceiveConfig {
    let mut rc = ReceiveConfig::new(remote.codec, remote.payload_type);
    rc.telephone_event_pt = remote.telephone_event_pt;
    rc
}

async fn recv_opt(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

impl Task {
    fn new(
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
        let chain = ReceiveChain::new(receive_config(&config.remote))?;
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
            events: Vec::with_capacity(8),
            rtcp_buf: Vec::with_capacity(256),
        })
    }

    async fn run(mut self) -> MediaStats {
        let mut ticker = tokio::time::interval_at(Instant::now() + PTIME, PTIME);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut buf = vec![0u8; 2048];
        let mut rtcp_in = vec![0u8; 2048];
        loop {
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Stop) | None => break,
                    Some(c) => self.on_command(c),
                },
                deadline = ticker.tick() => self.on_tick(deadline).await,
                r = self.rtp.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r {
                        self.on_datagram(&buf[..n], from, Port::Rtp);
                    }
                }
                r = recv_opt(self.rtcp_socket.as_ref(), &mut rtcp_in) => {
                    if let Ok((n, from)) = r {
                        self.on_datagram(&rtcp_in[..n], from, Port::Rtcp);
                    }
                }
            }
        }
        self.send_bye().await;
        self.snapshot()
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
                ReceiveChain::new(receive_config(&remote)).map_err(SessionError::from)
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
        if now.saturating_duration_since(deadline) > PTIME {
            self.stats.late_ticks += 1;
        }
        let frame = if self.sender.fading {
            // Barge-in: fade the next queued frame out and drop the rest,
            // bounded by what is queued now.
            let first = self.play.try_recv().ok();
            for _ in 0..self.config.play_capacity {
                if self.play.try_recv().is_err() {
                    break;
                }
            }
            first
        } else if self.on_hold {
            None
        } else {
            self.play.try_recv().ok()
        };
        let send_silence = self.config.send_silence && !self.on_hold;
        if self.sender.tick(frame, send_silence) {
            let dest = self.rtp_destination();
            if self.rtp.send_to(&self.sender.packet, dest).await.is_ok() {
                self.stats.rtp_sent += 1;
                let header = hotline_media::rtp::FIXED_HEADER_LEN;
                self.rtcp
                    .on_rtp_sent(self.sender.packet.len().saturating_sub(header));
            }
        }

        self.chain
            .pull(now.into_std(), &mut self.pcm, &mut self.events);
        if !self.on_hold {
            let frame = std::mem::replace(&mut self.pcm, Vec::with_capacity(FRAME_SAMPLES));
            if self.pcm_out.try_send(frame).is_err() {
                self.stats.pcm_dropped += 1;
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

    fn emit(&mut self, e: MediaEvent) {
        if self.events_out.try_send(e).is_err() {
            self.stats.events_dropped += 1;
        }
    }

    fn on_datagram(&mut self, data: &[u8], from: SocketAddr, port: Port) {
        let now = Instant::now();
        if matches!(port, Port::Rtcp) || is_rtcp(data) {
            self.on_rtcp(data, from, port, now);
            return;
        }
        if let Some(latched) = self.latched
            && latched != from
        {
            self.stats.foreign_packets += 1;
            return;
        }
        let Ok(packet) = RtpPacket::parse(data) else {
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
        let _ = self.chain.push_rtp(data.to_vec().into(), now.into_std());
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
