//! Answering-machine detection on the labelled set in `fixtures/amd/`:
//! voicemail greetings (Piper and espeak-ng voices) ending in a beep,
//! against short human-style answers followed by the quiet of someone
//! waiting for the caller. Each clip is judged clean and with white noise
//! mixed in at 20 dB and 10 dB below the speech; the table gives the
//! accuracy, the decision time from the answer, and how close the
//! reported beep end is to the true one.
//!
//! Run: `cargo bench --bench amd` (evaluates; no models needed).
//! `cargo bench --bench amd -- write` synthesizes the set again with the
//! embedded voices (needs `scripts/models`) and rewrites
//! `fixtures/amd/*.wav` and `labels.csv`.

use std::path::{Path, PathBuf};

use hotline::agent::espeak::{EspeakConfig, EspeakTts};
use hotline::agent::piper::{PiperConfig, PiperTts};
use hotline::agent::{Tts, TtsEvent, TtsOptions, TtsStream};
use hotline_media::amd::{Amd, AmdConfig, AmdEvent, Verdict};
use hotline_media::prompt::{PromptOptions, decode_bytes};
use hotline_media::wav::{SampleFormat, WavSpec, encode_wav};

const RATE: u32 = 8000;

const GREETINGS: &[&str] = &[
    "Hi, you've reached Sarah. I can't come to the phone right now. Please leave a message after the tone.",
    "Hello, this is the voicemail of Daniel Brooks. Leave your name and number and I'll call you back.",
    "You have reached Rivera Plumbing. Our office is closed. Please leave a message and we will return your call.",
    "The person you are calling is not available. At the tone, please record your message.",
    "Hey, it's Mike. Leave a message.",
    "Thank you for calling Green Valley Dental. We are unable to take your call. Please leave your name, number and a brief message.",
    "Hi, you have reached Tom and Lisa. We're not home right now, so leave a message after the beep.",
    "Your call has been forwarded to an automatic voice message system. Please record your message after the tone.",
    "Hello. I'm away from my desk. Please leave a detailed message and I will get back to you as soon as possible.",
    "Hi, this is Anna. Sorry I missed you. Leave a message.",
];

/// What people say when they pick up; `|` is a pause of two seconds
/// (a second "Hello?" when the caller says nothing).
const ANSWERS: &[&str] = &[
    "Hello?",
    "Hi.",
    "Hello, this is Mark.",
    "Yes?",
    "Good morning, Acme Plumbing.",
    "Hello, who's calling?",
    "Yeah, hello?",
    "This is Karen.",
    "Hello?|Hello?",
    "Speaking.",
];

/// Voices: `piper` or an espeak-ng voice name.
const VOICES: &[&str] = &["piper", "en-us", "en-gb+f3"];

struct Clip {
    file: String,
    label: Verdict,
    /// True beep end, ms from the answer (machines).
    beep_end_ms: Option<u64>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/amd")
}

async fn speak(tts: &dyn Tts, voice: Option<&str>, text: &str) -> Vec<i16> {
    let TtsStream {
        text: tx,
        mut audio,
    } = tts.start(&TtsOptions {
        voice: voice.map(str::to_owned),
        language: None,
    });
    tx.send(text.to_owned()).await.expect("stream open");
    drop(tx);
    let (mut pcm, mut rate) = (Vec::new(), RATE);
    while let Some(e) = audio.recv().await {
        match e {
            TtsEvent::Audio { chunk, .. } => {
                rate = chunk.rate;
                pcm.extend_from_slice(&chunk.samples);
            }
            TtsEvent::SegmentDone { .. } => {}
            TtsEvent::Error(e) => panic!("{e}"),
        }
    }
    let wav = encode_wav(WavSpec::mono(rate), &pcm).unwrap();
    let mut pcm = decode_bytes(&wav, &PromptOptions::new(RATE))
        .unwrap()
        .samples;
    // Speech at about −18 dBFS RMS, as a line would carry it.
    let rms = (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt();
    let gain = 4000.0 / rms.max(1.0);
    for s in &mut pcm {
        *s = (f64::from(*s) * gain).clamp(-32768.0, 32767.0) as i16;
    }
    pcm
}

fn silence(ms: u64) -> Vec<i16> {
    vec![0; (ms * u64::from(RATE) / 1000) as usize]
}

fn beep(hz: f64, ms: u64) -> Vec<i16> {
    let n = (ms * u64::from(RATE) / 1000) as usize;
    (0..n)
        .map(|i| {
            // 5 ms ramps, as real beeps have.
            let ramp = (i.min(n - i) as f64 / 40.0).min(1.0);
            (6000.0 * ramp * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(RATE)).sin())
                as i16
        })
        .collect()
}

