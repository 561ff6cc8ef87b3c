//! The VAD finds real speech (espeak-ng, several voices) at known positions,
//! clean and in noise, and times its boundaries.

#[path = "vad_common/mod.rs"]
mod signals;

use hotline_media::vad::{Vad, VadConfig, VadEvent};
use signals::*;

/// Idle-channel noise under everything, so no test runs on digital zero.
const IDLE_DBM0: f64 = -65.0;
/// Active speech level of the test utterances.
const SPEECH_DBM0: f64 = -20.0;

struct Placed {
    signal: Vec<f64>,
    /// True onset and end, in ms from the stream start.
    onset_ms: f64,
    end_ms: f64,
}

/// `parts` of speech with `gap_ms` of silence between them, after `lead_ms`
/// of silence and followed by `tail_ms`.
fn place(parts: &[Vec<i16>], rate: u32, lead_ms: f64, gap_ms: f64, tail_ms: f64) -> Placed {
    let ms = |m: f64| (m * rate as f64 / 1000.0) as usize;
    let mut speech = Vec::new();
    let mut first = None;
    let mut last = 0;
    for (i, p) in parts.iter().enumerate() {
        let (a, b) = active_region(p, rate);
        if i > 0 {
            speech.extend(std::iter::repeat_n(0.0, ms(gap_ms)));
        }
        let base = speech.len();
        first.get_or_insert(base);
        last = base + (b - a);
        speech.extend(speech_at(&p[a..b], rate, SPEECH_DBM0));
    }
    let n = ms(lead_ms) + speech.len() + ms(tail_ms);
    let mut signal = white(99, n, IDLE_DBM0);
    mix_into(&mut signal, &speech, ms(lead_ms));
    Placed {
        signal,
        onset_ms: lead_ms,
        end_ms: lead_ms + last as f64 * 1000.0 / rate as f64,
    }
}

/// Checks one utterance's events against the truth and the config's
/// hysteresis, with the tolerances of the spec: start confirmed within
/// start_ms + 60 ms of the onset, end within stop_ms + 100 ms of the end.
fn check_utterance(
    label: &str,
    cfg: &VadConfig,
    start: &VadEvent,
    end: &VadEvent,
    onset: f64,
    stop: f64,
) {
    assert!(
        start.is_start() && !end.is_start(),
        "{label}: {start:?} {end:?}"
    );
    let s_at = ms(start.at());
    let s_conf = ms(start.confirmed_at());
    assert!(
        s_conf <= onset + cfg.start_ms as f64 + 60.0,
        "{label}: start confirmed at {s_conf} ms, onset {onset} ms"
    );
    assert!(
        (s_at - onset).abs() <= 60.0,
        "{label}: start back-dated to {s_at} ms, onset {onset} ms"
    );
    assert_eq!(start.latency(), start.confirmed_at() - start.at());
    let e_at = ms(end.at());
    let e_conf = ms(end.confirmed_at());
    assert!(
        e_conf <= stop + cfg.stop_ms as f64 + 100.0 && e_conf >= stop + cfg.stop_ms as f64 - 150.0,
        "{label}: end confirmed at {e_conf} ms, speech ended {stop} ms"
    );
    assert!(
        (e_at - stop).abs() <= 150.0,
        "{label}: end placed at {e_at} ms, speech ended {stop} ms"
    );
}

fn sentence(voice: &str, rate: u32) -> Vec<i16> {
    speech(voice, 160, CORPUS[4], rate)
}

#[test]
fn a_sentence_is_found_and_timed_for_many_voices_at_both_rates() {
    for &rate in &[8000, 16000] {
        for voice in [
            "en-us",
            "en-us+f3",
            "en-us+m7",
            "en-gb-x-rp+f4",
            "de",
            "fr-fr",
            "es",
        ] {
            let p = place(&[sentence(voice, rate)], rate, 1500.0, 0.0, 2000.0);
            let cfg = VadConfig::new(rate, 20);
            let (_, events) = run(cfg.clone(), &to_i16(&p.signal), 160);
            let label = format!("{voice} @ {rate}");
            assert_eq!(events.len(), 2, "{label}: {events:?}");
            check_utterance(&label, &cfg, &events[0], &events[1], p.onset_ms, p.end_ms);
        }
    }
}

