//! Adaptive RTP jitter buffer: sans-IO, codec-agnostic.
//!
//! Packets go in with [`JitterBuffer::push`] as they arrive; the playout clock
//! asks for media with [`JitterBuffer::pop`] once per frame period (20 ms by
//! default) and gets one [`Pop`]: a packet to decode, a slot to conceal with
//! the codec's PLC, or silence while buffering. When packets are shorter than
//! the frame period (10 ms), call `pop` again with the same `now` until the
//! decoder has a frame's worth of audio; when they are longer (30 ms), skip
//! `pop` while decoded audio is left over. Each `pop` hands out the next
//! packet's worth of media: the buffer keeps a playout cursor in RTP time and
//! the caller's need drives it, as in WebRTC's NetEQ.
//!
//! # Delay measurement
//!
//! For every packet the buffer computes its *transit*: arrival time minus the
//! RTP timestamp converted to time. Transit contains an unknown constant
//! (clock offsets, path delay) so only differences matter: the *relative
//! delay* of a packet is its transit minus the minimum transit over a sliding
//! window ([`JitterConfig::window`], 3 s by default, also bounded in count).
//! The minimum is the "fastest packet" reference; it also tracks sender clock
//! drift because old samples fall out of the window.
//!
//! The raw target is the **95th percentile** of the relative delays in the
//! window, clamped to `[min_delay, max_delay]`. The *playout delay* `D` is how
//! far the packet being played lags behind the fastest possible arrival
//! (`now - timestamp - min transit`): a packet whose relative delay is at most
//! `D` arrives before its turn. The buffer steers `D` towards the target.
//!
//! # Adaptation policy
//!
//! * **The target grows at once** when the percentile rises (late packets
//!   are recorded too, so enough of them raise it) and **decays slowly**
//!   (exponentially, 2 s time constant) when it falls, so one quiet second
//!   does not throw away the margin a jittery network needs.
//! * **Silence is where the delay moves for free.** When the next packet is
//!   the next in sequence but its timestamp jumps ahead by at least one frame
//!   (DTX, silence suppression, a talkspurt start), the gap is played as
//!   silence ([`Pop::Waiting`]) and the talkspurt starts exactly when its
//!   playout delay reaches the target, whether that makes the gap longer or
//!   shorter. Playout start and restart after an outage use the same rule.
//! * **Inside a talkspurt the delay grows one frame at a time**: whenever
//!   `D < target` the buffer returns a concealment frame
//!   (`Pop::Lost { stretch: true, .. }`) without consuming the packet it
//!   is waiting for. If that packet is missing anyway it gets one more frame
//!   to arrive instead of being given up.
//! * **Inside a talkspurt the delay shrinks one frame at a time, slowly**:
//!   when `D > target + 1.5 frames`, and the two next packets are both here,
//!   the first is dropped (at most one drop every 500 ms, unless `D` exceeds
//!   `max_delay`), and the frame played instead is marked
//!   [`Discontinuity::Dropped`]. The band between the two thresholds is wider
//!   than one frame, so a grow is never followed by an immediate shrink. The
//!   same two steps absorb sender clock drift.
//!
//! # Loss, lateness and stream changes
//!
//! Sequence numbers and timestamps are extended to 64 bits internally, so
//! wraparound is invisible. Packets are held in sequence order, so a packet
//! that arrives out of order but before its turn plays in order. When the
//! packet due next is missing, one packet's duration is concealed
//! ([`Pop::Lost`]) and the playout *timestamp* moves on; the sequence cursor
//! moves only once a later packet is reached. With an empty buffer the buffer
//! cannot tell loss from silence suppression (DTX) or lateness, and this way
//! the first packet of the next talkspurt, which continues the sequence,
//! still plays. A packet whose timestamp playout has already passed is
//! dropped and counted *late* (or *duplicate* if it was played).
//!
//! Concealment runs for at most [`JitterConfig::max_concealment`] in a row
//! (so a DTX stream gets that much concealment at the end of each
//! talkspurt). After that the stream is taken as stopped and `pop` returns
//! [`Pop::Empty`] (silence) while a virtual playout clock keeps running.
//! Packets that then arrive for slots whose time has passed, the backlog a
//! network stall releases at once, are dropped as late and kept out of the
//! delay statistics: a stall is one event, not jitter to buffer for. If such
//! stale packets keep coming for a whole statistics window, the sender's
//! timestamps have fallen behind (some freeze them during a hold) and the
//! buffer restarts playout on them as on a new stream
//! ([`Discontinuity::Resync`]).
//!
//! A new SSRC, a sequence jump (more than 3000 ahead or 100 behind, the RFC
//! 3550 limits), a timestamp going backwards while the sequence advances, or
//! a timestamp so far ahead that the packet looks `max_delay` early is a
//! *resync candidate*. As in RFC 3550's probation, it takes effect only when
//! the next packet continues it in sequence; the buffer then resets (the
//! target delay is kept as a warm start), re-buffers and marks the first frame
//! [`Discontinuity::Resync`]. A lone stray packet is discarded.

mod buffer;
mod delay;

use std::time::Duration;

use bytes::Bytes;

pub use buffer::JitterBuffer;

/// The fields of an RTP packet the jitter buffer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitterPacket {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp, in units of the clock rate.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// RTP marker bit (first packet of a talkspurt for audio).
    pub marker: bool,
    /// Codec payload, handed back untouched.
    pub payload: Bytes,
}

