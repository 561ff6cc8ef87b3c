//! espeak-ng: the robotic but dependable offline voice, and the fallback
//! when the Piper voice cannot load ([`local_tts`]).
//!
//! Each segment is spoken by one `espeak-ng --stdout` process, which reads
//! the text on stdin (so no text is ever taken for an option) and writes a
//! WAV stream as it synthesizes clause by clause; the audio is forwarded in
//! chunks as it arrives. Dropping the audio receiver kills the process.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::{Semaphore, mpsc};

use super::piper::{PiperConfig, PiperTts};
use super::provider::{
    PcmChunk, ProviderError, STREAM_CAPACITY, Tts, TtsEvent, TtsOptions, TtsStream,
};

/// The name in logs, metrics and [`ProviderError`]s.
const NAME: &str = "espeak";

/// Most stderr kept for an error message.
const STDERR_LIMIT: usize = 4096;

/// Settings of the espeak-ng voice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EspeakConfig {
    /// The espeak-ng voice (`espeak-ng --voices` lists them; `+f3` style
    /// variants are allowed), used when a stream asks for no voice or
    /// language it knows.
    pub voice: String,
    /// Speaking rate in words per minute (80 to 450).
    pub rate_wpm: u32,
    /// espeak-ng processes running at once, across all calls.
    pub max_concurrent: usize,
    /// Length of the audio chunks sent, in milliseconds (10 to 200).
    pub chunk_ms: u32,
    /// The espeak-ng program.
    pub espeak_ng: PathBuf,
}

impl Default for EspeakConfig {
    fn default() -> Self {
        EspeakConfig {
            voice: "en-us".into(),
            rate_wpm: 165,
            max_concurrent: 4,
            chunk_ms: 40,
            espeak_ng: PathBuf::from("espeak-ng"),
        }
    }
}

/// The local voice to use: Piper when its model and runtime load,
/// otherwise espeak-ng, with one warning saying why. Blocks while the Piper
/// model loads (about a second): call it at start-up.
pub fn local_tts(piper: &PiperConfig, espeak: &EspeakConfig) -> Arc<dyn Tts> {
    match PiperTts::new(piper) {
        Ok(tts) => {
            tracing::info!(voice = tts.voice(), "local TTS: Piper");
            Arc::new(tts)
        }
        Err(e) => {
            tracing::warn!(error = %e, "local TTS: the Piper voice is unavailable, using espeak-ng");
            Arc::new(EspeakTts::new(espeak))
        }
    }
}

#[derive(Debug)]
struct Shared {
    program: PathBuf,
    voice: String,
    rate_wpm: u32,
    chunk_ms: u32,
    permits: Arc<Semaphore>,
    /// Voice names espeak-ng knows (lower case), for vetting
    /// [`TtsOptions::voice`]; empty when it could not be asked.
    known: Vec<String>,
}

/// Text-to-speech with espeak-ng. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EspeakTts {
    shared: Arc<Shared>,
}

impl EspeakTts {
    /// A voice with `config`'s settings, clamped to their ranges. Runs
    /// `espeak-ng --voices` once (a few milliseconds) to learn the voice
    /// names; when espeak-ng cannot run, this still succeeds and every
    /// stream reports the failure.
    pub fn new(config: &EspeakConfig) -> EspeakTts {
        let known = list_voices(&config.espeak_ng);
        let mut voice = config.voice.clone();
        if !known.is_empty() && !is_known(&known, &voice) {
            tracing::warn!(voice = %voice, "espeak-ng has no such voice; using en-us");
            voice = "en-us".into();
        }
        EspeakTts {
            shared: Arc::new(Shared {
                program: config.espeak_ng.clone(),
                voice,
                rate_wpm: config.rate_wpm.clamp(80, 450),
                chunk_ms: config.chunk_ms.clamp(10, 200),
                permits: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
                known,
            }),
        }
    }

    /// The voice a stream with `options` speaks with: the requested voice
    /// or language when espeak-ng has it, else the configured one.
    fn voice_for(&self, options: &TtsOptions) -> String {
        let known = &self.shared.known;
        for wanted in [&options.voice, &options.language].into_iter().flatten() {
            let wanted = wanted.to_ascii_lowercase();
            if is_known(known, &wanted) {
                return wanted;
            }
        }
        self.shared.voice.clone()
    }
}

