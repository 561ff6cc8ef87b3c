//! Audio codecs behind one pair of traits, so the call task handles PCMU,
//! PCMA and Opus the same way.
//!
//! Every decoder appends samples to a caller-owned `Vec<i16>` and every
//! encoder appends bytes to a caller-owned `Vec<u8>`: once those buffers have
//! grown to a frame's size, the per-frame path allocates nothing.
//!
//! Loss is handled by the decoder that owns the stream state: the call task
//! calls [`AudioDecoder::conceal`] for each missing frame (G.711 uses the
//! Appendix I style [`plc::Plc`], Opus uses libopus' own concealment) and
//! [`AudioDecoder::decode_fec`] when the packet after a gap has already
//! arrived.

pub mod g711;
pub mod opus;
pub mod plc;

pub use self::g711::{G711Decoder, G711Encoder, Law};
pub use self::opus::{OpusConfig, OpusDecoder, OpusEncoder};
pub use self::plc::Plc;

/// The codecs Hotline speaks, as negotiated in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 μ-law, static RTP payload type 0 (RFC 3551).
    Pcmu,
    /// G.711 A-law, static RTP payload type 8 (RFC 3551).
    Pcma,
    /// Opus (RFC 6716), dynamic payload type; RTP clock is always 48 kHz
    /// whatever rate it is decoded at (RFC 7587 §4.1).
    Opus,
}

impl CodecKind {
    /// The static RTP payload type, if the codec has one (RFC 3551 table 4).
    pub const fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu => Some(0),
            CodecKind::Pcma => Some(8),
            CodecKind::Opus => None,
        }
    }

    /// The codec a static payload type stands for, if any we support.
    pub const fn from_static_payload_type(pt: u8) -> Option<CodecKind> {
        match pt {
            0 => Some(CodecKind::Pcmu),
            8 => Some(CodecKind::Pcma),
            _ => None,
        }
    }

    /// The RTP timestamp clock rate in Hz. Opus is 48 000 even when the
    /// audio is narrowband, because RFC 7587 fixes it so.
    pub const fn rtp_clock_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::Opus => 48_000,
        }
    }

    /// The encoding name used in an SDP `a=rtpmap` line.
    pub const fn encoding_name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::Opus => "opus",
        }
    }

    /// The full `a=rtpmap` encoding parameter. Opus always advertises two
    /// channels (RFC 7587 §7) even though Hotline sends mono.
    pub const fn rtpmap(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU/8000",
            CodecKind::Pcma => "PCMA/8000",
            CodecKind::Opus => "opus/48000/2",
        }
    }

    /// Looks a codec up by its SDP encoding name (case-insensitive, as SDP
    /// encoding names are).
    pub fn from_encoding_name(name: &str) -> Option<CodecKind> {
        [CodecKind::Pcmu, CodecKind::Pcma, CodecKind::Opus]
            .into_iter()
            .find(|k| k.encoding_name().eq_ignore_ascii_case(name))
    }

    /// Converts a sample count at `decode_rate` Hz into RTP timestamp ticks
    /// of this codec's clock, e.g. 320 samples at 16 kHz are 960 Opus ticks.
    /// Wraps like RTP timestamps do.
    pub const fn rtp_ticks(self, samples: u64, decode_rate: u32) -> u32 {
        if decode_rate == 0 {
            return 0;
        }
        (samples * self.rtp_clock_rate() as u64 / decode_rate as u64) as u32
    }
}

