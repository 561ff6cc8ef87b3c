//! Opus (RFC 6716) for voice: mono, 20 ms frames, at 8, 12, 16, 24 or
//! 48 kHz.
//!
//! This goes through the `opus` crate 0.4, which is maintained and bundles
//! libopus 1.6. (`audiopus`, the other common binding, is abandoned and
//! stuck on an old libopus, so it is not used.) Concealment and in-band FEC
//! are libopus' own: a lost packet is decoded as a missing packet, and the
//! LBRR copy carried in the following packet is decoded with `decode_fec`.

use ::opus::{Application, Bitrate, Channels, Signal};

use super::{AudioDecoder, AudioEncoder, CodecError, CodecKind};

/// The rates libopus encodes and decodes at.
const RATES: [u32; 5] = [8000, 12_000, 16_000, 24_000, 48_000];

/// libopus' recommended output buffer for one packet: enough for any frame
/// duration at any bitrate.
const MAX_PACKET: usize = 4000;

fn check_rate(rate: u32) -> Result<(), CodecError> {
    if RATES.contains(&rate) {
        Ok(())
    } else {
        Err(CodecError::UnsupportedRate {
            kind: CodecKind::Opus,
            rate,
        })
    }
}

/// Whether `samples` at `rate` is a whole number of 2.5 ms units, which is
/// all libopus accepts for concealment and FEC.
fn check_quantum(samples: usize, rate: u32) -> Result<(), CodecError> {
    if samples.is_multiple_of(rate as usize / 400) {
        Ok(())
    } else {
        Err(CodecError::FrameSize { samples, rate })
    }
}

/// Encoder settings. The defaults suit a phone call: 24 kb/s VBR,
/// complexity 5, in-band FEC on for 5 % expected loss, DTX off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusConfig {
    /// Target bitrate in bits per second (libopus accepts 500–512 000).
    pub bitrate: u32,
    /// Encoder effort, 0 (cheapest) to 10 (best). 5 is a fair trade when
    /// one core carries many calls.
    pub complexity: u8,
    /// Variable bitrate. With `false` every 20 ms packet has exactly
    /// `bitrate / 400` bytes.
    pub vbr: bool,
    /// Carry a low-bitrate copy of each frame in the next packet (LBRR),
    /// so the receiver can rebuild a single lost packet.
    pub inband_fec: bool,
    /// Discontinuous transmission: during silence the encoder emits tiny
    /// packets (≤ 2 bytes) that need not be sent, about one per 400 ms.
    pub dtx: bool,
    /// Expected packet loss in percent, 0–100. Higher values make the
    /// encoder spend more bits on FEC and less on prediction.
    pub expected_loss_percent: u8,
}

impl Default for OpusConfig {
    fn default() -> Self {
        OpusConfig {
            bitrate: 24_000,
            complexity: 5,
            vbr: true,
            inband_fec: true,
            dtx: false,
            expected_loss_percent: 5,
        }
    }
}

/// An Opus encoder configured for VoIP.
#[derive(Debug)]
pub struct OpusEncoder {
    inner: ::opus::Encoder,
    rate: u32,
    config: OpusConfig,
    lookahead: usize,
}

impl OpusEncoder {
    /// An encoder taking mono PCM at `rate` Hz with `config`.
    pub fn new(rate: u32, config: OpusConfig) -> Result<Self, CodecError> {
        check_rate(rate)?;
        let mut inner = ::opus::Encoder::new(rate, Channels::Mono, Application::Voip)?;
        inner.set_signal(Signal::Voice)?;
        let mut enc = OpusEncoder {
            inner,
            rate,
            config,
            lookahead: 0,
        };
        enc.apply(config)?;
        let lookahead = enc.inner.get_lookahead()?;
        enc.lookahead = usize::try_from(lookahead).unwrap_or(0);
        Ok(enc)
    }

    fn apply(&mut self, c: OpusConfig) -> Result<(), CodecError> {
        let bitrate = i32::try_from(c.bitrate).unwrap_or(i32::MAX);
        self.inner.set_bitrate(Bitrate::Bits(bitrate))?;
        self.inner.set_complexity(c.complexity.into())?;
        self.inner.set_vbr(c.vbr)?;
        self.inner.set_inband_fec(c.inband_fec)?;
        self.inner.set_dtx(c.dtx)?;
        self.inner
            .set_packet_loss_perc(c.expected_loss_percent.into())?;
        self.config = c;
        Ok(())
    }

    /// Changes the settings mid-stream, e.g. lowering the bitrate or
    /// raising the expected loss when RTCP reports congestion.
    pub fn set_config(&mut self, config: OpusConfig) -> Result<(), CodecError> {
        self.apply(config)
    }

    /// The current settings.
    pub fn config(&self) -> OpusConfig {
        self.config
    }

    /// Encoder look-ahead in samples at the encoder's rate: how far the
    /// decoded audio lags the input.
    pub fn lookahead(&self) -> usize {
        self.lookahead
    }

    /// Whether the last frame was encoded as DTX silence, i.e. its packet
    /// may be withheld.
    pub fn in_dtx(&mut self) -> bool {
        self.inner.get_in_dtx().unwrap_or(false)
    }
}

