//! The send side of a session: encoder, sequence/timestamp state, digits.

use std::collections::VecDeque;
use std::time::Duration;

use hotline_media::codec::{self, AudioEncoder, CodecKind};
use hotline_media::dtmf::Digit;
use hotline_media::dtmf::rfc4733::{EventSender, SenderConfig};
use hotline_media::mix::{Curve, Fader};
use hotline_media::resample::Resampler;
use hotline_media::rtp::RtpPacketBuilder;

use super::{FRAME_SAMPLES, PCM_RATE, RemoteMedia, SessionError};

/// Digits queued behind the one playing; more are refused.
pub(super) const MAX_QUEUED_DIGITS: usize = 32;
/// Silence between consecutive queued digits, in ticks.
const INTER_DIGIT_TICKS: u32 = 3;

/// The send side: encoder, sequence/timestamp state, digits.
pub(super) struct Sender {
    encoder: Box<dyn AudioEncoder + Send>,
    resampler: Option<Resampler>,
    /// The resampler's filter holds nothing but zeros: the last frame it
    /// was given was silent. Its delay is shorter than a frame, so one
    /// silent frame flushes it, and from then on silence in gives exact
    /// zeros out: the resampler (most of a G.711 sender's cost) can be
    /// skipped until audio plays again.
    resampler_quiet: bool,
    payload_type: u8,
    te_pt: Option<u8>,
    pub(super) clock_rate: u32,
    pub(super) ssrc: u32,
    seq: u16,
    pub(super) timestamp: u32,
    first: bool,
    in_talkspurt: bool,
    /// Ticks were skipped (see `catchup`): the next audio packet follows a
    /// timestamp jump and carries the marker bit.
    resync: bool,
    pub(super) events: Option<EventSender>,
    pub(super) digits: VecDeque<(Digit, Duration)>,
    digit_gap: u32,
    fader: Fader,
    pub(super) fading: bool,
    pcm: Vec<i16>,
    enc_in: Vec<i16>,
    payload: Vec<u8>,
    /// The packet built by the last [`Sender::tick`].
    pub(super) packet: Vec<u8>,
}

