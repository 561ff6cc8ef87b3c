//! Streaming WAV writer: 16-bit PCM, μ-law or A-law, any channel count.

use super::WavError;
use crate::codec::g711::{Law, encode_slice};
use std::io::{Cursor, Seek, SeekFrom, Write};

/// What the writer stores per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleFormat {
    /// 16-bit signed little-endian linear PCM.
    Pcm16,
    /// G.711 μ-law, one byte per sample (format tag 7).
    MuLaw,
    /// G.711 A-law, one byte per sample (format tag 6).
    ALaw,
}

impl SampleFormat {
    fn bytes(self) -> u16 {
        match self {
            SampleFormat::Pcm16 => 2,
            SampleFormat::MuLaw | SampleFormat::ALaw => 1,
        }
    }
}

/// Layout of a file to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WavSpec {
    /// Frames per second.
    pub sample_rate: u32,
    /// Interleaved channels (1 = mono, 2 = stereo).
    pub channels: u16,
    /// Sample encoding.
    pub format: SampleFormat,
}

impl WavSpec {
    /// 16-bit PCM mono at `sample_rate`.
    pub fn mono(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            channels: 1,
            format: SampleFormat::Pcm16,
        }
    }

    /// 16-bit PCM stereo at `sample_rate`.
    pub fn stereo(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            channels: 2,
            format: SampleFormat::Pcm16,
        }
    }

    fn header_len(&self) -> u64 {
        match self.format {
            SampleFormat::Pcm16 => 44,
            // 18-byte fmt (cbSize = 0) and a fact chunk, which the WAVE
            // spec requires for every non-PCM format.
            SampleFormat::MuLaw | SampleFormat::ALaw => 58,
        }
    }
}

/// Placeholder sizes written until [`WavWriter::finish`] patches them. A
/// file whose writer never finished (crash, power loss) therefore reads as
/// "data runs to the end of the file", which [`read_wav`](super::read_wav)
/// and most other readers understand, rather than as an empty file.
const UNKNOWN_SIZE: u32 = u32::MAX;

/// Writes a WAV file incrementally to `W`, patching the sizes at the end.
///
/// The header is written on creation with placeholder sizes; samples are
/// appended as they arrive; [`finish`](Self::finish) seeks back to fill in
/// the RIFF, `fact` and `data` sizes. The file may start at any offset of
/// `W` (the current position on creation).
#[derive(Debug)]
pub struct WavWriter<W: Write + Seek> {
    inner: W,
    spec: WavSpec,
    start: u64,
    data_bytes: u64,
    /// Samples written so far, modulo the channel count, so `finish` can
    /// complete a partial frame.
    partial: u16,
    buf: Vec<u8>,
}