impl AudioEncoder for OpusEncoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Encodes one Opus frame; `pcm` must last 2.5, 5, 10, 20, 40, 60, 80,
    /// 100 or 120 ms.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        let quanta = pcm.len() * 400 / self.rate as usize;
        let valid = (pcm.len() * 400).is_multiple_of(self.rate as usize)
            && matches!(quanta, 1 | 2 | 4 | 8 | 16 | 24 | 32 | 40 | 48);
        if !valid {
            return Err(CodecError::FrameSize {
                samples: pcm.len(),
                rate: self.rate,
            });
        }
        let inner = &mut self.inner;
        append_with(out, MAX_PACKET, |buf| inner.encode(pcm, buf))
    }

    fn reset(&mut self) {
        // Only fails on a destroyed encoder, which ownership rules out.
        let _ = self.inner.reset_state();
    }
}

/// An Opus decoder producing mono PCM, with libopus concealment and FEC.
#[derive(Debug)]
pub struct OpusDecoder {
    inner: ::opus::Decoder,
    rate: u32,
}

impl OpusDecoder {
    /// A decoder producing mono PCM at `rate` Hz. Any Opus stream decodes
    /// at any of these rates; libopus resamples internally.
    pub fn new(rate: u32) -> Result<Self, CodecError> {
        check_rate(rate)?;
        Ok(OpusDecoder {
            inner: ::opus::Decoder::new(rate, Channels::Mono)?,
            rate,
        })
    }

    /// Runs libopus on `payload` (empty for concealment) into `samples`
    /// new samples of `out`, undoing the append on error.
    fn run(
        &mut self,
        payload: &[u8],
        samples: usize,
        fec: bool,
        out: &mut Vec<i16>,
    ) -> Result<usize, CodecError> {
        let inner = &mut self.inner;
        append_with(out, samples, |buf| inner.decode(payload, buf, fec))
    }
}

/// Lets libopus write up to `room` new elements at the end of `out`, then
/// keeps the `n` it reports, or none on error: a failed call leaves `out`
/// as it was.
fn append_with<T: Copy + Default>(
    out: &mut Vec<T>,
    room: usize,
    call: impl FnOnce(&mut [T]) -> Result<usize, ::opus::Error>,
) -> Result<usize, CodecError> {
    let start = out.len();
    out.resize(start + room, T::default());
    match call(&mut out[start..]) {
        Ok(n) => {
            out.truncate(start + n);
            Ok(n)
        }
        Err(e) => {
            out.truncate(start);
            Err(e.into())
        }
    }
}

impl AudioDecoder for OpusDecoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn payload_samples(&self, payload: &[u8]) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        match ::opus::packet::get_nb_samples(payload, self.rate)? {
            // A code 3 packet may claim zero frames; libopus counts it
            // without complaint but it is invalid (RFC 6716 §3.2.5).
            0 => Err(CodecError::Opus {
                function: "opus_packet_get_nb_samples",
                code: ::opus::ErrorCode::InvalidPacket,
            }),
            n => Ok(n),
        }
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        // An empty slice would mean "conceal" to libopus; keep that explicit.
        let samples = self.payload_samples(payload)?;
        self.run(payload, samples, false, out)
    }

    /// libopus concealment; `samples` must be a multiple of 2.5 ms.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if samples == 0 {
            return Ok(0);
        }
        check_quantum(samples, self.rate)?;
        self.run(&[], samples, false, out)
    }

    /// Rebuilds the `samples` before `next_payload` from its LBRR data.
    /// libopus conceals whatever the LBRR does not cover (all of it when
    /// the sender did not enable FEC). `samples` must be a multiple of
    /// 2.5 ms.
    fn decode_fec(
        &mut self,
        next_payload: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<usize, CodecError> {
        if next_payload.is_empty() {
            return self.conceal(samples, out);
        }
        if samples == 0 {
            return Ok(0);
        }
        check_quantum(samples, self.rate)?;
        // Validate first: libopus falls back to concealment for some
        // malformed packets in FEC mode instead of reporting them.
        self.payload_samples(next_payload)?;
        self.run(next_payload, samples, true, out)
    }

    fn reset(&mut self) {
        let _ = self.inner.reset_state();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_rates_and_frame_sizes() {
        assert!(OpusDecoder::new(44_100).is_err());
        assert!(OpusEncoder::new(11_025, OpusConfig::default()).is_err());
        let mut e = OpusEncoder::new(16_000, OpusConfig::default()).unwrap();
        let mut out = vec![1, 2, 3];
        assert_eq!(
            e.encode(&[0; 300], &mut out),
            Err(CodecError::FrameSize {
                samples: 300,
                rate: 16_000
            })
        );
        assert_eq!(out, [1, 2, 3]);
        for ms10 in [25, 50, 100, 200, 400, 600] {
            let n = 16 * ms10 / 10;
            assert!(e.encode(&vec![0; n], &mut out).is_ok(), "{ms10}");
        }
        let mut d = OpusDecoder::new(16_000).unwrap();
        assert!(matches!(
            d.conceal(100, &mut out_pcm()),
            Err(CodecError::FrameSize { .. })
        ));
    }

    fn out_pcm() -> Vec<i16> {
        Vec::new()
    }

    #[test]
    fn bad_config_is_an_error() {
        let c = OpusConfig {
            complexity: 11,
            ..OpusConfig::default()
        };
        assert!(matches!(
            OpusEncoder::new(48_000, c),
            Err(CodecError::Opus { .. })
        ));
    }

    #[test]
    fn lookahead_is_reported() {
        let e = OpusEncoder::new(48_000, OpusConfig::default()).unwrap();
        // 2.5 ms of CELT overlap plus 4 ms of SILK delay compensation.
        assert_eq!(e.lookahead(), 312);
    }
}