fn write_set() {
    let models_dir = std::env::var_os("HOTLINE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/models")));
    let piper = PiperTts::new(&PiperConfig {
        models_dir,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e} (run scripts/models)"));
    let espeak = EspeakTts::new(&EspeakConfig::default());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = fixtures();
    std::fs::create_dir_all(&dir).unwrap();
    let mut labels = String::from("file,label,voice,beep_end_ms,text\n");
    let mut n = 0u64;
    let mut write =
        |name: String, pcm: &[i16], label: &str, voice: &str, beep_end: Option<u64>, text: &str| {
            let spec = WavSpec {
                format: SampleFormat::MuLaw,
                ..WavSpec::mono(RATE)
            };
            std::fs::write(dir.join(&name), encode_wav(spec, pcm).unwrap()).unwrap();
            labels.push_str(&format!(
                "{name},{label},{voice},{},\"{}\"\n",
                beep_end.map(|b| b.to_string()).unwrap_or_default(),
                text.replace('"', "'")
            ));
        };
    rt.block_on(async {
        for voice in VOICES {
            let (tts, v): (&dyn Tts, Option<&str>) = match *voice {
                "piper" => (&piper, None),
                v => (&espeak, Some(v)),
            };
            for (i, text) in GREETINGS.iter().enumerate() {
                n += 1;
                let lead = 300 + (n * 137) % 600;
                let pause = 300 + (n * 89) % 400;
                let hz = [1000.0, 850.0, 1400.0, 440.0][i % 4];
                let beep_ms = 300 + (n * 53) % 300;
                let mut pcm = silence(lead);
                pcm.extend(speak(tts, v, text).await);
                pcm.extend(silence(pause));
                pcm.extend(beep(hz, beep_ms));
                let beep_end = pcm.len() as u64 * 1000 / u64::from(RATE);
                pcm.extend(silence(1000));
                let name = format!("machine_{:02}_{}.wav", i + 1, voice.replace('+', "_"));
                write(name, &pcm, "machine", voice, Some(beep_end), text);
            }
            for (i, text) in ANSWERS.iter().enumerate() {
                n += 1;
                let mut pcm = silence(200 + (n * 151) % 600);
                for (k, part) in text.split('|').enumerate() {
                    if k > 0 {
                        pcm.extend(silence(2000));
                    }
                    pcm.extend(speak(tts, v, part).await);
                }
                // The callee waits for the caller.
                pcm.extend(silence(3500));
                let name = format!("human_{:02}_{}.wav", i + 1, voice.replace('+', "_"));
                write(name, &pcm, "human", voice, None, text);
            }
        }
    });
    std::fs::write(dir.join("labels.csv"), labels).unwrap();
    println!("wrote {n} clips to {}", dir.display());
}

fn read_set() -> Vec<(Clip, Vec<i16>)> {
    let dir = fixtures();
    let labels = std::fs::read_to_string(dir.join("labels.csv")).expect("fixtures/amd/labels.csv");
    labels
        .lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.splitn(5, ',').collect();
            let clip = Clip {
                file: cols[0].to_owned(),
                label: if cols[1] == "machine" {
                    Verdict::Machine
                } else {
                    Verdict::Human
                },
                beep_end_ms: cols[3].parse().ok(),
            };
            let wav =
                hotline_media::wav::read_wav(&std::fs::read(dir.join(cols[0])).unwrap()).unwrap();
            (clip, wav.samples)
        })
        .collect()
}

