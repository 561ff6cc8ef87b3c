//! Symphonia: probe the container, decode the first audio track, downmix.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use super::PromptError;

/// Decoded audio before rate conversion.
pub(super) struct Mono {
    /// Mono samples, nominally within ±1.0.
    pub samples: Vec<f32>,
    pub rate: u32,
    pub channels: usize,
}

/// Adapts a caller's `Read + Seek` to symphonia's `MediaSource`, which also
/// wants to know the length up front (to find trailing ID3/APE tags).
pub(super) struct SeekableSource<R> {
    inner: R,
    len: u64,
}

impl<R: Read + Seek> SeekableSource<R> {
    pub fn new(mut inner: R) -> std::io::Result<Self> {
        let pos = inner.stream_position()?;
        let len = inner.seek(SeekFrom::End(0))?;
        inner.seek(SeekFrom::Start(pos))?;
        Ok(Self { inner, len })
    }
}

impl<R: Read> Read for SeekableSource<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<R: Seek> Seek for SeekableSource<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl<R: Read + Seek + Send + Sync> MediaSource for SeekableSource<R> {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

/// Errors while probing the container: anything but a read failure means
/// the bytes are not a file we can read.
fn probe_error(e: SymError) -> PromptError {
    match e {
        SymError::IoError(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => PromptError::Io(e),
        other => PromptError::UnknownFormat(other.to_string()),
    }
}

/// Errors after the container was recognised.
fn stream_error(e: SymError) -> PromptError {
    match e {
        SymError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            PromptError::Corrupt("file is truncated".into())
        }
        SymError::IoError(e) => PromptError::Io(e),
        SymError::Unsupported(what) => PromptError::Unsupported(what.into()),
        other => PromptError::Corrupt(other.to_string()),
    }
}

pub(super) fn decode_mono<'s>(
    source: Box<dyn MediaSource + 's>,
    extension: Option<&str>,
    max_duration: Duration,
) -> Result<Mono, PromptError> {
    let mss = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = extension {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(probe_error)?;

    let track = format
        .default_track(TrackType::Audio)
        .ok_or(PromptError::NoAudioTrack)?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or(PromptError::NoAudioTrack)?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(stream_error)?;

    let mut out = Mono {
        samples: Vec::new(),
        rate: 0,
        channels: 0,
    };
    let mut interleaved: Vec<f32> = Vec::new();
    // Packets that fail to decode are skipped, as players do: a damaged MP3
    // frame should cost 26 ms of audio, not the whole prompt. A file where
    // nothing decodes is still reported as corrupt.
    let mut last_decode_error = None;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // A file cut short mid-packet: keep what decoded so far, the
            // same as a player would; the length check below still catches
            // files with nothing usable.
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            // Chained OGG streams: the first stream is the prompt.
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(stream_error(e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            Err(e @ (SymError::DecodeError(_) | SymError::IoError(_))) => {
                last_decode_error = Some(e);
                continue;
            }
            Err(e) => return Err(stream_error(e)),
        };
        if buf.frames() == 0 {
            continue;
        }
        let rate = buf.spec().rate();
        let channels = buf.spec().channels().count();
        if rate == 0 {
            return Err(PromptError::InvalidSourceRate("0 Hz".into()));
        }
        if channels == 0 {
            return Err(PromptError::Corrupt("audio with zero channels".into()));
        }
        if out.rate == 0 {
            out.rate = rate;
            out.channels = channels;
        } else if out.rate != rate {
            return Err(PromptError::InvalidSourceRate(format!(
                "changes from {} Hz to {rate} Hz mid-stream",
                out.rate
            )));
        }
        let limit = max_duration.as_secs_f64() * f64::from(rate);
        if (out.samples.len() + buf.frames()) as f64 > limit {
            return Err(PromptError::TooLong(max_duration));
        }
        buf.copy_to_vec_interleaved(&mut interleaved);
        let scale = 1.0 / channels as f32;
        out.samples.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
    }
    if let (true, Some(e)) = (out.samples.is_empty(), last_decode_error) {
        return Err(stream_error(e));
    }
    Ok(out)
}