impl<W: Write + Seek> WavWriter<W> {
    /// Writes the header to `inner` at its current position.
    pub fn new(mut inner: W, spec: WavSpec) -> Result<Self, WavError> {
        if spec.channels == 0 {
            return Err(WavError::BadSpec("zero channels"));
        }
        if spec.sample_rate == 0 {
            return Err(WavError::BadSpec("zero sample rate"));
        }
        let align = u32::from(spec.channels) * u32::from(spec.format.bytes());
        let Ok(block_align) = u16::try_from(align) else {
            return Err(WavError::BadSpec("too many channels"));
        };
        let Some(byte_rate) = spec.sample_rate.checked_mul(align) else {
            return Err(WavError::BadSpec("sample rate too high"));
        };
        let start = inner.stream_position()?;
        let mut h = Vec::with_capacity(spec.header_len() as usize);
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&UNKNOWN_SIZE.to_le_bytes());
        h.extend_from_slice(b"WAVE");
        h.extend_from_slice(b"fmt ");
        let (tag, fmt_len): (u16, u32) = match spec.format {
            SampleFormat::Pcm16 => (1, 16),
            SampleFormat::ALaw => (6, 18),
            SampleFormat::MuLaw => (7, 18),
        };
        h.extend_from_slice(&fmt_len.to_le_bytes());
        h.extend_from_slice(&tag.to_le_bytes());
        h.extend_from_slice(&spec.channels.to_le_bytes());
        h.extend_from_slice(&spec.sample_rate.to_le_bytes());
        h.extend_from_slice(&byte_rate.to_le_bytes());
        h.extend_from_slice(&block_align.to_le_bytes());
        h.extend_from_slice(&(spec.format.bytes() * 8).to_le_bytes());
        if fmt_len == 18 {
            h.extend_from_slice(&0u16.to_le_bytes());
            h.extend_from_slice(b"fact");
            h.extend_from_slice(&4u32.to_le_bytes());
            h.extend_from_slice(&UNKNOWN_SIZE.to_le_bytes());
        }
        h.extend_from_slice(b"data");
        h.extend_from_slice(&UNKNOWN_SIZE.to_le_bytes());
        debug_assert_eq!(h.len() as u64, spec.header_len());
        inner.write_all(&h)?;
        Ok(Self {
            inner,
            spec,
            start,
            data_bytes: 0,
            partial: 0,
            buf: Vec::new(),
        })
    }

    /// The layout being written.
    pub fn spec(&self) -> WavSpec {
        self.spec
    }

    /// Whole frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.data_bytes / u64::from(self.spec.format.bytes()) / u64::from(self.spec.channels)
    }

    /// How many more whole frames fit under the 4 GiB RIFF limit.
    pub fn frames_remaining(&self) -> u64 {
        let frame = u64::from(self.spec.format.bytes()) * u64::from(self.spec.channels);
        self.max_data().saturating_sub(self.data_bytes) / frame
    }

    fn max_data(&self) -> u64 {
        // RIFF size = header - 8 + data + pad must fit in u32.
        u64::from(u32::MAX) - (self.spec.header_len() - 8) - 1
    }

    /// Appends interleaved samples. The slice need not hold whole frames:
    /// the next call continues where this one stopped. Does not allocate
    /// once the internal buffer has grown to the largest slice seen.
    ///
    /// Fails with [`WavError::TooLarge`] (writing nothing) if the data would
    /// pass the 4 GiB limit.
    pub fn write_samples(&mut self, samples: &[i16]) -> Result<(), WavError> {
        let n = samples.len() as u64 * u64::from(self.spec.format.bytes());
        if self.data_bytes + n > self.max_data() {
            return Err(WavError::TooLarge);
        }
        self.buf.clear();
        match self.spec.format {
            SampleFormat::Pcm16 => {
                for s in samples {
                    self.buf.extend_from_slice(&s.to_le_bytes());
                }
            }
            SampleFormat::MuLaw => encode_slice(Law::Mu, samples, &mut self.buf),
            SampleFormat::ALaw => encode_slice(Law::A, samples, &mut self.buf),
        }
        self.inner.write_all(&self.buf)?;
        self.data_bytes += n;
        let ch = u64::from(self.spec.channels);
        self.partial = ((u64::from(self.partial) + samples.len() as u64) % ch) as u16;
        Ok(())
    }

    /// Appends `frames` frames of digital silence.
    pub fn write_silence(&mut self, frames: u64) -> Result<(), WavError> {
        if frames > self.frames_remaining() {
            return Err(WavError::TooLarge);
        }
        const CHUNK: usize = 1024;
        let zeros = [0i16; CHUNK];
        let mut left = frames * u64::from(self.spec.channels);
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            self.write_samples(&zeros[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Completes a partial last frame with silence, pads odd-sized data,
    /// patches the sizes and returns the underlying writer, positioned at
    /// the end of the file.
    pub fn finish(mut self) -> Result<W, WavError> {
        if self.partial != 0 {
            let missing = usize::from(self.spec.channels - self.partial);
            let zeros = vec![0i16; missing];
            self.write_samples(&zeros)?;
        }
        if self.data_bytes % 2 == 1 {
            // RIFF chunks are word-aligned; the pad byte is not data.
            self.inner.write_all(&[0])?;
        }
        let end = self.inner.stream_position()?;
        let riff = (self.spec.header_len() - 8 + self.data_bytes + (self.data_bytes & 1)) as u32;
        let data = self.data_bytes as u32;
        self.inner.seek(SeekFrom::Start(self.start + 4))?;
        self.inner.write_all(&riff.to_le_bytes())?;
        if self.spec.format != SampleFormat::Pcm16 {
            // One byte per sample: the fact chunk holds frames per channel.
            let frames = self.frames_written() as u32;
            self.inner.seek(SeekFrom::Start(self.start + 46))?;
            self.inner.write_all(&frames.to_le_bytes())?;
        }
        self.inner
            .seek(SeekFrom::Start(self.start + self.spec.header_len() - 4))?;
        self.inner.write_all(&data.to_le_bytes())?;
        self.inner.seek(SeekFrom::Start(end))?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl WavWriter<Cursor<Vec<u8>>> {
    /// A writer into a growable in-memory buffer.
    pub fn in_memory(spec: WavSpec) -> Result<Self, WavError> {
        Self::new(Cursor::new(Vec::new()), spec)
    }

    /// [`finish`](Self::finish), returning the file's bytes.
    pub fn finish_to_vec(self) -> Result<Vec<u8>, WavError> {
        Ok(self.finish()?.into_inner())
    }
}

/// Encodes interleaved `samples` as a complete WAV file in memory.
pub fn encode_wav(spec: WavSpec, samples: &[i16]) -> Result<Vec<u8>, WavError> {
    let mut w = WavWriter::in_memory(spec)?;
    w.write_samples(samples)?;
    w.finish_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wav::read_wav;

    #[test]
    fn header_bytes_are_canonical() {
        let bytes = encode_wav(WavSpec::stereo(8000), &[1, 2, 3, 4]).unwrap();
        assert_eq!(bytes.len(), 44 + 8);
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 44);
        assert_eq!(&bytes[8..16], b"WAVEfmt ");
        assert_eq!(u32::from_le_bytes(bytes[16..20].try_into().unwrap()), 16);
        assert_eq!(u16::from_le_bytes([bytes[20], bytes[21]]), 1);
        assert_eq!(u16::from_le_bytes([bytes[22], bytes[23]]), 2);
        assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 8000);
        assert_eq!(u32::from_le_bytes(bytes[28..32].try_into().unwrap()), 32000);
        assert_eq!(u16::from_le_bytes([bytes[32], bytes[33]]), 4);
        assert_eq!(u16::from_le_bytes([bytes[34], bytes[35]]), 16);
        assert_eq!(&bytes[36..40], b"data");
        assert_eq!(u32::from_le_bytes(bytes[40..44].try_into().unwrap()), 8);
    }

    #[test]
    fn g711_files_are_padded_and_have_fact() {
        let bytes = encode_wav(
            WavSpec {
                sample_rate: 8000,
                channels: 1,
                format: SampleFormat::MuLaw,
            },
            &[0, 1000, -1000],
        )
        .unwrap();
        assert_eq!(bytes.len(), 58 + 3 + 1);
        assert_eq!(&bytes[38..42], b"fact");
        assert_eq!(u32::from_le_bytes(bytes[46..50].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(bytes[54..58].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 54);
        let w = read_wav(&bytes).unwrap();
        assert_eq!(w.samples.len(), 3);
        assert_eq!(w.samples[0], 0);
        assert!((i32::from(w.samples[1]) - 1000).abs() < 40);
    }

    #[test]
    fn g711_files_carry_exactly_the_rtp_codec_bytes() {
        // A recording in μ-law/A-law must hold the same codes the call's
        // RTP encoder would send, and read back as the RTP decoder plays them.
        use crate::codec::g711::decode_slice;
        let all: Vec<i16> = (i16::MIN..=i16::MAX).collect();
        for (format, law) in [(SampleFormat::MuLaw, Law::Mu), (SampleFormat::ALaw, Law::A)] {
            let spec = WavSpec {
                sample_rate: 8000,
                channels: 1,
                format,
            };
            let bytes = encode_wav(spec, &all).unwrap();
            let mut codes = Vec::new();
            encode_slice(law, &all, &mut codes);
            assert_eq!(&bytes[58..58 + codes.len()], &codes[..], "{format:?}");
            let mut want = Vec::new();
            decode_slice(law, &codes, &mut want);
            assert_eq!(read_wav(&bytes).unwrap().samples, want, "{format:?}");
        }
    }

    #[test]
    fn partial_frame_is_completed() {
        let mut w = WavWriter::in_memory(WavSpec::stereo(8000)).unwrap();
        w.write_samples(&[1, 2, 3]).unwrap();
        let wav = read_wav(&w.finish_to_vec().unwrap()).unwrap();
        assert_eq!(wav.samples, vec![1, 2, 3, 0]);
    }

    #[test]
    fn writes_at_an_offset() {
        let mut c = Cursor::new(b"prefix".to_vec());
        c.seek(SeekFrom::End(0)).unwrap();
        let mut w = WavWriter::new(c, WavSpec::mono(16000)).unwrap();
        w.write_samples(&[7, 8]).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        assert_eq!(&bytes[..6], b"prefix");
        assert_eq!(read_wav(&bytes[6..]).unwrap().samples, vec![7, 8]);
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(WavWriter::in_memory(WavSpec::mono(0)).is_err());
        let mut s = WavSpec::mono(8000);
        s.channels = 0;
        assert!(WavWriter::in_memory(s).is_err());
        s.channels = 40_000;
        assert!(WavWriter::in_memory(s).is_err());
    }

    #[test]
    fn unfinished_file_is_still_readable() {
        let mut w = WavWriter::in_memory(WavSpec::mono(8000)).unwrap();
        w.write_samples(&[1, 2, 3]).unwrap();
        // Dropped without finish: placeholder sizes.
        let bytes = w.inner.into_inner();
        let wav = read_wav(&bytes).unwrap();
        assert_eq!(wav.samples, vec![1, 2, 3]);
    }
}
