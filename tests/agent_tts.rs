//! The embedded offline voices: Piper (sherpa-onnx) and espeak-ng, through
//! the `Tts` trait the agent pipeline uses.
//!
//! Needs the models from `scripts/models` (in `data/models`, or where
//! `HOTLINE_MODELS_DIR` points) and espeak-ng from `scripts/deps`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hotline::agent::espeak::{EspeakConfig, EspeakTts, local_tts};
use hotline::agent::piper::{PiperConfig, PiperError, PiperTts};
use hotline::agent::{Tts, TtsEvent, TtsOptions, TtsStream};

const RATE: u32 = 22_050;

/// How long any one stream may take before the test gives up.
const DEADLINE: Duration = Duration::from_secs(120);

fn models_dir() -> PathBuf {
    let dir = std::env::var_os("HOTLINE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/models")));
    let voice = dir.join("piper/en_US-joe-medium/tokens.txt");
    assert!(
        voice.is_file(),
        "the Piper voice is not installed ({} is missing): run scripts/models",
        voice.display()
    );
    dir
}

fn piper_config() -> PiperConfig {
    PiperConfig {
        models_dir: models_dir(),
        ..Default::default()
    }
}

/// One voice for the tests that do not count its work; the model stays
/// loaded, so the others' `PiperTts::new` is cheap too.
fn piper() -> &'static PiperTts {
    static PIPER: OnceLock<PiperTts> = OnceLock::new();
    PIPER.get_or_init(|| PiperTts::new(&piper_config()).expect("load the Piper voice"))
}

fn espeak() -> EspeakTts {
    EspeakTts::new(&EspeakConfig::default())
}

/// Sends `segments`, closes the text side, and collects every event until
/// the stream ends.
async fn speak(tts: &dyn Tts, segments: &[&str]) -> Vec<TtsEvent> {
    let TtsStream { text, mut audio } = tts.start(&TtsOptions::default());
    let segments: Vec<String> = segments.iter().map(|s| s.to_string()).collect();
    tokio::spawn(async move {
        for s in segments {
            if text.send(s).await.is_err() {
                return;
            }
        }
    });
    let mut events = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while let Some(e) = audio.recv().await {
            events.push(e);
        }
    })
    .await
    .expect("the stream ends");
    events
}