/// White noise `snr_db` below the clip's speech (its loud part).
fn with_noise(pcm: &[i16], snr_db: f64, seed: u64) -> Vec<i16> {
    let loud: Vec<f64> = pcm
        .iter()
        .map(|&s| f64::from(s))
        .filter(|s| s.abs() > 100.0)
        .collect();
    let rms = (loud.iter().map(|s| s * s).sum::<f64>() / loud.len().max(1) as f64).sqrt();
    let noise_rms = rms / 10f64.powf(snr_db / 20.0);
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    pcm.iter()
        .map(|&s| {
            // A sum of four uniforms: near enough Gaussian.
            let mut g = 0.0;
            for _ in 0..4 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                g += (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            }
            (f64::from(s) + g * noise_rms * 1.732).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

struct Outcome {
    verdict: Verdict,
    at_ms: u64,
    reason: &'static str,
    beep_end_ms: Option<u64>,
}

/// The first word's start: where the clip first gets loud.
fn first_sound_ms(pcm: &[i16]) -> u64 {
    let at = pcm.iter().position(|s| s.unsigned_abs() > 500).unwrap_or(0);
    at as u64 * 1000 / u64::from(RATE)
}

fn judge(pcm: &[i16]) -> Outcome {
    let mut amd = Amd::new(AmdConfig::new(RATE)).unwrap();
    let mut events = Vec::new();
    for chunk in pcm.chunks(160) {
        amd.push(chunk, &mut events);
    }
    let mut out = Outcome {
        verdict: Verdict::Unknown,
        at_ms: pcm.len() as u64 * 1000 / u64::from(RATE),
        reason: "none",
        beep_end_ms: None,
    };
    for e in events {
        match e {
            AmdEvent::Decided(d) => {
                out.verdict = d.verdict;
                out.at_ms = d.at.as_millis() as u64;
                out.reason = d.reason;
            }
            AmdEvent::Beep { end, .. } => out.beep_end_ms = Some(end.as_millis() as u64),
            AmdEvent::GreetingEnded { .. } => {}
        }
    }
    out
}

fn percentile(v: &mut [u64], p: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    if std::env::args().skip(1).any(|a| a == "write") {
        write_set();
    }
    let set = read_set();
    let machines = set
        .iter()
        .filter(|(c, _)| c.label == Verdict::Machine)
        .count();
    println!(
        "{} clips: {machines} machine, {} human\n",
        set.len(),
        set.len() - machines
    );
    println!(
        "Decision times are from the answer, and (\"after word\") from the callee's first sound; beep-decided clips are left out of the latter.\n"
    );
    println!(
        "| condition | accuracy | machines right | humans right | unknown | decision p50 | p95 | max | after word p95 | after word max | beeps found | beep end error p95 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut wrong = Vec::new();
    for (name, snr) in [
        ("clean", None),
        ("noise, 20 dB SNR", Some(20.0)),
        ("noise, 10 dB SNR", Some(10.0)),
    ] {
        let (mut right_m, mut right_h, mut unknown, mut beeps) = (0, 0, 0, 0);
        let (mut times, mut beep_err, mut after_word) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (clip, pcm)) in set.iter().enumerate() {
            let pcm = match snr {
                Some(db) => with_noise(pcm, db, i as u64 + 1),
                None => pcm.clone(),
            };
            let o = judge(&pcm);
            times.push(o.at_ms);
            if o.reason != "beep" {
                after_word.push(o.at_ms.saturating_sub(first_sound_ms(&set[i].1)));
            }
            match (clip.label, o.verdict) {
                (Verdict::Machine, Verdict::Machine) => right_m += 1,
                (Verdict::Human, Verdict::Human) => right_h += 1,
                (_, Verdict::Unknown) => unknown += 1,
                _ => {}
            }
            if o.verdict != clip.label {
                wrong.push(format!(
                    "{name}: {} judged {:?} at {} ms ({})",
                    clip.file, o.verdict, o.at_ms, o.reason
                ));
            }
            if let (Some(truth), Some(found)) = (clip.beep_end_ms, o.beep_end_ms) {
                beeps += 1;
                beep_err.push(truth.abs_diff(found));
            }
        }
        let accuracy = f64::from(right_m + right_h) / set.len() as f64 * 100.0;
        let p95_err = if beep_err.is_empty() {
            0
        } else {
            percentile(&mut beep_err, 0.95)
        };
        println!(
            "| {name} | {accuracy:.1}% | {right_m}/{machines} | {right_h}/{} | {unknown} | {} ms | {} ms | {} ms | {} ms | {} ms | {beeps}/{machines} | {p95_err} ms |",
            set.len() - machines,
            percentile(&mut times, 0.5),
            percentile(&mut times, 0.95),
            percentile(&mut times, 1.0),
            percentile(&mut after_word, 0.95),
            percentile(&mut after_word, 1.0),
        );
    }
    if !wrong.is_empty() {
        println!("\nMisjudged:");
        for w in wrong {
            println!("- {w}");
        }
    }
}