/// Why a codec could not do what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The RTP payload carried no bytes. A lost frame goes through
    /// [`AudioDecoder::conceal`] instead.
    #[error("empty payload")]
    EmptyPayload,
    /// The codec cannot run at this sample rate.
    #[error("{kind:?} does not support {rate} Hz")]
    UnsupportedRate {
        /// The codec asked for.
        kind: CodecKind,
        /// The rate asked for.
        rate: u32,
    },
    /// The number of samples is not a frame length the codec accepts.
    #[error("{samples} samples is not a valid frame length at {rate} Hz")]
    FrameSize {
        /// Samples given or asked for.
        samples: usize,
        /// The codec's sample rate.
        rate: u32,
    },
    /// libopus rejected the packet or the call.
    #[error("{function}: {}", code.description())]
    Opus {
        /// The libopus function that failed.
        function: &'static str,
        /// libopus' error code; `InvalidPacket` for a corrupt payload.
        code: ::opus::ErrorCode,
    },
}

impl From<::opus::Error> for CodecError {
    fn from(e: ::opus::Error) -> Self {
        CodecError::Opus {
            function: e.function(),
            code: e.code(),
        }
    }
}

/// Turns RTP payloads of one stream into 16-bit mono PCM.
///
/// A decoder is stateful (concealment history, Opus predictors): use one per
/// stream and feed it frames in playout order.
pub trait AudioDecoder {
    /// Which codec this is.
    fn kind(&self) -> CodecKind;

    /// The rate of the PCM this decoder produces, in Hz.
    fn sample_rate(&self) -> u32;

    /// Samples in one 20 ms frame at [`sample_rate`](Self::sample_rate).
    fn frame_samples(&self) -> usize {
        self.sample_rate() as usize / 50
    }

    /// How many samples `payload` will decode to, without decoding it. Lets
    /// a jitter buffer learn a packet's duration.
    fn payload_samples(&self, payload: &[u8]) -> Result<usize, CodecError>;

    /// Decodes one RTP payload, appending the samples to `out`; returns how
    /// many were appended. On error nothing is appended.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError>;

    /// Synthesizes `samples` samples standing in for lost audio, appending
    /// them to `out`. Called once per missing frame, in order; the next
    /// [`decode`](Self::decode) smooths the join back to real audio.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<usize, CodecError>;

    /// Recovers a lost frame of `samples` samples from redundancy carried in
    /// `next_payload`, the packet that follows the gap, appending it to
    /// `out`. `next_payload` must then still be decoded normally. Codecs
    /// without in-band FEC conceal instead, which is what this default does.
    fn decode_fec(
        &mut self,
        next_payload: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<usize, CodecError> {
        let _ = next_payload;
        self.conceal(samples, out)
    }

    /// Forgets all stream state, e.g. when the remote SSRC changes.
    fn reset(&mut self);
}

/// Turns 16-bit mono PCM into RTP payloads.
pub trait AudioEncoder {
    /// Which codec this is.
    fn kind(&self) -> CodecKind;

    /// The rate of the PCM this encoder takes, in Hz.
    fn sample_rate(&self) -> u32;

    /// Samples in one 20 ms frame at [`sample_rate`](Self::sample_rate).
    fn frame_samples(&self) -> usize {
        self.sample_rate() as usize / 50
    }

    /// Encodes one frame of `pcm`, appending the payload to `out`; returns
    /// the number of bytes appended. On error nothing is appended.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError>;

