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
async fn transcribe(
    stt: &WhisperStt,
    pcm: Vec<i16>,
    partials: bool,
    pace: Duration,
) -> Vec<SttEvent> {
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
    assert!(
        matches!(events.last(), Some(SttEvent::Final(_))),
        "{events:?}"
    );
    finals[0].clone()
}

fn assert_has_words(text: &str, expected: &[&str]) {
    let got = words(text);
    for w in expected {
        assert!(got.iter().any(|g| g == w), "{w:?} missing from {text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentences_of_real_speech_are_transcribed() {
    let stt = whisper();
    let cases: [(&str, &[&str]); 3] = [
        (
            "Hello, my name is John Smith and I would like to leave a message about my order",
            &[
                "hello", "my", "name", "is", "john", "smith", "leave", "message", "about", "order",
            ],
        ),
        (
            "Can you tell me what time the store opens on Saturday?",
            &["tell", "what", "time", "store", "opens", "saturday"],
        ),
        (
            "Please call me back tomorrow morning.",
            &["please", "call", "back", "tomorrow", "morning"],
        ),
    ];
    for (text, keys) in cases {
        let pcm = speak(text);
        let audio_ms = (pcm.len() * 1000 / RATE) as u64;
        let events = transcribe(&stt, pcm, false, Duration::ZERO).await;
        let t = the_final(&events);
        assert_has_words(&t.text, keys);
        assert!(
            t.start_ms < t.end_ms && t.end_ms <= audio_ms,
            "{t:?} for {audio_ms} ms"
        );
        // Speech fills most of the clip: the span says so.
        assert!(
            t.end_ms - t.start_ms >= audio_ms / 2,
            "{t:?} for {audio_ms} ms"
        );
    }
    assert_eq!(stt.stats().completed, 3);
    assert_eq!(stt.stats().running, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_word_answer_shorter_than_a_second_is_transcribed() {
    let stt = whisper();
    let pcm = speak("Yes.");
    assert!(pcm.len() < RATE);
    let t = the_final(&transcribe(&stt, pcm, false, Duration::ZERO).await);
    assert_eq!(words(&t.text), ["yes"], "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partials_arrive_before_the_final_of_a_long_utterance() {
    let stt = whisper();
    let pcm = speak(
        "Good afternoon. I am calling about the invoice you sent last week, \
         the amount seems wrong, and I would like somebody from accounting to call me back.",
    );
    assert!(pcm.len() > 8 * RATE);
    // At the pace a call delivers it: partials are made while audio arrives.
    let events = transcribe(&stt, pcm, true, Duration::from_millis(20)).await;
    let t = the_final(&events);
    assert_has_words(&t.text, &["invoice", "amount", "wrong", "accounting"]);
    let partials: Vec<&Transcript> = events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Partial(p) => Some(p),
            _ => None,
        })
        .collect();
    assert!(!partials.is_empty(), "{events:?}");
    let final_words = words(&t.text);
    let mut last_end = 0;
    for p in &partials {
        assert!(!p.text.is_empty());
        // A partial is a guess at the audio so far: its span grows and
        // its words are mostly the final's.
        assert!(p.end_ms > last_end, "{partials:?}");
        last_end = p.end_ms;
        let w = words(&p.text);
        let known = w.iter().filter(|x| final_words.contains(x)).count();
        assert!(known * 2 >= w.len(), "{p:?} vs {t:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_noise_and_tones_give_empty_text_without_running_whisper() {
    let stt = whisper();
    let cases = [
        ("silence", vec![0i16; 3 * RATE]),
        ("white noise at -6 dBFS", noise(3.0, 16_000.0)),
        ("a 440 Hz tone at -3 dBFS", tone(440.0, 3.0, 23_000.0)),
    ];
    for (name, pcm) in cases {
        let t = the_final(&transcribe(&stt, pcm, false, Duration::ZERO).await);
        assert_eq!(t.text, "", "{name}: {t:?}");
        assert_eq!(t.end_ms, 3000, "{name}");
    }
    let stats = stt.stats();
    assert_eq!(stats.no_speech, 3, "{stats:?}");
    assert_eq!(stats.runs, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_gate_whisper_still_writes_nothing_over_silence_and_hiss() {
    let stt = WhisperStt::new(&WhisperConfig {
        speech_gate: false,
        ..whisper_config()
    })
    .unwrap();
    for (name, pcm) in [
        ("silence", vec![0i16; 3 * RATE]),
        ("white noise at -20 dBFS", noise(3.0, 3_000.0)),
    ] {
        let t = the_final(&transcribe(&stt, pcm, false, Duration::ZERO).await);
        assert_eq!(t.text, "", "{name}: {t:?}");
    }
    assert_eq!(stt.stats().runs, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_utterance_gives_one_empty_final() {
    let stt = whisper();
    let events = transcribe(&stt, Vec::new(), false, Duration::ZERO).await;
    assert_eq!(
        events,
        [SttEvent::Final(Transcript {
            text: String::new(),
            start_ms: 0,
            end_ms: 0
        })]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_beyond_the_utterance_cap_is_not_transcribed() {
    let stt = WhisperStt::new(&WhisperConfig {
        max_utterance_secs: 3,
        ..whisper_config()
    })
    .unwrap();
    let mut pcm = speak("My name is John Smith.");
    assert!(pcm.len() < 3 * RATE);
    pcm.resize(RATE * 7 / 2, 0);
    pcm.extend(speak("I would like some oranges."));
    let t = the_final(&transcribe(&stt, pcm, false, Duration::ZERO).await);
    assert_has_words(&t.text, &["john", "smith"]);
    assert!(!words(&t.text).contains(&"oranges".to_string()), "{t:?}");
    assert!(t.end_ms <= 3000, "{t:?}");
}

/// Waits until `stt` is running an inference.
async fn until_running(stt: &WhisperStt) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while stt.stats().running == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("an inference starts");
}

async fn until_idle(stt: &WhisperStt) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while stt.stats().running > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the inference ends");
}

/// Twenty seconds of speech: long enough that an inference is still
/// running when the test cancels it.
fn long_speech() -> Vec<i16> {
    let one = speak(
        "I am calling about the invoice you sent last week, the amount seems wrong, \
         and I would like somebody from accounting to call me back.",
    );
    let mut pcm = Vec::new();
    while pcm.len() < 20 * RATE {
        pcm.extend_from_slice(&one);
    }
    pcm.truncate(20 * RATE);
    pcm
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_receiver_stops_a_running_inference() {
    let stt = whisper();
    let SttStream { audio, events } = stt.start(&SttOptions::default());
    send(audio, long_speech(), Duration::ZERO).await;
    until_running(&stt).await;
    drop(events);
    until_idle(&stt).await;
    let stats = stt.stats();
    assert_eq!(stats.runs, 1, "{stats:?}");
    assert_eq!(stats.cancelled, 1, "{stats:?}");
    assert_eq!(stats.completed, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_nobody_reads_is_never_started() {
    // One worker: the second utterance has to wait for the first.
    let stt = whisper();
    let first = stt.start(&SttOptions::default());
    send(first.audio, long_speech(), Duration::ZERO).await;
    let mut first_events = first.events;
    until_running(&stt).await;

    let second = stt.start(&SttOptions::default());
    send(second.audio, speak("Please call me back."), Duration::ZERO).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(second.events);

    let t = match first_events.recv().await {
        Some(SttEvent::Final(t)) => t,
        other => panic!("{other:?}"),
    };
    assert_has_words(&t.text, &["invoice", "accounting"]);
    let third = transcribe(&stt, speak("Goodbye."), false, Duration::ZERO).await;
    assert_has_words(&the_final(&third).text, &["goodbye"]);
    let stats = stt.stats();
    // The first and the third ran; the second never did.
    assert_eq!(stats.runs, 2, "{stats:?}");
    assert_eq!(stats.completed, 2, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_language_on_an_english_model_is_a_clear_error() {
    let stt = whisper();
    let SttStream { audio, mut events } = stt.start(&SttOptions {
        language: Some("fr-FR".into()),
        partials: false,
    });
    match events.recv().await {
        Some(SttEvent::Error(e)) => {
            assert!(e.message.contains("English-only"), "{e}");
            assert!(!e.retryable);
        }
        other => panic!("{other:?}"),
    }
    assert!(events.recv().await.is_none());
    assert!(audio.send(vec![0; 320]).await.is_err());
    // English in any spelling is fine.
    let SttStream { audio, mut events } = stt.start(&SttOptions {
        language: Some("en-GB".into()),
        partials: false,
    });
    drop(audio);
    assert!(matches!(events.recv().await, Some(SttEvent::Final(_))));
}

#[test]
fn a_missing_model_is_a_clear_error_naming_scripts_models() {
    let err = WhisperStt::new(&WhisperConfig {
        models_dir: PathBuf::from("/nonexistent/models"),
        ..WhisperConfig::default()
    })
    .unwrap_err();
    assert!(err.message.contains("scripts/models"), "{err}");
    assert!(
        err.message.contains("/nonexistent/models/whisper/"),
        "{err}"
    );
    assert!(!err.retryable);

    // A file that is not a model is refused, not loaded.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("whisper")).unwrap();
    std::fs::write(
        dir.path().join("whisper/ggml-tiny.en-q8_0.bin"),
        b"not a model",
    )
    .unwrap();
    let err = WhisperStt::new(&WhisperConfig {
        models_dir: dir.path().to_owned(),
        speech_gate: false,
        ..WhisperConfig::default()
    })
    .unwrap_err();
    assert!(err.message.contains("cannot load Whisper model"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silero_tells_speech_from_noise_silence_and_loud_tones() {
    let c = confirmer();
    let speech = speak("Hello, I would like to speak to someone.");
    // What the pipeline hands over: the few hundred ms after an onset.
    for ms in [200, 300, 500] {
        let v = c.confirm(&speech[..RATE * ms / 1000]).await.unwrap();
        assert!(v.speech, "{ms} ms of speech: {v:?}");
        assert!(v.probability > 0.9, "{v:?}");
    }
    let mut knock = noise(0.05, 32_000.0);
    knock.resize(RATE / 2, 0);
    let not_speech = [
        ("silence", vec![0i16; RATE / 2]),
        ("white noise at -20 dBFS", noise(0.5, 3_000.0)),
        ("white noise at full scale", noise(0.5, 32_000.0)),
        ("a 1 kHz tone at -3 dBFS", tone(1000.0, 0.5, 23_000.0)),
        ("a 200 Hz tone at -1 dBFS", tone(200.0, 0.5, 29_000.0)),
        ("a loud knock", knock),
    ];
    for (name, pcm) in not_speech {
        let v = c.confirm(&pcm).await.unwrap();
        assert!(!v.speech, "{name}: {v:?}");
    }
    let v = c.confirm(&[]).await.unwrap();
    assert!(!v.speech);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silero_answers_many_checks_at_once_through_its_bounded_pool() {
    let c = confirmer();
    let speech = speak("Hello there.");
    let onset = speech[..RATE * 3 / 10].to_vec();
    let hiss = noise(0.3, 16_000.0);
    let checks = (0..12).map(|i| {
        let c = c.clone();
        let pcm = if i % 2 == 0 {
            onset.clone()
        } else {
            hiss.clone()
        };
        tokio::spawn(async move { (i, c.confirm(&pcm).await.unwrap()) })
    });
    for check in checks.collect::<Vec<_>>() {
        let (i, v) = check.await.unwrap();
        assert_eq!(v.speech, i % 2 == 0, "check {i}: {v:?}");
    }
}
