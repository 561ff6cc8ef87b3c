//! The embedded Whisper STT and the Silero speech confirmer on real speech
//! (espeak-ng, resampled to 16 kHz by sox) and on silence, noise and tones.
//!
//! Needs the local models (`scripts/models`) and espeak-ng and sox
//! (`scripts/deps`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use hotline::agent::silero::{SileroConfig, SpeechConfirmer};
use hotline::agent::whisper::{WhisperConfig, WhisperStt};
use hotline::agent::{Stt, SttEvent, SttOptions, SttStream, Transcript};

const RATE: usize = 16_000;

fn models_dir() -> PathBuf {
    let dir = std::env::var_os("HOTLINE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/models")));
    for f in [
        "whisper/ggml-tiny.en-q8_0.bin",
        "silero/ggml-silero-v6.2.0.bin",
    ] {
        assert!(
            dir.join(f).is_file(),
            "{} is missing: run `scripts/models` (or set HOTLINE_MODELS_DIR)",
            dir.join(f).display()
        );
    }
    dir
}

fn whisper_config() -> WhisperConfig {
    WhisperConfig {
        models_dir: models_dir(),
        ..WhisperConfig::default()
    }
}

fn whisper() -> WhisperStt {
    WhisperStt::new(&whisper_config()).expect("whisper loads")
}

fn confirmer() -> SpeechConfirmer {
    SpeechConfirmer::new(&SileroConfig {
        models_dir: models_dir(),
        ..SileroConfig::default()
    })
    .expect("silero loads")
}

/// `text` spoken by espeak-ng (American English, 150 words a minute) as
/// 16 kHz mono PCM.
fn speak(text: &str) -> Vec<i16> {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.wav");
    let out = dir.path().join("16k.wav");
    let ok = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("espeak-ng runs (scripts/deps installs it)");
    assert!(ok.success());
    let ok = Command::new("sox")
        .arg(&raw)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(&out)
        .status()
        .expect("sox runs (scripts/deps installs it)");
    assert!(ok.success());
    let wav = hotline_media::wav::read_wav(&std::fs::read(out).unwrap()).unwrap();
    assert_eq!(wav.format.sample_rate, 16_000);
    wav.to_mono()
}

/// Deterministic white noise at `amplitude` peak.
fn noise(secs: f64, amplitude: f64) -> Vec<i16> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..(secs * RATE as f64) as usize)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            ((u * 2.0 - 1.0) * amplitude) as i16
        })
        .collect()
}

fn tone(freq: f64, secs: f64, amplitude: f64) -> Vec<i16> {
    (0..(secs * RATE as f64) as usize)
        .map(|n| {
            (amplitude * (2.0 * std::f64::consts::PI * freq * n as f64 / RATE as f64).sin()) as i16
        })
        .collect()
}

/// Words, lower case, without punctuation.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Sends `pcm` in 20 ms frames, `pace` apart, then ends the utterance.
async fn send(audio: tokio::sync::mpsc::Sender<Vec<i16>>, pcm: Vec<i16>, pace: Duration) {
    for frame in pcm.chunks(RATE / 50) {
        if audio.send(frame.to_vec()).await.is_err() {
            return;
        }
        if !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
    }
}

/// Every event of a stream fed `pcm`, until it closes.
async fn transcribe(stt: &WhisperStt, pcm: Vec<i16>, partials: bool, pace: Duration) -> Vec<SttEvent> {
    let SttStream { audio, mut events } = stt.start(&SttOptions {
        language: None,
        partials,
    });
    let feeder = tokio::spawn(send(audio, pcm, pace));
    let mut out = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(120), events.recv())
        .await
        .expect("the stream answers")
    {
        out.push(ev);
    }
    feeder.await.unwrap();
    out
}

fn the_final(events: &[SttEvent]) -> Transcript {
    let finals: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Final(t) => Some(t.clone()),
            SttEvent::Error(e) => panic!("{e}"),
            SttEvent::Partial(_) => None,
        })
        .collect();
    assert_eq!(finals.len(), 1, "{events:?}");
    assert!(matches!(events.last(), Some(SttEvent::Final(_))), "{events:?}");
    finals[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe() {
    let c = confirmer();
    let stt = {
        let mut cfg = whisper_config();
        cfg.speech_gate = false;
        WhisperStt::new(&cfg).unwrap()
    };
    let speech = speak("Hello, my name is John Smith and I would like to leave a message about my order");
    let cases: Vec<(&str, Vec<i16>)> = vec![
        ("speech", speech.clone()),
        ("speech 300ms", speech[..RATE * 3 / 10].to_vec()),
        ("speech 500ms", speech[..RATE / 2].to_vec()),
        ("silence", vec![0; RATE * 3]),
        ("noise -20", noise(3.0, 3000.0)),
        ("noise -6", noise(3.0, 16000.0)),
        ("noise full", noise(3.0, 32000.0)),
        ("tone 1k -3", tone(1000.0, 3.0, 23000.0)),
        ("tone 440 -3", tone(440.0, 3.0, 23000.0)),
        ("tone 200 -1", tone(200.0, 0.5, 29000.0)),
    ];
    for (name, pcm) in cases {
        let v = c.confirm(&pcm[..pcm.len().min(RATE / 2)]).await.unwrap();
        let t = std::time::Instant::now();
        let ev = transcribe(&stt, pcm, false, Duration::ZERO).await;
        println!("{name}: {v:?} whisper {:?} in {:?}", ev, t.elapsed());
    }
}
