//! The receive chain of one call leg: RTP datagrams in; 16 kHz PCM, digits
//! and speech events out.
//!
//! ```text
//! push_rtp:  datagram -> RTP parse -+-> audio PT -> receive stats -> jitter buffer
//!                                   +-> telephone-event PT -> RFC 4733 receiver
//! pull:      jitter buffer -> decode / conceal -> resample -> DTMF detector
//!                                                          -> VAD
//! ```
//!
//! The call task calls [`ReceiveChain::push_rtp`] for every datagram the
//! media socket delivers, and [`ReceiveChain::pull`] once per 20 ms from its
//! playout clock. Like every piece of this crate, the chain never reads the
//! clock: both calls take the current time.
//!
//! Digits can arrive twice: as RFC 4733 events and as tones in the audio
//! (gateways that do not strip in-band tones). With [`InbandDtmf::Auto`],
//! in-band detection runs until the peer has sent one RFC 4733 event and is
//! then switched off, and a digit reported by one source is not reported
//! again by the other within [`DIGIT_DEDUP_WINDOW`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::{self, AudioDecoder, CodecError, CodecKind};
use crate::dtmf::rfc4733::{EventReceiver, EventReport};
use crate::dtmf::{Digit, DtmfDetector, DtmfError, DtmfEvent};
use crate::jitter::{
    Discontinuity, JitterBuffer, JitterConfig, JitterError, JitterPacket, JitterStats, Pop,
};
use crate::resample::{ResampleError, Resampler};
use crate::rtp::{ReceiveStats, RtpError, RtpPacket, is_rtcp, rtp_units_between};
use crate::vad::{Vad, VadConfig, VadError, VadEvent, VadFrame};

/// A digit from one source is not reported again by the other source
/// within this much audio. Longer than a digit plus the jitter buffer's
/// delay, shorter than two digits keyed in quick succession.
pub const DIGIT_DEDUP_WINDOW: Duration = Duration::from_millis(300);

/// RFC 3389 comfort noise: understood, played as silence.
const COMFORT_NOISE_PT: u8 = 13;

/// Most RFC 4733 reports held between two pulls. Four is a start and an
/// end for two digits; a peer sending more in 20 ms is misbehaving.
const PENDING_EVENTS: usize = 8;

/// Most jitter buffer pops per pull: enough for 10 ms packets with
/// concealment in between, and a bound on work if the stream is odd.
const MAX_POPS_PER_PULL: usize = 8;

/// When in-band DTMF detection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InbandDtmf {
    /// Never: the peer signals digits out of band only.
    Off,
    /// Until the peer sends its first RFC 4733 event.
    Auto,
    /// Always, de-duplicated against RFC 4733.
    Always,
}

/// How to build a [`ReceiveChain`].
#[derive(Debug, Clone)]
pub struct ReceiveConfig {
    /// The negotiated audio codec.
    pub codec: CodecKind,
    /// Its RTP payload type.
    pub payload_type: u8,
    /// The negotiated telephone-event payload type, if any.
    pub telephone_event_pt: Option<u8>,
    /// Rate of the PCM the chain produces (16 kHz feeds STT).
    pub output_rate: u32,
    /// Jitter buffer settings; its clock rate is set from the codec.
    pub jitter: JitterConfig,
    /// Voice activity detection, or `None` to skip it.
    pub vad: Option<VadConfig>,
    /// In-band DTMF detection policy.
    pub inband_dtmf: InbandDtmf,
}

impl ReceiveConfig {
    /// Defaults for `codec` on `payload_type`: 16 kHz output, default jitter
    /// buffer, VAD with default hysteresis, in-band DTMF in `Auto` mode.
    pub fn new(codec: CodecKind, payload_type: u8) -> Self {
        ReceiveConfig {
            codec,
            payload_type,
            telephone_event_pt: None,
            output_rate: 16_000,
            jitter: JitterConfig::with_clock_rate(codec.rtp_clock_rate()),
            vad: Some(VadConfig::new(16_000, 20)),
            inband_dtmf: InbandDtmf::Auto,
        }
    }

