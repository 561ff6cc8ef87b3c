//! Answering-machine detection on the labelled set in `fixtures/amd/`
//! (`benches/amd.rs` made it with the embedded voices and measures the
//! same with noise, into `benches/RESULTS.md`): clean and with white noise
//! 15 dB below the speech, at least 90% of the clips are judged right,
//! every decision comes within 2.5 s of the answer's first word (or, for a
//! greeting too short to tell, when its beep ends), and the beep after a
//! voicemail greeting is found where it ends.

use hotline_media::amd::{Amd, AmdConfig, AmdEvent, Verdict};

const RATE: u32 = 8000;

struct Clip {
    file: String,
    machine: bool,
    beep_end_ms: Option<u64>,
    pcm: Vec<i16>,
}

fn clips() -> Vec<Clip> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/amd");
    let labels = std::fs::read_to_string(dir.join("labels.csv")).unwrap();
    labels
        .lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.splitn(5, ',').collect();
            let bytes = std::fs::read(dir.join(cols[0])).unwrap();
            let wav = hotline_media::wav::read_wav(&bytes).unwrap();
            assert_eq!(wav.format.sample_rate, RATE, "{}", cols[0]);
            Clip {
                file: cols[0].to_owned(),
                machine: cols[1] == "machine",
                beep_end_ms: cols[3].parse().ok(),
                pcm: wav.samples,
            }
        })
        .collect()
}

/// Deterministic white noise `snr_db` below the clip's loud part.
fn noisy(pcm: &[i16], snr_db: f64, seed: u64) -> Vec<i16> {
    let loud: Vec<f64> = pcm
        .iter()
        .map(|&s| f64::from(s))
        .filter(|s| s.abs() > 100.0)
        .collect();
    let rms = (loud.iter().map(|s| s * s).sum::<f64>() / loud.len().max(1) as f64).sqrt();
    let sd = rms / 10f64.powf(snr_db / 20.0);
    let mut x = seed;
    pcm.iter()
        .map(|&s| {
            let mut g = 0.0;
            for _ in 0..4 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                g += (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            }
            (f64::from(s) + g * sd * 1.732).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// The first word's start: where the clip's audio first gets loud.
fn first_sound_ms(pcm: &[i16]) -> u64 {
    let at = pcm.iter().position(|s| s.unsigned_abs() > 500).unwrap_or(0);
    at as u64 * 1000 / u64::from(RATE)
}

fn run(pcm: &[i16]) -> Vec<AmdEvent> {
    let mut amd = Amd::new(AmdConfig::new(RATE)).unwrap();
    let mut events = Vec::new();
    // 20 ms packets, as they come off the line.
    for chunk in pcm.chunks(160) {
        amd.push(chunk, &mut events);
    }
    events
}

fn check(snr_db: Option<f64>) {
    let clips = clips();
    assert!(clips.len() >= 40, "{} clips", clips.len());
    let mut right = 0;
    let mut wrong = Vec::new();
    for (i, c) in clips.iter().enumerate() {
        let pcm = snr_db.map_or_else(|| c.pcm.clone(), |db| noisy(&c.pcm, db, i as u64 + 7));
        let events = run(&pcm);
        let decided: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                AmdEvent::Decided(d) => Some(*d),
                _ => None,
            })
            .collect();
        assert_eq!(decided.len(), 1, "{}: one verdict: {events:?}", c.file);
        let d = decided[0];
        let want = if c.machine {
            Verdict::Machine
        } else {
            Verdict::Human
        };
        if d.verdict == want {
            right += 1;
        } else {
            wrong.push(format!("{} judged {:?} ({})", c.file, d.verdict, d.reason));
        }
        let after_first_word =
            d.at.as_millis() as u64 - first_sound_ms(&c.pcm).min(d.at.as_millis() as u64);
        // A short greeting is told by its beep, when the beep ends.
        assert!(
            after_first_word <= 2500 || d.reason == "beep",
            "{}: decided {after_first_word} ms after the first word ({})",
            c.file,
            d.reason
        );
        // A machine's beep, where it ends (to a frame or two).
        if d.verdict == Verdict::Machine
            && let Some(truth) = c.beep_end_ms
        {
            let beep = events.iter().find_map(|e| match e {
                AmdEvent::Beep { end, .. } => Some(end.as_millis() as u64),
                _ => None,
            });
            let found = beep.unwrap_or_else(|| panic!("{}: no beep in {events:?}", c.file));
            assert!(
                found.abs_diff(truth) <= 60,
                "{}: beep end {found} ms, truly {truth} ms",
                c.file
            );
        }
    }
    let accuracy = f64::from(right) / clips.len() as f64;
    eprintln!(
        "{snr_db:?}: {:.1}% right; wrong: {wrong:#?}",
        accuracy * 100.0
    );
    assert!(
        accuracy >= 0.9,
        "{:.1}% right; wrong: {wrong:#?}",
        accuracy * 100.0
    );
}

#[test]
fn clean_clips_are_judged_right() {
    check(None);
}

#[test]
fn clips_in_noise_are_judged_right() {
    check(Some(15.0));
}