impl Sender {
    pub(super) fn new(remote: &RemoteMedia) -> Result<Self, SessionError> {
        let mut s = Sender {
            encoder: codec::encoder(CodecKind::Pcmu, 8000)?,
            resampler: None,
            resampler_quiet: true,
            payload_type: 0,
            te_pt: None,
            clock_rate: 8000,
            ssrc: rand::random(),
            seq: rand::random(),
            timestamp: rand::random(),
            first: true,
            in_talkspurt: false,
            resync: false,
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
    pub(super) fn configure(&mut self, remote: &RemoteMedia) -> Result<(), SessionError> {
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
        self.resampler_quiet = true;
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

    /// A tick that sends nothing because the session is catching up (see
    /// `catchup`): the timestamp advances as if a frame were sent, so it
    /// keeps tracking the clock, and the next audio packet is marked.
    pub(super) fn skip(&mut self) {
        self.timestamp = self.timestamp.wrapping_add(self.ticks_per_frame());
        self.resync = true;
    }

    /// Builds this tick's packet into `self.packet` from `frame` (16 kHz;
    /// padded or cut to [`FRAME_SAMPLES`]); returns false when nothing is
    /// to be sent. The timestamp advances every tick regardless.
    pub(super) fn tick(&mut self, frame: Option<&[i16]>, send_silence: bool) -> bool {
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
        let marker = self.first || self.resync || (speech && !self.in_talkspurt);
        self.in_talkspurt = speech;

        self.enc_in.clear();
        let silent = self.pcm.iter().all(|&s| s == 0);
        match self.resampler.as_mut() {
            Some(_) if silent && self.resampler_quiet => {
                self.enc_in.resize(self.encoder.frame_samples(), 0);
            }
            Some(r) => {
                if r.process(&self.pcm, &mut self.enc_in).is_err() {
                    self.enc_in.clear();
                    self.enc_in.resize(self.encoder.frame_samples(), 0);
                }
                self.resampler_quiet = silent;
            }
            None => self.enc_in.extend_from_slice(&self.pcm),
        }
        let mut payload = std::mem::take(&mut self.payload);
        payload.clear();
        let ok = self.encoder.encode(&self.enc_in, &mut payload).is_ok();
        let built = ok && self.build(self.payload_type, marker, ts, &payload);
        self.payload = payload;
        if built {
            self.resync = false;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_media::rtp::FIXED_HEADER_LEN;

    fn remote(codec: CodecKind, payload_type: u8) -> RemoteMedia {
        RemoteMedia {
            rtp: "127.0.0.1:4000".parse().unwrap(),
            rtcp: None,
            rtcp_mux: true,
            codec,
            payload_type,
            telephone_event_pt: None,
        }
    }

    fn tone(n: usize) -> Vec<i16> {
        (0..FRAME_SAMPLES)
            .map(|i| {
                let t = (n * FRAME_SAMPLES + i) as f64 / f64::from(PCM_RATE);
                (9000.0 * (2.0 * std::f64::consts::PI * 1020.0 * t).sin()) as i16
            })
            .collect()
    }

    /// Frames of a call: speech, silence (none played, then explicit
    /// zeros), speech again, silence.
    fn script() -> Vec<Option<Vec<i16>>> {
        let mut s = Vec::new();
        s.extend((0..4).map(|n| Some(tone(n))));
        s.extend((0..3).map(|_| None));
        s.extend((0..2).map(|_| Some(vec![0; FRAME_SAMPLES])));
        s.extend((4..7).map(|n| Some(tone(n))));
        s.extend((0..4).map(|_| None));
        s
    }

    #[test]
    fn skipping_the_resampler_on_silence_sends_what_resampling_would() {
        let mut sender = Sender::new(&remote(CodecKind::Pcmu, 0)).unwrap();
        let mut resampler = Resampler::new(PCM_RATE, 8000).unwrap();
        let mut encoder = codec::encoder(CodecKind::Pcmu, 8000).unwrap();
        let (mut narrow, mut expected) = (Vec::new(), Vec::new());
        for (i, frame) in script().into_iter().enumerate() {
            assert!(sender.tick(frame.as_deref(), true));
            let pcm = frame.unwrap_or_else(|| vec![0; FRAME_SAMPLES]);
            narrow.clear();
            resampler.process(&pcm, &mut narrow).unwrap();
            expected.clear();
            encoder.encode(&narrow, &mut expected).unwrap();
            assert_eq!(
                &sender.packet[FIXED_HEADER_LEN..],
                &expected[..],
                "frame {i}"
            );
        }
    }

    #[test]
    fn the_tail_of_speech_is_resampled_before_silence_is_skipped() {
        let mut sender = Sender::new(&remote(CodecKind::Pcmu, 0)).unwrap();
        assert!(sender.tick(Some(&tone(0)), true));
        assert!(!sender.resampler_quiet);
        // The first silent frame still carries the filter's delayed tail.
        assert!(sender.tick(None, true));
        let tail = &sender.packet[FIXED_HEADER_LEN..];
        assert!(tail.iter().any(|&b| b != 0xff), "tail of the tone");
        assert!(sender.resampler_quiet);
        assert!(sender.tick(None, true));
        assert!(sender.packet[FIXED_HEADER_LEN..].iter().all(|&b| b == 0xff));
    }

    #[test]
    fn timestamps_advance_by_a_frame_whatever_is_sent() {
        let mut sender = Sender::new(&remote(CodecKind::Pcmu, 0)).unwrap();
        let start = sender.timestamp;
        for frame in script() {
            sender.tick(frame.as_deref(), false);
        }
        let ticks = script().len() as u32;
        assert_eq!(sender.timestamp.wrapping_sub(start), ticks * 160);
    }

    #[test]
    fn skipped_ticks_jump_the_timestamp_and_mark_the_next_packet() {
        use hotline_media::rtp::RtpPacket;
        let mut sender = Sender::new(&remote(CodecKind::Pcmu, 0)).unwrap();
        let parse = |p: &[u8]| {
            let p = RtpPacket::parse(p).unwrap();
            (p.sequence(), p.timestamp(), p.marker())
        };
        assert!(sender.tick(Some(&tone(0)), true));
        let (seq0, ts0, m0) = parse(&sender.packet);
        assert!(m0, "first packet of the stream");
        assert!(sender.tick(Some(&tone(1)), true));
        assert!(!parse(&sender.packet).2, "mid-talkspurt packet unmarked");
        for _ in 0..5 {
            sender.skip();
        }
        assert!(sender.tick(Some(&tone(2)), true));
        let (seq, ts, marker) = parse(&sender.packet);
        // No sequence gap (nothing was lost), a 5-frame timestamp jump on
        // top of the normal step, and the marker for the receiver to
        // re-align its playout.
        assert_eq!(seq, seq0.wrapping_add(2));
        assert_eq!(ts.wrapping_sub(ts0), 7 * 160);
        assert!(marker);
        // Only that packet is marked, and silence after a skip is marked
        // too, since the jump is what the receiver must see.
        assert!(sender.tick(Some(&tone(3)), true));
        assert!(!parse(&sender.packet).2);
        sender.skip();
        assert!(sender.tick(None, true));
        assert!(parse(&sender.packet).2);
        assert!(sender.tick(None, true));
        assert!(!parse(&sender.packet).2);
    }
}