    /// Sets the telephone-event payload type.
    pub fn with_telephone_event(mut self, pt: u8) -> Self {
        self.telephone_event_pt = Some(pt);
        self
    }
}

/// Why a chain could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The codec cannot decode at the needed rate.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The resampler does not support the rate pair.
    #[error(transparent)]
    Resample(#[from] ResampleError),
    /// The jitter buffer configuration is invalid.
    #[error(transparent)]
    Jitter(#[from] JitterError),
    /// The VAD configuration is invalid.
    #[error(transparent)]
    Vad(#[from] VadError),
    /// The DTMF detector does not support the output rate.
    #[error(transparent)]
    Dtmf(#[from] DtmfError),
}

/// Why a datagram was not used. None of these is fatal to the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// Not a valid RTP packet.
    #[error("malformed RTP: {0}")]
    Malformed(#[from] RtpError),
    /// An RTCP packet multiplexed on the RTP port; RTCP is handled elsewhere.
    #[error("RTCP on the RTP port")]
    Rtcp,
    /// A payload type that was not negotiated.
    #[error("unexpected payload type {0}")]
    UnknownPayloadType(u8),
    /// A telephone-event packet with a malformed payload.
    #[error("malformed telephone-event payload")]
    BadTelephoneEvent,
}

/// Where a digit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitSource {
    /// Tones detected in the audio.
    InBand,
    /// RFC 4733 telephone-event packets.
    Rfc4733,
}

/// A DTMF digit starting or ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitEvent {
    /// The digit.
    pub digit: Digit,
    /// Which source reported it.
    pub source: DigitSource,
    /// `None` for the start, the tone's length for the end.
    pub duration: Option<Duration>,
    /// Position in the caller's audio (time since the chain started) the
    /// event refers to. Analysis runs before resampling, so the PCM from
    /// [`ReceiveChain::pull`] lags this by the resampler's delay (10 ms).
    pub at: Duration,
}

/// Something the chain noticed in the caller's audio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReceiveEvent {
    /// A DTMF digit started or ended.
    Digit(DigitEvent),
    /// Speech started or ended.
    Speech(VadEvent),
}

/// Counters for monitoring and RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChainStats {
    /// Datagrams that were not RTP.
    pub malformed: u64,
    /// RTCP packets seen on the RTP port.
    pub rtcp: u64,
    /// Packets with a payload type that was not negotiated.
    pub unknown_payload_type: u64,
    /// Comfort-noise packets.
    pub comfort_noise: u64,
    /// Payloads the decoder rejected (played as concealment).
    pub decode_errors: u64,
    /// Digits not reported because the other source already had.
    pub digits_deduplicated: u64,
    /// RFC 4733 reports dropped because too many arrived between pulls.
    pub events_dropped: u64,
    /// 20 ms frames produced.
    pub frames: u64,
}

#[derive(Debug, Clone, Copy)]
struct RecentDigit {
    digit: Digit,
    source: DigitSource,
    at: Duration,
}

/// The receive chain of one call leg. See the module documentation.
pub struct ReceiveChain {
    config: ReceiveConfig,
    clock_rate: u32,
    epoch: Option<Instant>,
    rtp_stats: ReceiveStats,
    jitter: JitterBuffer,
    decoder: Box<dyn AudioDecoder + Send>,
    resampler: Resampler,
    dtmf: Option<DtmfDetector>,
    vad: Option<Vad>,
    events_4733: EventReceiver,
    pending_4733: VecDeque<EventReport>,
    seen_4733: bool,
    recent_digit: Option<RecentDigit>,
    suppressing_4733: Option<(u32, u32)>,
    suppressing_inband: Option<Digit>,
    decoded: VecDeque<i16>,
    scratch: Vec<i16>,
    frame_in: Vec<i16>,
    dtmf_events: Vec<DtmfEvent>,
    vad_frames: Vec<VadFrame>,
    vad_events: Vec<VadEvent>,
    produced: u64,
    analysis_rate: u32,
    stats: ChainStats,
}