#[test]
fn a_minute_of_prose_per_voice_is_one_utterance() {
    // The whole corpus of every voice, pauses between sentences included
    // (all shorter than stop_ms), is one utterance, covered nearly
    // throughout.
    let rate = 8000;
    for voice in VOICES {
        let c = corpus(voice, rate);
        let p = place(&[c], rate, 1000.0, 0.0, 1500.0);
        let cfg = VadConfig::new(rate, 20);
        let (frames, events) = run(cfg.clone(), &to_i16(&p.signal), 160);
        assert_eq!(events.len(), 2, "{voice}: {events:?}");
        check_utterance(voice, &cfg, &events[0], &events[1], p.onset_ms, p.end_ms);
        let speech = frames.iter().filter(|f| f.speech).count() as f64;
        let inside = (p.end_ms - p.onset_ms) / 20.0;
        assert!(
            speech / inside > 0.6,
            "{voice}: only {:.2} of frames voiced",
            speech / inside
        );
    }
}

#[test]
fn ten_ms_frames_and_ragged_chunks_give_the_same_timing() {
    for &rate in &[8000, 16000] {
        let p = place(&[sentence("en-gb", rate)], rate, 1200.0, 0.0, 1500.0);
        let x = to_i16(&p.signal);
        let cfg = VadConfig::new(rate, 10);
        let (frames, events) = run(cfg.clone(), &x, 37);
        assert_eq!(frames.len(), x.len() / (rate as usize / 100));
        assert_eq!(events.len(), 2, "{rate}: {events:?}");
        check_utterance(
            &format!("10 ms @ {rate}"),
            &cfg,
            &events[0],
            &events[1],
            p.onset_ms,
            p.end_ms,
        );
        // Chunking must not change anything.
        let (frames2, events2) = run(cfg, &x, 80 * (rate as usize / 8000));
        assert_eq!(events, events2);
        assert_eq!(frames, frames2);
    }
}

#[test]
fn stop_ms_is_honoured_across_its_range() {
    let rate = 8000;
    let p = place(&[sentence("en-us", rate)], rate, 1000.0, 0.0, 2500.0);
    let x = to_i16(&p.signal);
    for stop in [500, 600, 800, 1000] {
        let cfg = VadConfig {
            stop_ms: stop,
            ..VadConfig::new(rate, 20)
        };
        let (_, events) = run(cfg.clone(), &x, 160);
        assert_eq!(events.len(), 2, "stop {stop}: {events:?}");
        check_utterance(
            &format!("stop {stop}"),
            &cfg,
            &events[0],
            &events[1],
            p.onset_ms,
            p.end_ms,
        );
        assert!(events[1].latency().as_millis() as u32 >= stop);
    }
}

#[test]
fn a_pause_shorter_than_stop_ms_does_not_end_the_utterance() {
    let rate = 8000;
    let a = speech("en-us", 160, "I would like to book an appointment", rate);
    let b = speech("en-us", 160, "for next Tuesday afternoon", rate);
    for (pause, expected) in [(350.0, 1), (450.0, 1), (1200.0, 2), (2000.0, 2)] {
        let p = place(&[a.clone(), b.clone()], rate, 1000.0, pause, 1500.0);
        let (_, events) = run(VadConfig::new(rate, 20), &to_i16(&p.signal), 160);
        assert_eq!(
            events.iter().filter(|e| e.is_start()).count(),
            expected,
            "pause {pause} ms: {events:?}"
        );
        assert_eq!(events.len(), 2 * expected, "pause {pause} ms: {events:?}");
        assert!((ms(events[0].at()) - p.onset_ms).abs() <= 60.0);
        let last = events.last().unwrap();
        assert!(
            (ms(last.at()) - p.end_ms).abs() <= 150.0,
            "{last:?} vs {}",
            p.end_ms
        );
    }
}