/// The names `espeak-ng --voices` lists: each voice's language code and
/// file name (`en-us`, `gmw/en-us`, `en-us`'s file `en-US`).
fn list_voices(program: &std::path::Path) -> Vec<String> {
    let out = match std::process::Command::new(program)
        .arg("--voices")
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            tracing::warn!(status = %o.status, "espeak-ng --voices failed");
            return Vec::new();
        }
        Err(e) => {
            tracing::warn!(program = %program.display(), error = %e, "cannot run espeak-ng");
            return Vec::new();
        }
    };
    let mut names = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // Pty Language Age/Gender VoiceName File [Other languages]
        if cols.len() >= 5 {
            names.push(cols[1].to_ascii_lowercase());
            names.push(cols[4].to_ascii_lowercase());
            if let Some((_, base)) = cols[4].rsplit_once('/') {
                names.push(base.to_ascii_lowercase());
            }
        }
    }
    names
}

/// True when `voice` (optionally with a `+variant`) is one of `known` and
/// safe to pass as an argument.
fn is_known(known: &[String], voice: &str) -> bool {
    let plain = |s: &str| {
        !s.is_empty()
            && !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_/+".contains(c))
    };
    let base = voice.split('+').next().unwrap_or_default();
    plain(voice) && known.iter().any(|k| k.eq_ignore_ascii_case(base))
}

impl Tts for EspeakTts {
    fn start(&self, options: &TtsOptions) -> TtsStream {
        let (text_tx, text_rx) = mpsc::channel(STREAM_CAPACITY);
        let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
        let voice = self.voice_for(options);
        tokio::spawn(run(self.shared.clone(), voice, text_rx, tx));
        TtsStream {
            text: text_tx,
            audio: rx,
        }
    }

    fn name(&self) -> &str {
        NAME
    }
}

/// Speaks each segment of `text` in turn.
async fn run(
    shared: Arc<Shared>,
    voice: String,
    mut text: mpsc::Receiver<String>,
    tx: mpsc::Sender<TtsEvent>,
) {
    let mut segment = 0;
    loop {
        let next = tokio::select! {
            t = text.recv() => t,
            _ = tx.closed() => return,
        };
        let Some(next) = next else { return };
        match speak(&shared, &voice, segment, &next, &tx).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                let _ = tx.send(TtsEvent::Error(e)).await;
                return;
            }
        }
        if tx.send(TtsEvent::SegmentDone { segment }).await.is_err() {
            return;
        }
        segment += 1;
    }
}

/// Kills and reaps the child unless it was waited for.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.start_kill();
            // Reap it now rather than whenever tokio's orphan queue is next
            // drained. (Without a runtime, as at shutdown, dropping the
            // child leaves it to that queue.)
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = child.wait().await;
                });
            }
        }
    }
}