/// The audio of each segment, checking on the way that events come in
/// segment order, each segment closed by its `SegmentDone`, with no error.
fn per_segment(events: &[TtsEvent], segments: usize) -> Vec<Vec<i16>> {
    let mut audio = vec![Vec::new(); segments];
    let mut current = 0;
    for e in events {
        match e {
            TtsEvent::Audio { segment, chunk } => {
                assert_eq!(*segment, current, "audio out of order");
                assert_eq!(chunk.rate, RATE);
                assert!(!chunk.samples.is_empty());
                audio[current].extend_from_slice(&chunk.samples);
            }
            TtsEvent::SegmentDone { segment } => {
                assert_eq!(*segment, current, "SegmentDone out of order");
                current += 1;
            }
            TtsEvent::Error(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(current, segments, "every segment is done");
    audio
}

fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

fn secs(samples: &[i16]) -> f64 {
    samples.len() as f64 / f64::from(RATE)
}

/// Speech, not silence or noise bursts: loud enough overall, and with
/// quiet gaps between words.
fn assert_speech(samples: &[i16], min_secs: f64, max_secs: f64) {
    let d = secs(samples);
    assert!((min_secs..=max_secs).contains(&d), "{d:.2} s of audio");
    assert!(rms(samples) > 800.0, "rms {:.0}", rms(samples));
    let frames: Vec<f64> = samples.chunks(441).map(rms).collect();
    let loud = frames.iter().filter(|&&r| r > 1000.0).count();
    let quiet = frames.iter().filter(|&&r| r < 300.0).count();
    assert!(
        loud * 3 > frames.len(),
        "{loud} loud of {} frames",
        frames.len()
    );
    assert!(quiet > 0, "no pause at all");
}

const SENTENCE: &str = "Thank you for calling, how can I help you today?";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piper_speaks_a_sentence_at_22050_hz() {
    let tts = piper();
    assert_eq!(tts.name(), "piper");
    assert_eq!(tts.sample_rate(), RATE);
    let events = speak(tts, &[SENTENCE]).await;
    let audio = per_segment(&events, 1);
    // About 2.5 s at a natural pace.
    assert_speech(&audio[0], 1.5, 5.0);
    // Chunks of 40 ms at most.
    for e in &events {
        if let TtsEvent::Audio { chunk, .. } = e {
            assert!(chunk.samples.len() <= 882, "{}", chunk.samples.len());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn espeak_speaks_a_sentence_at_22050_hz() {
    let tts = espeak();
    assert_eq!(tts.name(), "espeak");
    let events = speak(&tts, &[SENTENCE]).await;
    let audio = per_segment(&events, 1);
    assert_speech(&audio[0], 1.5, 6.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_come_out_in_order_each_closed_by_segment_done() {
    let segments = ["Hello there.", "I can book a table for two.", "Goodbye!"];
    for tts in [piper() as &dyn Tts, &espeak()] {
        let events = speak(tts, &segments).await;
        let audio = per_segment(&events, segments.len());
        for (i, a) in audio.iter().enumerate() {
            assert!(
                secs(a) > 0.3,
                "{}: segment {i} has {:.2} s",
                tts.name(),
                secs(a)
            );
            assert!(rms(a) > 500.0, "{}: segment {i} is silent", tts.name());
        }
        // The longer sentence takes longer to say.
        assert!(secs(&audio[1]) > secs(&audio[2]), "{}", tts.name());
    }
}

/// A paragraph of `n` sentences.
fn paragraph(n: usize) -> String {
    (1..=n)
        .map(|i| format!("This is sentence number {i} of a rather long answer about your booking."))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piper_streams_the_first_segment_while_the_next_is_synthesized() {
    // Its own PiperTts (the model is shared) so that its counters are this
    // test's alone.
    let tts = PiperTts::new(&piper_config()).unwrap();
    let long = paragraph(10);
    let TtsStream { text, mut audio } = tts.start(&TtsOptions::default());
    text.send("Sure.".into()).await.unwrap();
    text.send(long).await.unwrap();
    drop(text);

    let first = tokio::time::timeout(DEADLINE, audio.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(first, TtsEvent::Audio { segment: 0, .. }),
        "{first:?}"
    );
    // 11 pieces in all (a sentence each); synthesis runs at most a few
    // pieces ahead of delivery, so most of the paragraph is still to come.
    let done = tts.pieces_synthesized();
    assert!(
        done < 6,
        "{done} pieces synthesized before the first audio arrived"
    );

    let mut events = vec![first];
    while let Some(e) = tokio::time::timeout(DEADLINE, audio.recv()).await.unwrap() {
        events.push(e);
    }
    let segs = per_segment(&events, 2);
    assert_speech(&segs[1], 25.0, 80.0);
    assert_eq!(tts.pieces_synthesized(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piper_stops_synthesizing_when_the_receiver_is_dropped() {
    let tts = PiperTts::new(&piper_config()).unwrap();
    let TtsStream { text, mut audio } = tts.start(&TtsOptions::default());
    text.send(paragraph(12)).await.unwrap();
    let first = tokio::time::timeout(DEADLINE, audio.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(first, TtsEvent::Audio { .. }), "{first:?}");
    drop(audio);

    // The piece under way finishes (an inference cannot be interrupted),
    // then nothing more starts.
    let start = Instant::now();
    while tts.in_flight() > 0 {
        assert!(start.elapsed() < DEADLINE, "synthesis never stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = tts.pieces_synthesized();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(tts.pieces_synthesized(), after, "synthesis went on");
    assert_eq!(tts.in_flight(), 0);
    assert!(after < 12, "all {after} pieces were synthesized");
    // The text side is closed once the stream's task is gone.
    let closed = tokio::time::timeout(Duration::from_secs(5), text.closed()).await;
    assert!(closed.is_ok(), "the stream task is still running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piper_runs_at_most_max_concurrent_syntheses() {
    let tts = PiperTts::new(&PiperConfig {
        max_concurrent: 1,
        ..piper_config()
    })
    .unwrap();
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let tts = tts.clone();
            tokio::spawn(async move { speak(&tts, &[&paragraph(2)]).await })
        })
        .collect();
    let mut peak = 0;
    while !calls.iter().all(|c| c.is_finished()) {
        peak = peak.max(tts.in_flight());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(peak, 1, "syntheses ran side by side");
    for call in calls {
        let audio = per_segment(&call.await.unwrap(), 1);
        assert_speech(&audio[0], 5.0, 20.0);
    }
    assert_eq!(tts.pieces_synthesized(), 6);
}

/// An espeak-ng wrapper that records each process id, so the test can see
/// the process it kills.
fn espeak_recording_pids(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let pids = dir.join("pids");
    let script = dir.join("espeak-ng");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ >> '{}'\nexec espeak-ng \"$@\"\n",
            pids.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, pids)
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; only a reaped process has none.
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn espeak_kills_its_process_when_the_receiver_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (script, pids) = espeak_recording_pids(dir.path());
    let tts = EspeakTts::new(&EspeakConfig {
        espeak_ng: script,
        // Slow speech: minutes of audio, so the process is still busy
        // when the receiver goes.
        rate_wpm: 80,
        ..Default::default()
    });
    let TtsStream { text, mut audio } = tts.start(&TtsOptions::default());
    text.send(paragraph(40)).await.unwrap();
    let first = tokio::time::timeout(DEADLINE, audio.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(first, TtsEvent::Audio { .. }), "{first:?}");
    let pid: u32 = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid), "espeak-ng {pid} should still be speaking");
    drop(audio);

    let start = Instant::now();
    while alive(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "espeak-ng {pid} still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed = tokio::time::timeout(Duration::from_secs(5), text.closed()).await;
    assert!(closed.is_ok(), "the stream task is still running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_input_never_breaks_a_stream() {
    let long_clause = ["and then we will call you back"; 20].join(" ");
    let segments: Vec<String> = vec![
        String::new(),
        "   \n\t ".into(),
        "...".into(),
        "?!;:--".into(),
        "42".into(),
        "Call 555-0123 before 3:45 pm, or pay $1,000.50 (20% off)!".into(),
        "Ünïcödé café naïve, 你好 мир 🙂 ½ €.".into(),
        "\0\u{7}\u{1b}[31m control".into(),
        "Supercalifragilisticexpialidocious".repeat(3),
        long_clause,
        "Fine.".into(),
    ];
    let seg_refs: Vec<&str> = segments.iter().map(String::as_str).collect();
    for tts in [piper() as &dyn Tts, &espeak()] {
        let events = speak(tts, &seg_refs).await;
        let audio = per_segment(&events, segments.len());
        for i in 0..4 {
            assert!(
                audio[i].is_empty(),
                "{}: segment {i} {:?} made sound",
                tts.name(),
                segments[i]
            );
        }
        for i in 4..segments.len() {
            assert!(
                rms(&audio[i]) > 300.0,
                "{}: segment {i} {:?} is silent",
                tts.name(),
                segments[i]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_model_is_a_clear_error_and_local_tts_falls_back_to_espeak() {
    let empty = tempfile::tempdir().unwrap();
    let config = PiperConfig {
        models_dir: empty.path().to_path_buf(),
        ..Default::default()
    };
    let err = PiperTts::new(&config).unwrap_err();
    assert!(matches!(err, PiperError::Missing(_)), "{err}");
    assert!(err.to_string().contains("scripts/models"), "{err}");

    let tts = local_tts(&config, &EspeakConfig::default());
    assert_eq!(tts.name(), "espeak");
    let audio = per_segment(&speak(tts.as_ref(), &["Still here."]).await, 1);
    assert!(rms(&audio[0]) > 500.0);

    let tts = local_tts(&piper_config(), &EspeakConfig::default());
    assert_eq!(tts.name(), "piper");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprepared_model_is_refused_not_loaded() {
    // A voice copied without scripts/models' metadata would make
    // sherpa-onnx end the process; it must be refused with an error.
    let src = models_dir().join("piper/en_US-joe-medium");
    let dir = tempfile::tempdir().unwrap();
    let voice = dir.path().join("piper/en_US-joe-medium");
    std::fs::create_dir_all(&voice).unwrap();
    for f in ["en_US-joe-medium.onnx.json", "tokens.txt"] {
        std::fs::copy(src.join(f), voice.join(f)).unwrap();
    }
    std::fs::write(voice.join("en_US-joe-medium.onnx"), b"not a model").unwrap();
    let err = PiperTts::new(&PiperConfig {
        models_dir: dir.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, PiperError::NotPrepared(_)), "{err}");
    assert!(err.to_string().contains("scripts/models"), "{err}");
}