impl std::fmt::Debug for ReceiveChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiveChain")
            .field("codec", &self.config.codec)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl ReceiveChain {
    /// Builds a chain. Everything it needs is allocated here, so the
    /// per-packet and per-frame paths do not allocate.
    pub fn new(mut config: ReceiveConfig) -> Result<Self, ChainError> {
        let clock_rate = config.codec.rtp_clock_rate();
        config.jitter.clock_rate = clock_rate;
        // Opus decodes straight to the output rate when it can; G.711 is
        // 8 kHz and is resampled.
        let decode_rate = match config.codec {
            CodecKind::Opus
                if matches!(config.output_rate, 8000 | 12000 | 16000 | 24000 | 48000) =>
            {
                config.output_rate
            }
            CodecKind::Opus => 48_000,
            CodecKind::Pcmu | CodecKind::Pcma => 8_000,
        };
        let decoder = codec::decoder(config.codec, decode_rate)?;
        let resampler = Resampler::new(decode_rate, config.output_rate)?;
        let jitter = JitterBuffer::new(config.jitter.clone())?;
        // DTMF and VAD look at the decoded audio before resampling when they
        // can: a narrowband call has nothing above 4 kHz to find, analysing
        // 8 kHz costs half as much as 16 kHz, and it skips the resampler's
        // delay.
        let analysis_rate = if matches!(decode_rate, 8000 | 16000) {
            decode_rate
        } else {
            config.output_rate
        };
        let vad = match config.vad.as_mut() {
            Some(vad) => {
                vad.sample_rate = analysis_rate;
                Some(Vad::new(vad.clone())?)
            }
            None => None,
        };
        let dtmf = match config.inband_dtmf {
            InbandDtmf::Off => None,
            InbandDtmf::Auto | InbandDtmf::Always => Some(DtmfDetector::new(analysis_rate)?),
        };
        let frame_in = decode_rate as usize / 50;
        Ok(ReceiveChain {
            clock_rate,
            epoch: None,
            rtp_stats: ReceiveStats::new(),
            jitter,
            decoder,
            resampler,
            dtmf,
            vad,
            // A lost End packet ends the digit after one second.
            events_4733: EventReceiver::new(clock_rate),
            pending_4733: VecDeque::with_capacity(PENDING_EVENTS),
            seen_4733: false,
            recent_digit: None,
            suppressing_4733: None,
            suppressing_inband: None,
            // Room for a 120 ms Opus packet on top of a partial frame.
            decoded: VecDeque::with_capacity(frame_in * 8),
            scratch: Vec::with_capacity(frame_in * 8),
            frame_in: Vec::with_capacity(frame_in),
            dtmf_events: Vec::with_capacity(8),
            vad_frames: Vec::with_capacity(8),
            vad_events: Vec::with_capacity(4),
            produced: 0,
            analysis_rate,
            stats: ChainStats::default(),
            config,
        })
    }

    /// Samples in one output frame (20 ms at the output rate).
    pub fn frame_len(&self) -> usize {
        self.config.output_rate as usize / 50
    }

    /// The configuration the chain was built with.
    pub fn config(&self) -> &ReceiveConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> ChainStats {
        self.stats
    }

    /// The jitter buffer's counters.
    pub fn jitter_stats(&self) -> JitterStats {
        self.jitter.stats()
    }

    /// RTP sequence and interarrival statistics, for RTCP receiver reports.
    pub fn rtp_stats(&self) -> &ReceiveStats {
        &self.rtp_stats
    }

    /// Time since the chain produced its first frame, by output samples.
    pub fn position(&self) -> Duration {
        samples_to_duration(self.produced, self.config.output_rate)
    }

    fn arrival_units(&mut self, at: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(at);
        rtp_units_between(epoch, at, self.clock_rate)
    }

    /// Feeds one datagram received on the media socket at `arrival`.
    /// `datagram` is sliced, not copied, into the jitter buffer.
    pub fn push_rtp(&mut self, datagram: Bytes, arrival: Instant) -> Result<(), PushError> {
        if is_rtcp(&datagram) {
            self.stats.rtcp += 1;
            return Err(PushError::Rtcp);
        }
        let packet = match RtpPacket::parse(&datagram) {
            Ok(p) => p,
            Err(e) => {
                self.stats.malformed += 1;
                return Err(e.into());
            }
        };
        let pt = packet.payload_type();
        let units = self.arrival_units(arrival);
        if Some(pt) == self.config.telephone_event_pt {
            let reports = self
                .events_4733
                .on_rtp(&packet, units)
                .map_err(|_| PushError::BadTelephoneEvent)?;
            self.seen_4733 = true;
            for report in reports {
                self.queue_4733(report);
            }
            return Ok(());
        }
        if pt == COMFORT_NOISE_PT {
            self.stats.comfort_noise += 1;
            return Ok(());
        }
        if pt != self.config.payload_type {
            self.stats.unknown_payload_type += 1;
            return Err(PushError::UnknownPayloadType(pt));
        }
        self.rtp_stats.on_rtp(&packet, units);
        let start = packet.header_len();
        let payload = datagram.slice(start..start + packet.payload().len());
        self.jitter.push(
            JitterPacket {
                seq: packet.sequence(),
                timestamp: packet.timestamp(),
                ssrc: packet.ssrc(),
                marker: packet.marker(),
                payload,
            },
            arrival,
        );
        Ok(())
    }

    fn queue_4733(&mut self, report: EventReport) {
        if self.pending_4733.len() == PENDING_EVENTS {
            self.stats.events_dropped += 1;
            return;
        }
        self.pending_4733.push_back(report);
    }

    /// Produces the next 20 ms of caller audio at the output rate into `out`
    /// (cleared first) and appends what was noticed in it to `events`.
    /// Called once per 20 ms by the playout clock at `now`.
    pub fn pull(&mut self, now: Instant, out: &mut Vec<i16>, events: &mut Vec<ReceiveEvent>) {
        let units = self.arrival_units(now);
        if let Some(report) = self.events_4733.poll(units) {
            self.queue_4733(report);
        }
        self.fill_decoded(now);

        let frame_in = self.resampler.input_frame_len();
        self.frame_in.clear();
        let take = frame_in.min(self.decoded.len());
        self.frame_in.extend(self.decoded.drain(..take));
        self.frame_in.resize(frame_in, 0);

        out.clear();
        if self.resampler.process(&self.frame_in, out).is_err() {
            // Unreachable with a frame of the right length; keep the
            // timeline intact regardless.
            out.clear();
            out.resize(self.frame_len(), 0);
        }
        let frame_start = self.position();
        self.produced += out.len() as u64;
        self.stats.frames += 1;

        while let Some(report) = self.pending_4733.pop_front() {
            self.on_4733(report, frame_start, events);
        }
        let inband_active = match self.config.inband_dtmf {
            InbandDtmf::Off => false,
            InbandDtmf::Auto => !self.seen_4733,
            InbandDtmf::Always => true,
        };
        let analysed: &[i16] = if self.analysis_rate == self.decoder.sample_rate() {
            &self.frame_in
        } else {
            out
        };
        self.dtmf_events.clear();
        if let Some(detector) = self.dtmf.as_mut().filter(|_| inband_active) {
            detector.process(analysed, &mut self.dtmf_events);
        }
        self.vad_events.clear();
        if let Some(vad) = self.vad.as_mut() {
            self.vad_frames.clear();
            vad.process(analysed, &mut self.vad_frames, &mut self.vad_events);
        }
        for i in 0..self.dtmf_events.len() {
            let e = self.dtmf_events[i];
            self.on_inband(e, events);
        }
        events.extend(self.vad_events.iter().map(|&e| ReceiveEvent::Speech(e)));
    }

    /// Decodes from the jitter buffer until a whole input frame is ready or
    /// the buffer has nothing due.
    fn fill_decoded(&mut self, now: Instant) {
        let frame_in = self.resampler.input_frame_len();
        let decode_rate = u64::from(self.decoder.sample_rate());
        for _ in 0..MAX_POPS_PER_PULL {
            if self.decoded.len() >= frame_in {
                return;
            }
            self.scratch.clear();
            match self.jitter.pop(now) {
                Pop::Frame {
                    payload,
                    discontinuity,
                    ..
                } => {
                    if discontinuity == Some(Discontinuity::Resync) {
                        self.decoder.reset();
                    }
                    if self.decoder.decode(&payload, &mut self.scratch).is_err() {
                        self.stats.decode_errors += 1;
                        let _ = self.decoder.conceal(frame_in, &mut self.scratch);
                    }
                }
                Pop::Lost { samples, .. } => {
                    let n = u64::from(samples) * decode_rate / u64::from(self.clock_rate);
                    let _ = self.decoder.conceal(n as usize, &mut self.scratch);
                }
                Pop::Waiting | Pop::Empty => return,
            }
            self.decoded.extend(self.scratch.iter().copied());
        }
    }

    fn on_4733(&mut self, report: EventReport, at: Duration, events: &mut Vec<ReceiveEvent>) {
        match report {
            EventReport::Start {
                ssrc,
                timestamp,
                event,
            } => {
                let Some(digit) = Digit::from_event_code(event) else {
                    return; // non-DTMF events (flash, tones) are not digits
                };
                if !self.start_digit(digit, DigitSource::Rfc4733, at, events) {
                    self.suppressing_4733 = Some((ssrc, timestamp));
                }
            }
            EventReport::End {
                ssrc,
                timestamp,
                event,
                duration,
                ..
            } => {
                let Some(digit) = Digit::from_event_code(event) else {
                    return;
                };
                if self.suppressing_4733 == Some((ssrc, timestamp)) {
                    self.suppressing_4733 = None;
                    return;
                }
                events.push(ReceiveEvent::Digit(DigitEvent {
                    digit,
                    source: DigitSource::Rfc4733,
                    duration: Some(samples_to_duration(u64::from(duration), self.clock_rate)),
                    at,
                }));
            }
        }
    }

    fn on_inband(&mut self, event: DtmfEvent, events: &mut Vec<ReceiveEvent>) {
        let rate = self.analysis_rate;
        match event {
            DtmfEvent::DigitStart { digit, at } => {
                let at = samples_to_duration(at, rate);
                if !self.start_digit(digit, DigitSource::InBand, at, events) {
                    self.suppressing_inband = Some(digit);
                }
            }
            DtmfEvent::DigitEnd {
                digit,
                at,
                duration,
            } => {
                if self.suppressing_inband.take() == Some(digit) {
                    return;
                }
                events.push(ReceiveEvent::Digit(DigitEvent {
                    digit,
                    source: DigitSource::InBand,
                    duration: Some(samples_to_duration(duration, rate)),
                    at: samples_to_duration(at, rate),
                }));
            }
        }
    }

    /// Reports a digit's start unless the other source reported the same
    /// digit moments ago; returns whether it was reported.
    fn start_digit(
        &mut self,
        digit: Digit,
        source: DigitSource,
        at: Duration,
        events: &mut Vec<ReceiveEvent>,
    ) -> bool {
        let duplicate = self.recent_digit.is_some_and(|r| {
            r.digit == digit && r.source != source && at.abs_diff(r.at) <= DIGIT_DEDUP_WINDOW
        });
        if duplicate {
            self.stats.digits_deduplicated += 1;
            return false;
        }
        self.recent_digit = Some(RecentDigit { digit, source, at });
        events.push(ReceiveEvent::Digit(DigitEvent {
            digit,
            source,
            duration: None,
            at,
        }));
        true
    }
}

fn samples_to_duration(samples: u64, rate: u32) -> Duration {
    Duration::from_nanos(samples.saturating_mul(1_000_000_000) / u64::from(rate))
}