/// Speaks one segment onto `tx`. `Ok(false)` when the receiver is gone.
async fn speak(
    shared: &Shared,
    voice: &str,
    segment: usize,
    text: &str,
    tx: &mpsc::Sender<TtsEvent>,
) -> Result<bool, ProviderError> {
    let err = |m: String| ProviderError::new(NAME, m, false);
    // Line breaks are kept (espeak-ng pauses on them); other control
    // characters are noise.
    let text: String = text
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect();
    if !text.chars().any(char::is_alphanumeric) {
        return Ok(true);
    }
    let _permit = tokio::select! {
        p = shared.permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        _ = tx.closed() => return Ok(false),
    };
    let mut child = Command::new(&shared.program)
        // -b 1: the input is UTF-8, whatever the locale.
        .args(["--stdout", "-b", "1", "-v", voice, "-s"])
        .arg(shared.rate_wpm.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| err(format!("cannot run {}: {e}", shared.program.display())))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let mut reaper = Reaper(Some(child));

    // espeak-ng may start writing audio before it has read all the text:
    // feed it from a task of its own so neither pipe can fill up and stall.
    let feeder = tokio::spawn(async move {
        let _ = stdin.write_all(text.as_bytes()).await;
    });
    let errors = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = (&mut stderr)
            .take(STDERR_LIMIT as u64)
            .read_to_end(&mut buf)
            .await;
        // Drain the rest so espeak-ng never blocks on a full stderr.
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        String::from_utf8_lossy(&buf).trim().to_owned()
    });

    let mut wav = WavStream::default();
    let mut buf = vec![0u8; 8192];
    let mut sent_audio = false;
    loop {
        let n = tokio::select! {
            r = stdout.read(&mut buf) => r.map_err(|e| err(format!("reading espeak-ng: {e}")))?,
            _ = tx.closed() => {
                feeder.abort();
                errors.abort();
                return Ok(false);
            }
        };
        if n == 0 {
            break;
        }
        wav.push(&buf[..n]).map_err(|m| err(m.into()))?;
        if let Some(rate) = wav.rate {
            let chunk_len = (rate as usize * shared.chunk_ms as usize / 1000).max(1);
            while let Some(samples) = wav.take(chunk_len) {
                sent_audio = true;
                let chunk = PcmChunk { rate, samples };
                if tx.send(TtsEvent::Audio { segment, chunk }).await.is_err() {
                    return Ok(false);
                }
            }
        }
    }
    let rest = wav.take_rest();
    let mut child = reaper.0.take().expect("the child is still ours");
    let status = child
        .wait()
        .await
        .map_err(|e| err(format!("waiting for espeak-ng: {e}")))?;
    let stderr = errors.await.unwrap_or_default();
    feeder.abort();
    if let (Some(rate), false) = (wav.rate, rest.is_empty()) {
        sent_audio = true;
        let chunk = PcmChunk {
            rate,
            samples: rest,
        };
        if tx.send(TtsEvent::Audio { segment, chunk }).await.is_err() {
            return Ok(false);
        }
    }
    if !status.success() || (!sent_audio && !stderr.is_empty()) {
        return Err(err(format!("espeak-ng failed ({status}): {stderr}")));
    }
    if !stderr.is_empty() {
        tracing::warn!(voice, stderr = %stderr, "espeak-ng complained");
    }
    Ok(true)
}

/// Incremental reader of the WAV stream `espeak-ng --stdout` writes: a
/// RIFF header whose sizes are placeholders (the length is not known when
/// it is written), then 16-bit mono PCM until the end of the stream.
#[derive(Debug, Default)]
struct WavStream {
    /// Bytes not consumed yet: the header until it is complete, then
    /// sample bytes.
    pending: Vec<u8>,
    /// Set once the header is read.
    rate: Option<u32>,
}