/// What to play for the next slot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Pop {
    /// Decode and play this packet.
    Frame {
        /// Codec payload.
        payload: Bytes,
        /// RTP timestamp of the packet.
        timestamp: u32,
        /// RTP sequence number of the packet.
        seq: u16,
        /// SSRC of the packet.
        ssrc: u32,
        /// RTP marker bit of the packet.
        marker: bool,
        /// Set when this frame does not follow the previous output
        /// seamlessly; callers may cross-fade or reset the decoder.
        discontinuity: Option<Discontinuity>,
    },
    /// Nothing arrived for this slot: run the codec's concealment.
    Lost {
        /// RTP timestamp of the concealed slot.
        timestamp: u32,
        /// SSRC of the stream.
        ssrc: u32,
        /// How much to conceal, in RTP timestamp units.
        samples: u32,
        /// `true` when the frame is inserted to build up delay: the packet
        /// at `timestamp` is still expected and comes next. `false` when the
        /// slot is given up and playout moves past it.
        stretch: bool,
    },
    /// Packets are held but none is due yet (pre-roll, silence between
    /// talkspurts, re-buffering): play silence, do not conceal.
    Waiting,
    /// Nothing to play: no stream yet, or it stopped. Play silence.
    Empty,
}

/// Why a frame does not continue the previous output seamlessly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discontinuity {
    /// First frame of a new stream: start, new SSRC or a timestamp/sequence
    /// jump. Decoder state from before is meaningless.
    Resync,
    /// Playout resumes after silence or an outage; the timestamp jumps ahead.
    Resumed,
    /// The buffer discarded this many packets just before this one to cut
    /// delay (or because it was full).
    Dropped {
        /// Number of packets discarded.
        packets: u32,
    },
}

/// Jitter buffer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate in Hz (8000 for G.711, 48000 for Opus).
    pub clock_rate: u32,
    /// Playout frame period: how often `pop` is called.
    pub frame: Duration,
    /// Lowest target delay.
    pub min_delay: Duration,
    /// Highest target delay.
    pub max_delay: Duration,
    /// Target delay before any statistics exist.
    pub initial_delay: Duration,
    /// Most packets held at once; the oldest is discarded beyond it.
    pub capacity: usize,
    /// Span of the delay statistics window.
    pub window: Duration,
    /// Longest run of concealment before the stream is taken as stopped.
    pub max_concealment: Duration,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            clock_rate: 8000,
            frame: Duration::from_millis(20),
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(300),
            initial_delay: Duration::from_millis(60),
            capacity: 256,
            window: Duration::from_secs(3),
            max_concealment: Duration::from_millis(200),
        }
    }
}

impl JitterConfig {
    /// Default settings for a given RTP clock rate.
    pub fn with_clock_rate(clock_rate: u32) -> Self {
        Self {
            clock_rate,
            ..Self::default()
        }
    }

    /// RTP timestamp units in one frame period.
    pub fn samples_per_frame(&self) -> u32 {
        let samples = self.frame.as_micros() * u128::from(self.clock_rate) / 1_000_000;
        u32::try_from(samples).unwrap_or(u32::MAX)
    }

    /// Checks the settings; [`JitterBuffer::new`] calls this.
    pub fn validate(&self) -> Result<(), JitterError> {
        let fail = |why| Err(JitterError::InvalidConfig(why));
        if !(1000..=384_000).contains(&self.clock_rate) {
            return fail("clock_rate must be between 1000 and 384000 Hz");
        }
        if self.frame < Duration::from_millis(1) || self.frame > Duration::from_millis(200) {
            return fail("frame must be between 1 and 200 ms");
        }
        if self.min_delay > self.initial_delay || self.initial_delay > self.max_delay {
            return fail("delays must satisfy min_delay <= initial_delay <= max_delay");
        }
        if self.max_delay > Duration::from_secs(10) {
            return fail("max_delay must be at most 10 s");
        }
        if !(8..=65_536).contains(&self.capacity) {
            return fail("capacity must be between 8 and 65536 packets");
        }
        if self.window < Duration::from_millis(200) || self.window > Duration::from_secs(60) {
            return fail("window must be between 200 ms and 60 s");
        }
        if self.max_concealment > Duration::from_secs(10) {
            return fail("max_concealment must be at most 10 s");
        }
        Ok(())
    }
}

/// Invalid jitter buffer settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JitterError {
    /// A setting is out of range; the message says which.
    #[error("invalid jitter buffer config: {0}")]
    InvalidConfig(&'static str),
}

/// Counters and current delays, for monitoring and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Current target playout delay.
    pub target_delay: Duration,
    /// Playout delay at the last `pop` that played or concealed: how long the
    /// fastest possible packet waits in the buffer. Zero when not playing.
    pub buffered_delay: Duration,
    /// Mean time the played packets waited between arrival and playout.
    pub mean_buffered_delay: Duration,
    /// Packets held now.
    pub buffered_packets: usize,
    /// Packets pushed.
    pub received: u64,
    /// Packets handed out as [`Pop::Frame`].
    pub played: u64,
    /// Packets that arrived after their slot was concealed or passed.
    pub late: u64,
    /// Copies of packets already held or played.
    pub duplicate: u64,
    /// Packets that arrived after a packet with a higher sequence number.
    pub reordered: u64,
    /// Slots given up as lost (`Pop::Lost` with `stretch: false`).
    pub lost: u64,
    /// All `Pop::Lost` outputs, stretches included.
    pub concealed: u64,
    /// Packets dropped on purpose to cut delay.
    pub dropped: u64,
    /// Packets thrown away otherwise: stray resync candidates, overflow, and
    /// packets flushed by a reset.
    pub discarded: u64,
    /// Resets (new SSRC, timestamp/sequence jump, explicit `reset`).
    pub resets: u64,
}