#[test]
fn speech_in_line_noise_hum_and_hiss_is_detected_down_to_5_db_snr() {
    let mut failures = Vec::new();
    for &rate in &[8000, 16000] {
        for voice in ["en-us", "en-us+f3", "de"] {
            let clean = place(&[sentence(voice, rate)], rate, 2500.0, 0.0, 2000.0);
            let n = clean.signal.len();
            for snr in [20.0, 10.0, 5.0] {
                let level = SPEECH_DBM0 - snr;
                let noises: [(&str, Vec<f64>); 5] = [
                    ("white", white(7, n, level)),
                    ("pink", pink(8, n, rate, level)),
                    ("brown", brown(9, n, rate, level)),
                    ("hum50", hum(n, rate, 50.0, level)),
                    ("hum60", hum(n, rate, 60.0, level)),
                ];
                for (name, noise) in noises {
                    let mut x = clean.signal.clone();
                    mix_into(&mut x, &noise, 0);
                    let cfg = VadConfig::new(rate, 20);
                    let (frames, events) = run(cfg.clone(), &to_i16(&x), 160);
                    let label = format!("{voice} @ {rate} in {name} at {snr} dB");
                    let inside: Vec<_> = frames
                        .iter()
                        .filter(|f| (clean.onset_ms..clean.end_ms).contains(&ms(f.start)))
                        .collect();
                    let covered =
                        inside.iter().filter(|f| f.speaking).count() as f64 / inside.len() as f64;
                    let starts = events.iter().filter(|e| e.is_start()).count();
                    let first = events.first();
                    let summary = format!(
                        "{label}: starts {starts}, first at {:?} confirmed {:?}, covered {covered:.2}",
                        first.map(|e| ms(e.at())),
                        first.map(|e| ms(e.confirmed_at()))
                    );
                    let ok = match first {
                        None => false,
                        Some(e) => {
                            let (late_at, late_conf) = if snr >= 10.0 {
                                (60.0, 60.0)
                            } else {
                                (400.0, 400.0)
                            };
                            e.is_start()
                                && ms(e.at()) >= clean.onset_ms - 100.0
                                && ms(e.at()) <= clean.onset_ms + late_at
                                && ms(e.confirmed_at())
                                    <= clean.onset_ms + cfg.start_ms as f64 + late_conf
                                && starts <= if snr >= 10.0 { 1 } else { 2 }
                                && covered >= if snr >= 10.0 { 0.95 } else { 0.8 }
                                && !events.last().unwrap().is_start()
                        }
                    };
                    if !ok {
                        failures.push(summary);
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn min_speech_drops_short_bursts_and_delays_the_announcement() {
    let rate = 8000;
    let short = speech("en-us", 160, "yes", rate);
    let p = place(&[short], rate, 1000.0, 0.0, 1500.0);
    let x = to_i16(&p.signal);
    let (_, plain) = run(VadConfig::new(rate, 20), &x, 160);
    assert_eq!(plain.len(), 2, "{plain:?}");
    let cfg = VadConfig {
        min_speech_ms: 1000,
        ..VadConfig::new(rate, 20)
    };
    let (_, none) = run(cfg.clone(), &x, 160);
    assert!(none.is_empty(), "{none:?}");

    let long = place(&[sentence("en-us", rate)], rate, 1000.0, 0.0, 1500.0);
    let (_, events) = run(cfg, &to_i16(&long.signal), 160);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].latency().as_millis() >= 1000 - 20);
    assert!((ms(events[0].at()) - long.onset_ms).abs() <= 60.0);
}

#[test]
fn presets_and_reset() {
    let rate = 8000;
    let p = place(&[sentence("en-us", rate)], rate, 1000.0, 0.0, 1500.0);
    let x = to_i16(&p.signal);
    for cfg in [VadConfig::openai_server_vad(rate), VadConfig::pipecat(rate)] {
        let (_, events) = run(cfg.clone(), &x, 160);
        assert_eq!(events.len(), 2, "{cfg:?}: {events:?}");
        check_utterance("preset", &cfg, &events[0], &events[1], p.onset_ms, p.end_ms);
    }
    // A detector reused after reset behaves like a new one.
    let cfg = VadConfig::new(rate, 20);
    let mut vad = Vad::new(cfg.clone()).unwrap();
    let (mut f1, mut e1) = (Vec::new(), Vec::new());
    vad.process(&x[..x.len() / 2], &mut f1, &mut e1);
    vad.reset();
    assert_eq!(vad.position().as_millis(), 0);
    let (mut frames, mut events) = (Vec::new(), Vec::new());
    vad.process(&x, &mut frames, &mut events);
    events.extend(vad.finish());
    let (fresh_frames, fresh_events) = run(cfg, &x, 160);
    assert_eq!(events, fresh_events);
    assert_eq!(frames, fresh_frames);
}

#[test]
fn an_utterance_open_at_the_end_of_the_stream_is_closed_by_finish() {
    let rate = 8000;
    let p = place(&[sentence("en-us", rate)], rate, 1000.0, 0.0, 100.0);
    let x = to_i16(&p.signal);
    let mut vad = Vad::new(VadConfig::new(rate, 20)).unwrap();
    let (mut frames, mut events) = (Vec::new(), Vec::new());
    vad.process(&x, &mut frames, &mut events);
    assert_eq!(events.len(), 1);
    assert!(vad.is_speaking());
    let end = vad.finish().expect("open utterance closed");
    assert!(!end.is_start());
    assert!(
        (ms(end.at()) - p.end_ms).abs() <= 150.0,
        "{end:?} vs {}",
        p.end_ms
    );
    assert!(!vad.is_speaking());
    assert_eq!(vad.finish(), None);
}
