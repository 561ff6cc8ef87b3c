//! Cost of the embedded speech stack: the real-time factor of the Whisper
//! STT (tiny.en q8_0, one whisper thread) on one utterance of real speech,
//! and the cost of one Silero speech confirmation. Results and the machine
//! they ran on go in `benches/RESULTS.md`.
//!
//! Run: `cargo bench --bench stt_local [-- ROUNDS]` (default 5 rounds per
//! utterance). Needs the models (`scripts/models`) and espeak-ng and sox
//! (`scripts/deps`).
//!
//! An utterance's time runs from the end of its audio (the sender is
//! dropped after every frame was sent) to its final, which is what a
//! caller waits for after they stop talking. It includes the Silero speech
//! gate. Real-time factor = that time / the utterance's duration.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use hotline::agent::silero::{SileroConfig, SpeechConfirmer};
use hotline::agent::whisper::{WhisperConfig, WhisperStt};
use hotline::agent::{Stt, SttEvent, SttOptions, SttStream};

const RATE: usize = 16_000;

fn models_dir() -> PathBuf {
    let dir = std::env::var_os("HOTLINE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/models")));
    assert!(
        dir.join("whisper/ggml-tiny.en-q8_0.bin").is_file()
            && dir.join("silero/ggml-silero-v6.2.0.bin").is_file(),
        "models missing in {}: run `scripts/models`",
        dir.display()
    );
    dir
}

fn speak(text: &str) -> Vec<i16> {
    let dir = std::env::temp_dir().join(format!("stt_local_bench_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (raw, out) = (dir.join("raw.wav"), dir.join("16k.wav"));
    let ok = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("espeak-ng (scripts/deps)");
    assert!(ok.success());
    let ok = Command::new("sox")
        .arg(&raw)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(&out)
        .status()
        .expect("sox (scripts/deps)");
    assert!(ok.success());
    let wav = hotline_media::wav::read_wav(&std::fs::read(&out).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    wav.to_mono()
}

/// Seconds from the end of the audio to the final, and the final's text.
async fn utterance(stt: &WhisperStt, pcm: &[i16]) -> (f64, String) {
    let SttStream { audio, mut events } = stt.start(&SttOptions::default());
    for frame in pcm.chunks(RATE / 50) {
        audio.send(frame.to_vec()).await.unwrap();
    }
    let start = Instant::now();
    drop(audio);
    loop {
        match events.recv().await {
            Some(SttEvent::Final(t)) => return (start.elapsed().as_secs_f64(), t.text),
            Some(SttEvent::Partial(_)) => {}
            Some(SttEvent::Error(e)) => panic!("{e}"),
            None => panic!("stream closed without a final"),
        }
    }
}

/// Resident memory of this process, in MB (Linux).
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn whisper_rtf(rounds: usize) {
    let utterances = [
        (
            "3 s",
            speak("Please call me back tomorrow morning at nine."),
        ),
        (
            "8 s",
            speak(
                "Hello, my name is John Smith and I would like to leave a message \
                 about my order, it has not arrived yet and I have been waiting for two weeks.",
            ),
        ),
    ];
    for fit in [true, false] {
        let before = rss_mb();
        let stt = WhisperStt::new(&WhisperConfig {
            models_dir: models_dir(),
            threads: 1,
            concurrency: 1,
            fit_audio_ctx: fit,
            ..WhisperConfig::default()
        })
        .unwrap();
        // The first inference allocates whisper's compute buffers.
        utterance(&stt, &utterances[0].1).await;
        if fit {
            println!(
                "memory: model, one worker's state and Silero context: {:.0} MB resident",
                rss_mb() - before
            );
        }
        for (name, pcm) in &utterances {
            let secs = pcm.len() as f64 / RATE as f64;
            let mut times = Vec::new();
            let mut text = String::new();
            for _ in 0..rounds {
                let (t, s) = utterance(&stt, pcm).await;
                times.push(t);
                text = s;
            }
            let min = times.iter().copied().fold(f64::INFINITY, f64::min);
            let max = times.iter().copied().fold(0.0, f64::max);
            let med = median(&mut times);
            println!(
                "whisper {name} ({secs:.2} s audio), fit_audio_ctx={fit}: final after \
                 {med:.3} s median (min {min:.3}, max {max:.3}), RTF {:.3}; text: {text:?}",
                med / secs
            );
        }
    }
}

async fn silero_cost(calls: usize) {
    let confirmer = SpeechConfirmer::new(&SileroConfig {
        models_dir: models_dir(),
        ..SileroConfig::default()
    })
    .unwrap();
    let speech = speak(
        "Hello, my name is John Smith and I would like to leave a message \
         about my order, it has not arrived yet and I have been waiting for two weeks.",
    );
    for ms in [300, 500, 8000] {
        let n = (RATE * ms / 1000).min(speech.len());
        let pcm = &speech[..n];
        confirmer.confirm(pcm).await.unwrap();
        let calls = if ms > 1000 { calls / 10 } else { calls };
        let mut times = Vec::with_capacity(calls);
        let wall = Instant::now();
        for _ in 0..calls {
            let t = Instant::now();
            let v = confirmer.confirm(pcm).await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(v.speech);
        }
        let mean = wall.elapsed().as_secs_f64() * 1000.0 / calls as f64;
        let p50 = percentile(&mut times, 0.5);
        let p99 = percentile(&mut times, 0.99);
        println!(
            "silero confirm on {:.2} s of speech: {mean:.3} ms mean, {p50:.3} ms p50, \
             {p99:.3} ms p99 ({calls} calls)",
            n as f64 / RATE as f64
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; the first number given is the rounds.
    let rounds = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(5)
        .max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        whisper_rtf(rounds).await;
        silero_cost(200).await;
    });
    // Keeps the runtime's blocking threads from outliving main noisily.
    rt.shutdown_timeout(Duration::from_secs(1));
}