impl WavStream {
    /// Adds bytes from the stream.
    fn push(&mut self, bytes: &[u8]) -> Result<(), &'static str> {
        self.pending.extend_from_slice(bytes);
        if self.rate.is_none() {
            self.parse_header()?;
        }
        Ok(())
    }

    /// Reads the header once it is all there; `Ok` with `rate` still unset
    /// means more bytes are needed.
    fn parse_header(&mut self) -> Result<(), &'static str> {
        let b = &self.pending;
        if b.len() < 12 {
            return Ok(());
        }
        if &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
            return Err("espeak-ng did not write a WAV stream");
        }
        let mut pos = 12;
        let mut rate = None;
        loop {
            if b.len() < pos + 8 {
                return Ok(());
            }
            let id = &b[pos..pos + 4];
            let size =
                u32::from_le_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]) as usize;
            let body = pos + 8;
            if id == b"data" {
                let rate = rate.ok_or("WAV data before its format")?;
                self.pending.drain(..body);
                self.rate = Some(rate);
                return Ok(());
            }
            if size > 1 << 16 {
                return Err("oversized WAV header chunk");
            }
            if b.len() < body + size {
                return Ok(());
            }
            if id == b"fmt " {
                let f = &b[body..body + size];
                if f.len() < 16 {
                    return Err("short WAV format chunk");
                }
                let tag = u16::from_le_bytes([f[0], f[1]]);
                let channels = u16::from_le_bytes([f[2], f[3]]);
                let bits = u16::from_le_bytes([f[14], f[15]]);
                if tag != 1 || channels != 1 || bits != 16 {
                    return Err("espeak-ng wrote audio that is not 16-bit mono PCM");
                }
                let r = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
                if !(4_000..=192_000).contains(&r) {
                    return Err("implausible WAV sample rate");
                }
                rate = Some(r);
            }
            pos = body + size + (size & 1);
        }
    }

    /// The next `n` samples, once there are that many.
    fn take(&mut self, n: usize) -> Option<Vec<i16>> {
        if self.rate.is_none() || self.pending.len() < n * 2 {
            return None;
        }
        Some(self.drain_samples(n))
    }

    /// Whatever whole samples are left (an odd trailing byte is dropped).
    fn take_rest(&mut self) -> Vec<i16> {
        if self.rate.is_none() {
            return Vec::new();
        }
        let n = self.pending.len() / 2;
        let samples = self.drain_samples(n);
        self.pending.clear();
        samples
    }

    fn drain_samples(&mut self, n: usize) -> Vec<i16> {
        let samples = self.pending[..n * 2]
            .chunks_exact(2)
            .map(|p| i16::from_le_bytes([p[0], p[1]]))
            .collect();
        self.pending.drain(..n * 2);
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(rate: u32) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
        h.extend_from_slice(b"WAVE");
        h.extend_from_slice(b"fmt ");
        h.extend_from_slice(&16u32.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&rate.to_le_bytes());
        h.extend_from_slice(&(rate * 2).to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(b"data");
        h.extend_from_slice(&0x7fff_ffdbu32.to_le_bytes());
        h
    }

    #[test]
    fn wav_stream_parses_a_header_split_anywhere() {
        let mut bytes = header(22_050);
        for s in [1i16, -2, 300, -32768, 32767] {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        bytes.push(0x55); // a trailing half sample
        for split in 0..bytes.len() {
            let mut w = WavStream::default();
            w.push(&bytes[..split]).unwrap();
            w.push(&bytes[split..]).unwrap();
            assert_eq!(w.rate, Some(22_050));
            assert_eq!(w.take(2), Some(vec![1, -2]));
            assert_eq!(w.take(4), None);
            assert_eq!(w.take_rest(), vec![300, -32768, 32767]);
            assert_eq!(w.take_rest(), Vec::<i16>::new());
        }
    }

    #[test]
    fn wav_stream_skips_unknown_chunks_and_refuses_other_formats() {
        let mut bytes = header(16_000);
        // Insert a LIST chunk of odd size (with its pad byte) before data.
        let data_at = bytes.len() - 8;
        let list = [b"LIST".as_slice(), &3u32.to_le_bytes(), b"abc\0"].concat();
        bytes.splice(data_at..data_at, list);
        let mut w = WavStream::default();
        w.push(&bytes).unwrap();
        assert_eq!(w.rate, Some(16_000));

        let mut w = WavStream::default();
        assert!(w.push(b"ID3\x04 not a wav at all").is_err());
        let mut stereo = header(8_000);
        stereo[22] = 2;
        assert!(WavStream::default().push(&stereo).is_err());
        // Data before any format chunk.
        let mut w = WavStream::default();
        let mut b = b"RIFF\0\0\0\0WAVEdata".to_vec();
        b.extend_from_slice(&[0; 8]);
        assert!(w.push(&b).is_err());
    }

    #[test]
    fn voice_names_are_vetted() {
        let known: Vec<String> = ["en-us", "gmw/en-us", "en-us", "fr-fr"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(is_known(&known, "en-us"));
        assert!(is_known(&known, "EN-US"));
        assert!(is_known(&known, "en-us+f3"));
        assert!(is_known(&known, "gmw/en-us"));
        assert!(!is_known(&known, "de"));
        assert!(!is_known(&known, "--stdout"));
        assert!(!is_known(&known, "en-us; rm"));
        assert!(!is_known(&known, ""));
    }

    #[test]
    fn the_installed_espeak_lists_en_us() {
        let known = list_voices(std::path::Path::new("espeak-ng"));
        assert!(is_known(&known, "en-us"), "{known:?}");
        let tts = EspeakTts::new(&EspeakConfig::default());
        let opts = |voice: Option<&str>, language: Option<&str>| TtsOptions {
            voice: voice.map(Into::into),
            language: language.map(Into::into),
        };
        assert_eq!(tts.voice_for(&opts(None, None)), "en-us");
        assert_eq!(tts.voice_for(&opts(None, Some("en-GB"))), "en-gb");
        assert_eq!(
            tts.voice_for(&opts(Some("en_US-joe-medium"), None)),
            "en-us"
        );
        assert_eq!(tts.voice_for(&opts(Some("fr-fr"), Some("en"))), "fr-fr");
    }
}
