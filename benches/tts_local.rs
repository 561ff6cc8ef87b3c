//! The embedded voices' speed: time to first audio and real-time factor of
//! Piper (en_US-joe-medium through sherpa-onnx, ONNX Runtime on 1 or 2
//! threads) and espeak-ng, for a short and a long sentence, each spoken
//! alone on a fresh stream whose audio is read as fast as it comes.
//!
//! Run: `cargo bench --bench tts_local -- [runs]` (default 5 runs per row,
//! at most 50); needs `scripts/models`. Prints a Markdown table of medians.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hotline::agent::espeak::{EspeakConfig, EspeakTts};
use hotline::agent::piper::{PiperConfig, PiperTts};
use hotline::agent::{Tts, TtsEvent, TtsOptions, TtsStream};

const SHORT: &str = "Thank you for calling, how can I help you today?";
const LONG: &str = "I have booked a table for four people at seven thirty on Friday \
    evening, in the name of Smith, and you will get a text message with the \
    confirmation and a link to change or cancel the booking at any time.";

struct Run {
    first_audio: Duration,
    total: Duration,
    audio: Duration,
}

async fn run_once(tts: &dyn Tts, text: &str) -> Run {
    let TtsStream {
        text: tx,
        mut audio,
    } = tts.start(&TtsOptions::default());
    let start = Instant::now();
    tx.send(text.to_owned()).await.expect("stream open");
    drop(tx);
    let mut first = None;
    let mut samples = 0usize;
    let mut rate = 1;
    while let Some(e) = audio.recv().await {
        match e {
            TtsEvent::Audio { chunk, .. } => {
                first.get_or_insert_with(|| start.elapsed());
                samples += chunk.samples.len();
                rate = chunk.rate;
            }
            TtsEvent::SegmentDone { .. } => {}
            TtsEvent::Error(e) => panic!("{e}"),
        }
    }
    Run {
        first_audio: first.expect("some audio"),
        total: start.elapsed(),
        audio: Duration::from_secs_f64(samples as f64 / f64::from(rate)),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn row(label: &str, tts: &dyn Tts, text: &str, name: &str, runs: usize) {
    // One warm-up run: ONNX Runtime allocates its arenas on the first.
    run_once(tts, text).await;
    let mut results = Vec::new();
    for _ in 0..runs {
        results.push(run_once(tts, text).await);
    }
    let first = median(
        results
            .iter()
            .map(|r| r.first_audio.as_secs_f64() * 1e3)
            .collect(),
    );
    let total = median(
        results
            .iter()
            .map(|r| r.total.as_secs_f64() * 1e3)
            .collect(),
    );
    let audio = median(results.iter().map(|r| r.audio.as_secs_f64()).collect());
    let rtf = median(
        results
            .iter()
            .map(|r| r.total.as_secs_f64() / r.audio.as_secs_f64())
            .collect(),
    );
    println!("| {label} | {name} | {audio:.2} s | {first:.0} ms | {total:.0} ms | {rtf:.3} |");
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5)
        .clamp(1, 50);
    let models_dir = std::env::var_os("HOTLINE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/models")));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let piper = |threads: usize, first_piece_chars: usize| {
        let config = PiperConfig {
            models_dir: models_dir.clone(),
            threads,
            max_concurrent: 1,
            first_piece_chars,
            ..Default::default()
        };
        let start = Instant::now();
        let tts = PiperTts::new(&config).unwrap_or_else(|e| panic!("{e} (run scripts/models)"));
        (tts, start.elapsed())
    };
    let (p1, load) = piper(1, 60);
    println!("Piper model load (1 thread): {:.2} s\n", load.as_secs_f64());
    let (p1_whole, _) = piper(1, 160);
    let (p2, _) = piper(2, 60);
    let espeak = EspeakTts::new(&EspeakConfig::default());

    println!("| engine | sentence | audio | first audio | all audio | RTF |");
    println!("|---|---|---:|---:|---:|---:|");
    rt.block_on(async {
        for (text, name) in [(SHORT, "short (48 chars)"), (LONG, "long (204 chars)")] {
            row("Piper, 1 thread", &p1, text, name, runs).await;
            if text == LONG {
                row("Piper, 1 thread, no early cut", &p1_whole, text, name, runs).await;
            }
            row("Piper, 2 threads", &p2, text, name, runs).await;
            row("espeak-ng", &espeak, text, name, runs).await;
        }
    });
}
