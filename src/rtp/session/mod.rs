//! The media session task of one call leg.
//!
//! One tokio task per session owns every piece of state: sockets, encoder,
//! [`ReceiveChain`](hotline_media::receive::ReceiveChain), RTCP state,
//! latch. It `select!`s over
//!
//! * commands from the [`MediaHandle`] (bounded channel),
//! * the 20 ms tick of an absolute deadline clock
//!   ([`tokio::time::interval_at`] with
//!   [`MissedTickBehavior::Burst`](tokio::time::MissedTickBehavior::Burst),
//!   so a late tick is caught up rather than shifting every later packet),
//! * readiness of the RTP socket, and of the RTCP socket without rtcp-mux;
//!   each wake drains every queued datagram with non-blocking reads.
//!
//! Each tick sends one packet (audio, silence or an RFC 4733 event), pulls
//! 20 ms of received audio from the chain, sends RTCP when due, and checks
//! inactivity. Output goes through bounded channels with `try_send`: a slow
//! consumer loses frames (counted) instead of stalling the media clock.
//! There are no locks; the handle talks to the task only through channels.
//!
//! Under load the cost is dominated by the DSP (in-band DTMF and VAD), the
//! two resamplers (8 ↔ 16 kHz) and the kernel's UDP path, so the task keeps
//! its own overhead small: sessions tick on staggered phases (see the
//! `phase` module) so hundreds of them do not wake on the same millisecond,
//! datagrams land in a shared receive block instead of one allocation each,
//! received-audio frames are recycled from played frames, and a G.711
//! sender skips the resampler while it sends silence.

mod catchup;
mod phase;
mod sender;
mod task;

use std::net::SocketAddr;
use std::time::Duration;

use hotline_media::codec::{CodecError, CodecKind};
use hotline_media::dtmf::Digit;
use hotline_media::receive::{ChainError, ReceiveEvent};
use hotline_media::resample::ResampleError;
use hotline_media::rtcp::IntervalConfig;
use tokio::sync::{mpsc, oneshot};

use super::ports::MediaSockets;
use crate::config::RtpConfig;
use task::Task;

/// The packetization interval: one packet per tick.
pub const PTIME: Duration = Duration::from_millis(20);
/// The rate of PCM played into and received from a session.
pub const PCM_RATE: u32 = 16_000;
/// Samples in one 20 ms frame at [`PCM_RATE`].
pub const FRAME_SAMPLES: usize = (PCM_RATE / 50) as usize;

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
    /// Run in-band DTMF detection and VAD on the received audio. With
    /// `false` (a relay, or an engine that does its own speech detection)
    /// received packets still go through the jitter buffer and decoder to
    /// 16 kHz PCM and RFC 4733 digits are still reported, but the two
    /// detectors, which are most of the receive path's cost, do not run:
    /// no in-band digits and no speech events.
    pub dsp: bool,
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
            dsp: true,
        }
    }

    /// [`SessionConfig::new`] with the inactivity timeout taken from
    /// `rtp.inactivity_timeout_secs`. Zero disables the timeout (as
    /// Asterisk's `rtptimeout = 0` does), on hold as well. The hold timeout
    /// is never shorter than the inactivity timeout, since a held peer
    /// legitimately sends less.
    pub fn from_rtp_config(remote: RemoteMedia, rtp: &RtpConfig) -> Self {
        let mut config = SessionConfig::new(remote);
        if rtp.inactivity_timeout_secs == 0 {
            config.inactivity_timeout = Duration::MAX;
            config.hold_timeout = Duration::MAX;
        } else {
            config.inactivity_timeout = Duration::from_secs(rtp.inactivity_timeout_secs);
            config.hold_timeout = config.hold_timeout.max(config.inactivity_timeout);
        }
        config
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
    /// Ticks that sent nothing because the session was more than two
    /// frames behind its clock: it skips to the newest due tick instead of
    /// sending the backlog back to back (the timestamp jumps and the next
    /// packet is marked).
    pub skipped_ticks: u64,
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
    /// [`PortAllocator::allocate`](super::PortAllocator::allocate)) on the
    /// current tokio runtime. Must be called inside one.
    pub fn start(
        config: SessionConfig,
        sockets: MediaSockets,
    ) -> Result<(MediaHandle, MediaOutputs), SessionError> {
        Self::start_on(&tokio::runtime::Handle::current(), config, sockets)
    }

    /// Like [`start`](Self::start), on `runtime` (normally the
    /// [`MediaRuntime`](super::MediaRuntime)'s). The sockets are
    /// registered with that runtime's reactor.
    pub fn start_on(
        runtime: &tokio::runtime::Handle,
        config: SessionConfig,
        sockets: MediaSockets,
    ) -> Result<(MediaHandle, MediaOutputs), SessionError> {
        let local_port = sockets.port();
        let (cmd_tx, cmd_rx) = mpsc::channel(32);
        let (play_tx, play_rx) = mpsc::channel(config.play_capacity.max(1));
        let (pcm_tx, pcm_rx) = mpsc::channel(config.pcm_capacity.max(1));
        let (ev_tx, ev_rx) = mpsc::channel(config.event_capacity.max(1));
        let (fin_tx, fin_rx) = oneshot::channel();
        let task = {
            // Tokio sockets bind to the reactor of the runtime they are
            // created in, so the task is built inside `runtime`.
            let _entered = runtime.enter();
            Task::new(config, sockets, cmd_rx, play_rx, pcm_tx, ev_tx)?
        };
        runtime.spawn(async move {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> RemoteMedia {
        RemoteMedia {
            rtp: "127.0.0.1:4000".parse().unwrap(),
            rtcp: None,
            rtcp_mux: true,
            codec: CodecKind::Pcmu,
            payload_type: 0,
            telephone_event_pt: Some(101),
        }
    }

    #[test]
    fn from_rtp_config_takes_the_inactivity_timeout() {
        let rtp = RtpConfig {
            inactivity_timeout_secs: 45,
            ..RtpConfig::default()
        };
        let c = SessionConfig::from_rtp_config(remote(), &rtp);
        assert_eq!(c.inactivity_timeout, Duration::from_secs(45));
        assert_eq!(c.hold_timeout, Duration::from_secs(300));
        assert!(c.dsp && c.send_silence);
        assert_eq!(c.remote, remote());
    }

    #[test]
    fn the_hold_timeout_is_never_shorter_than_the_inactivity_timeout() {
        let rtp = RtpConfig {
            inactivity_timeout_secs: 600,
            ..RtpConfig::default()
        };
        let c = SessionConfig::from_rtp_config(remote(), &rtp);
        assert_eq!(c.hold_timeout, Duration::from_secs(600));
    }

    #[test]
    fn a_zero_inactivity_timeout_disables_it() {
        let rtp = RtpConfig {
            inactivity_timeout_secs: 0,
            ..RtpConfig::default()
        };
        let c = SessionConfig::from_rtp_config(remote(), &rtp);
        assert_eq!(c.inactivity_timeout, Duration::MAX);
        assert_eq!(c.hold_timeout, Duration::MAX);
    }
}