    /// Forgets all stream state.
    fn reset(&mut self);
}

/// A decoder for `kind` producing PCM at `rate` Hz. G.711 only runs at
/// 8 kHz; Opus runs at 8, 12, 16, 24 or 48 kHz.
pub fn decoder(kind: CodecKind, rate: u32) -> Result<Box<dyn AudioDecoder + Send>, CodecError> {
    Ok(match kind {
        CodecKind::Pcmu => Box::new(G711Decoder::with_rate(Law::Mu, rate)?),
        CodecKind::Pcma => Box::new(G711Decoder::with_rate(Law::A, rate)?),
        CodecKind::Opus => Box::new(OpusDecoder::new(rate)?),
    })
}

/// An encoder for `kind` taking PCM at `rate` Hz, with default settings
/// ([`OpusConfig::default`] for Opus).
pub fn encoder(kind: CodecKind, rate: u32) -> Result<Box<dyn AudioEncoder + Send>, CodecError> {
    Ok(match kind {
        CodecKind::Pcmu => Box::new(G711Encoder::with_rate(Law::Mu, rate)?),
        CodecKind::Pcma => Box::new(G711Encoder::with_rate(Law::A, rate)?),
        CodecKind::Opus => Box::new(OpusEncoder::new(rate, OpusConfig::default())?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_types_and_clocks() {
        assert_eq!(CodecKind::Pcmu.static_payload_type(), Some(0));
        assert_eq!(CodecKind::Pcma.static_payload_type(), Some(8));
        assert_eq!(CodecKind::Opus.static_payload_type(), None);
        assert_eq!(
            CodecKind::from_static_payload_type(0),
            Some(CodecKind::Pcmu)
        );
        assert_eq!(
            CodecKind::from_static_payload_type(8),
            Some(CodecKind::Pcma)
        );
        assert_eq!(CodecKind::from_static_payload_type(9), None);
        assert_eq!(CodecKind::from_static_payload_type(111), None);
        assert_eq!(CodecKind::Pcmu.rtp_clock_rate(), 8000);
        assert_eq!(CodecKind::Pcma.rtp_clock_rate(), 8000);
        assert_eq!(CodecKind::Opus.rtp_clock_rate(), 48_000);
        assert_eq!(CodecKind::Opus.rtpmap(), "opus/48000/2");
    }

    #[test]
    fn encoding_names_are_case_insensitive() {
        assert_eq!(CodecKind::from_encoding_name("pcmu"), Some(CodecKind::Pcmu));
        assert_eq!(CodecKind::from_encoding_name("PCMA"), Some(CodecKind::Pcma));
        assert_eq!(CodecKind::from_encoding_name("OPUS"), Some(CodecKind::Opus));
        assert_eq!(CodecKind::from_encoding_name("G722"), None);
    }

    #[test]
    fn rtp_ticks_use_the_codec_clock() {
        // 20 ms of Opus decoded at 16 kHz advances the RTP clock by 960.
        assert_eq!(CodecKind::Opus.rtp_ticks(320, 16_000), 960);
        assert_eq!(CodecKind::Opus.rtp_ticks(160, 8000), 960);
        assert_eq!(CodecKind::Pcmu.rtp_ticks(160, 8000), 160);
        assert_eq!(CodecKind::Pcmu.rtp_ticks(160, 0), 0);
    }

    #[test]
    fn constructors_check_rates() {
        assert_eq!(
            decoder(CodecKind::Pcmu, 16_000).err(),
            Some(CodecError::UnsupportedRate {
                kind: CodecKind::Pcmu,
                rate: 16_000
            })
        );
        assert!(decoder(CodecKind::Opus, 44_100).is_err());
        assert!(encoder(CodecKind::Opus, 44_100).is_err());
        for (kind, rate) in [
            (CodecKind::Pcmu, 8000),
            (CodecKind::Pcma, 8000),
            (CodecKind::Opus, 8000),
            (CodecKind::Opus, 16_000),
            (CodecKind::Opus, 48_000),
        ] {
            let d = decoder(kind, rate).unwrap();
            let e = encoder(kind, rate).unwrap();
            assert_eq!((d.kind(), d.sample_rate()), (kind, rate));
            assert_eq!((e.kind(), e.sample_rate()), (kind, rate));
            assert_eq!(d.frame_samples(), rate as usize / 50);
            assert_eq!(e.frame_samples(), rate as usize / 50);
        }
    }

    #[test]
    fn empty_payload_is_an_error() {
        for (kind, rate) in [(CodecKind::Pcmu, 8000), (CodecKind::Opus, 16_000)] {
            let mut d = decoder(kind, rate).unwrap();
            let mut out = Vec::new();
            assert_eq!(d.decode(&[], &mut out), Err(CodecError::EmptyPayload));
            assert!(out.is_empty());
        }
    }
}
