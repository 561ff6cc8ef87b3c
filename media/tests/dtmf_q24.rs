//! ITU-T Q.24 conformance of the DTMF detector, at 8 kHz and 16 kHz.
//!
//! Every test generates its whole matrix (all 16 digits × the conditions of
//! one Q.24 clause), runs the detector over each case fed in 1 ms chunks (so
//! the emission time of each event is known to 1 ms), collects every
//! deviation and fails with the list. Requirements checked:
//!
//! * frequency: accept ±1.5 %, reject beyond ±3.5 % (each group alone and
//!   both together) at −3, −10, −24 and −30 dBm0 per tone;
//! * level: accept −3 … −24 dBm0 (and −30), detect nothing at −55 / −60;
//! * twist: accept +4 dB and −8 dB; +8 and −12 dB are also checked to be
//!   rejected (Q.24 only mandates acceptance). Twist runs at −10 dBm0 for the
//!   low tone so the +4 dB pair does not clip 16-bit PCM (at −3 dBm0 it would);
//! * timing: accept 40/50/100 ms tones, reject 20/23 ms; a 10 ms interruption
//!   gives one digit, a 40 ms pause between equal digits gives two;
//! * every start is emitted ≤ 45 ms after its tone begins, and reports the
//!   tone's onset within 5 ms;
//! * some cases again with white Gaussian noise at 20 dB SNR.

mod support;

use hotline_media::dtmf::{Digit, DtmfDetector, DtmfEvent, DtmfGenerator, ToneParams};
use hotline_media::level::dbm0_to_peak;

const RATES: [u32; 2] = [8000, 16000];
/// Beyond-the-limit offsets are 3.5 % plus this.
const EPS: f64 = 0.1;
const MAX_LATENCY_MS: f64 = 45.0;
const MAX_ONSET_ERR_MS: f64 = 5.0;

fn samples(rate: u32, ms: f64) -> usize {
    (f64::from(rate) * ms / 1000.0).round() as usize
}

/// A test signal and the digits (with their tone onsets) it should yield.
struct Case {
    rate: u32,
    label: String,
    x: Vec<i16>,
    /// (digit, onset sample) of every digit that must be reported; empty for
    /// cases that must yield nothing.
    expect: Vec<(Digit, usize)>,
}

/// Appends `ms` of `digit` with `p`, then zeroes the `gaps` (start, length)
/// given in ms from the tone start. The generator runs through gaps, so the
/// tone resumes in phase, like a gated source.
fn push_tone(x: &mut Vec<i16>, rate: u32, d: Digit, p: ToneParams, ms: f64, gaps: &[(f64, f64)]) {
    let start = x.len();
    x.resize(start + samples(rate, ms), 0);
    DtmfGenerator::new(rate, d, p)
        .unwrap()
        .fill(&mut x[start..]);
    for &(at, len) in gaps {
        let a = start + samples(rate, at);
        let b = a + samples(rate, len);
        x[a..b].fill(0);
    }
}

fn push_silence(x: &mut Vec<i16>, rate: u32, ms: f64) {
    x.resize(x.len() + samples(rate, ms), 0);
}

/// Adds white Gaussian noise `snr_db` below the power of a pair at `p`.
fn add_noise(x: &mut [i16], p: ToneParams, snr_db: f64, seed: u64) {
    let pair_power = (dbm0_to_peak(p.low_dbm0).powi(2) + dbm0_to_peak(p.high_dbm0).powi(2)) / 2.0;
    let sigma = (pair_power / 10f64.powf(snr_db / 10.0)).sqrt();
    let mut n = support::Noise::new(seed);
    for s in x {
        *s = (f64::from(*s) + sigma * n.gaussian())
            .round()
            .clamp(-32768.0, 32767.0) as i16;
    }
}

/// One tone of `ms` between 60 ms of leading and 120 ms of trailing silence.
fn single(rate: u32, d: Digit, p: ToneParams, ms: f64, accept: bool, label: String) -> Case {
    single_at(rate, d, p, ms, accept, label, 0.0)
}

/// Like [`single`] with `shift_ms` more lead-in, to move the tone against
/// the detector's analysis grid.
fn single_at(
    rate: u32,
    d: Digit,
    p: ToneParams,
    ms: f64,
    accept: bool,
    label: String,
    shift_ms: f64,
) -> Case {
    let mut x = Vec::new();
    push_silence(&mut x, rate, 60.0 + shift_ms);
    let onset = x.len();
    push_tone(&mut x, rate, d, p, ms, &[]);
    push_silence(&mut x, rate, 120.0);
    Case {
        rate,
        label,
        x,
        expect: if accept { vec![(d, onset)] } else { vec![] },
    }
}

#[derive(Default)]
struct Report {
    cases: usize,
    failures: Vec<String>,
    max_latency_ms: f64,
    max_onset_err_ms: f64,
}

impl Report {
    fn check(&mut self, c: &Case) {
        self.cases += 1;
        let mut det = DtmfDetector::new(c.rate).unwrap();
        let mut ev = Vec::new();
        let mut emitted = Vec::new();
        for chunk in c.x.chunks(samples(c.rate, 1.0)) {
            let before = ev.len();
            det.process(chunk, &mut ev);
            emitted.extend(std::iter::repeat_n(det.position(), ev.len() - before));
        }
        det.flush(&mut ev);
        let ms = |s: f64| s * 1000.0 / f64::from(c.rate);
        let starts: Vec<(Digit, u64, u64)> = ev
            .iter()
            .zip(emitted.iter().chain(std::iter::repeat(&u64::MAX)))
            .filter_map(|(e, &when)| match *e {
                DtmfEvent::DigitStart { digit, at } => Some((digit, at, when)),
                DtmfEvent::DigitEnd { .. } => None,
            })
            .collect();
        let got: Vec<Digit> = starts.iter().map(|s| s.0).collect();
        let want: Vec<Digit> = c.expect.iter().map(|e| e.0).collect();
        if got != want {
            self.failures.push(format!(
                "{} Hz {}: want {:?}, got {:?}",
                c.rate, c.label, want, ev
            ));
            return;
        }
        // Starts and ends must alternate, each end matching its start.
        let mut open: Option<(Digit, u64)> = None;
        for e in &ev {
            match (*e, open) {
                (DtmfEvent::DigitStart { digit, at }, None) => open = Some((digit, at)),
                (
                    DtmfEvent::DigitEnd {
                        digit,
                        at,
                        duration,
                    },
                    Some((d, start)),
                ) if d == digit && at >= start && duration == at - start => open = None,
                _ => {
                    self.failures.push(format!(
                        "{} Hz {}: bad event order {:?}",
                        c.rate, c.label, ev
                    ));
                    return;
                }
            }
        }
        for (&(_, onset), &(_, at, when)) in c.expect.iter().zip(&starts) {
            let latency = ms(when as f64 - onset as f64);
            let onset_err = ms(at as f64 - onset as f64).abs();
            self.max_latency_ms = self.max_latency_ms.max(latency);
            self.max_onset_err_ms = self.max_onset_err_ms.max(onset_err);
            if latency > MAX_LATENCY_MS {
                self.failures.push(format!(
                    "{} Hz {}: start emitted {latency:.1} ms after onset",
                    c.rate, c.label
                ));
            }
            if onset_err > MAX_ONSET_ERR_MS {
                self.failures.push(format!(
                    "{} Hz {}: onset off by {onset_err:.1} ms",
                    c.rate, c.label
                ));
            }
        }
    }

    fn finish(self, what: &str) {
        println!(
            "{what}: {} cases, {} failures, max start latency {:.1} ms, max onset error {:.1} ms",
            self.cases,
            self.failures.len(),
            self.max_latency_ms,
            self.max_onset_err_ms
        );
        assert!(
            self.failures.is_empty(),
            "{what}: {} of {} cases failed:\n{}",
            self.failures.len(),
            self.cases,
            self.failures
                .iter()
                .take(40)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// (low %, high %, must be accepted) for every offset applied to the low
/// group, the high group, both the same way and both opposite ways.
fn offset_grid() -> Vec<(f64, f64, bool)> {
    let mut v = Vec::new();
    for (o, ok) in [
        (-3.5 - EPS, false),
        (-1.5, true),
        (0.0, true),
        (1.5, true),
        (3.5 + EPS, false),
    ] {
        v.push((o, 0.0, ok));
        if o != 0.0 {
            v.push((0.0, o, ok));
            v.push((o, o, ok));
            v.push((o, -o, ok));
        }
    }
    v
}

#[test]
fn frequency_deviation_at_every_level() {
    let mut rep = Report::default();
    for rate in RATES {
        for d in Digit::ALL {
            for level in [-3.0, -10.0, -24.0, -30.0] {
                for (lo, hi, ok) in offset_grid() {
                    let p = ToneParams::level(level).with_offsets(lo, hi);
                    let label = format!("{d} {level} dBm0 offsets {lo:+}%/{hi:+}%");
                    rep.check(&single(rate, d, p, 50.0, ok, label));
                }
            }
        }
    }
    rep.finish("frequency deviation");
}

#[test]
fn frequency_deviation_with_noise() {
    let mut rep = Report::default();
    let mut seed = 1;
    for rate in RATES {
        for d in Digit::ALL {
            for level in [-10.0, -24.0] {
                for (lo, hi, ok) in offset_grid() {
                    let p = ToneParams::level(level).with_offsets(lo, hi);
                    let label = format!("{d} {level} dBm0 offsets {lo:+}%/{hi:+}% 20 dB SNR");
                    let mut c = single(rate, d, p, 50.0, ok, label);
                    seed += 1;
                    add_noise(&mut c.x, p, 20.0, seed);
                    rep.check(&c);
                }
            }
        }
    }
    rep.finish("frequency deviation, noisy");
}

#[test]
fn levels() {
    let mut rep = Report::default();
    for rate in RATES {
        for d in Digit::ALL {
            for (level, ok) in [
                (-3.0, true),
                (-10.0, true),
                (-24.0, true),
                (-30.0, true),
                (-35.0, true),
                (-55.0, false),
                (-60.0, false),
            ] {
                for (lo, hi) in [(0.0, 0.0), (1.5, -1.5), (-1.5, 1.5)] {
                    let p = ToneParams::level(level).with_offsets(lo, hi);
                    let label = format!("{d} {level} dBm0 offsets {lo:+}%/{hi:+}%");
                    rep.check(&single(rate, d, p, 50.0, ok, label));
                }
            }
        }
    }
    rep.finish("levels");
}

#[test]
fn twist() {
    let mut rep = Report::default();
    for rate in RATES {
        for d in Digit::ALL {
            // −10 dBm0 low tone: with +4 dB the pair peaks at 0.32 + 0.50 of
            // full scale, no clipping. At −3 dBm0 it would clip.
            for low in [-10.0, -20.0] {
                for (twist, ok) in [(4.0, true), (-8.0, true), (8.0, false), (-12.0, false)] {
                    for (lo, hi) in [(0.0, 0.0), (1.5, 1.5), (-1.5, -1.5), (1.5, -1.5)] {
                        let p = ToneParams::level(low)
                            .with_twist(twist)
                            .with_offsets(lo, hi);
                        let label = format!(
                            "{d} low {low} dBm0 twist {twist:+} dB offsets {lo:+}%/{hi:+}%"
                        );
                        rep.check(&single(rate, d, p, 50.0, ok, label));
                    }
                }
            }
        }
    }
    rep.finish("twist");
}

#[test]
fn tone_duration() {
    let mut rep = Report::default();
    let mut seed = 100;
    for rate in RATES {
        for d in Digit::ALL {
            for (ms, ok) in [
                (20.0, false),
                (23.0, false),
                (40.0, true),
                (50.0, true),
                (100.0, true),
            ] {
                for level in [-3.0, -10.0, -24.0] {
                    for (lo, hi) in [(0.0, 0.0), (1.5, -1.5), (-1.5, 1.5)] {
                        for snr in [None, Some(20.0)] {
                            // Four placements against the 3.2 ms analysis hop.
                            for shift in [0.0, 0.8, 1.6, 2.4] {
                                let p = ToneParams::level(level).with_offsets(lo, hi);
                                let label = format!(
                                    "{d} {ms} ms {level} dBm0 offsets {lo:+}%/{hi:+}% \
                                     snr {snr:?} shift {shift} ms"
                                );
                                let mut c = single_at(rate, d, p, ms, ok, label, shift);
                                if let Some(snr) = snr {
                                    seed += 1;
                                    add_noise(&mut c.x, p, snr, seed);
                                }
                                rep.check(&c);
                            }
                        }
                    }
                }
            }
        }
    }
    rep.finish("tone duration");
}

#[test]
fn interruption_and_pause() {
    let mut rep = Report::default();
    let mut seed = 1000;
    for rate in RATES {
        for d in Digit::ALL {
            for level in [-3.0, -10.0, -24.0] {
                for snr in [None, Some(20.0)] {
                    let p = ToneParams::level(level);
                    // A 10 ms interruption (and a shorter one) inside a tone:
                    // one digit.
                    for gap in [5.0, 10.0] {
                        for (before, after) in [(50.0, 50.0), (40.0, 40.0), (60.0, 30.0)] {
                            let mut x = Vec::new();
                            push_silence(&mut x, rate, 60.0 + before / 25.0);
                            let onset = x.len();
                            push_tone(&mut x, rate, d, p, before + gap + after, &[(before, gap)]);
                            push_silence(&mut x, rate, 120.0);
                            if let Some(snr) = snr {
                                seed += 1;
                                add_noise(&mut x, p, snr, seed);
                            }
                            rep.check(&Case {
                                rate,
                                label: format!(
                                    "{d} {level} dBm0 {before}+{gap} gap+{after} ms snr {snr:?}"
                                ),
                                x,
                                expect: vec![(d, onset)],
                            });
                        }
                    }
                    // A 40 ms pause between two tones of the same digit: two.
                    for on in [40.0, 50.0] {
                        let mut x = Vec::new();
                        push_silence(&mut x, rate, 60.0);
                        let first = x.len();
                        push_tone(&mut x, rate, d, p, on, &[]);
                        push_silence(&mut x, rate, 40.0);
                        let second = x.len();
                        push_tone(&mut x, rate, d, p, on, &[]);
                        push_silence(&mut x, rate, 120.0);
                        if let Some(snr) = snr {
                            seed += 1;
                            add_noise(&mut x, p, snr, seed);
                        }
                        rep.check(&Case {
                            rate,
                            label: format!(
                                "{d} {level} dBm0 {on} on / 40 off / {on} on snr {snr:?}"
                            ),
                            x,
                            expect: vec![(d, first), (d, second)],
                        });
                    }
                }
            }
        }
    }
    rep.finish("interruption and pause");
}

#[test]
fn dial_strings_in_any_chunking() {
    use hotline_media::dtmf::render_sequence;
    use std::time::Duration;
    for rate in RATES {
        let mut x = Vec::new();
        push_silence(&mut x, rate, 30.0);
        render_sequence(
            rate,
            "0123456789*#ABCD5551",
            ToneParams::level(-12.0).with_twist(2.0),
            Duration::from_millis(45),
            Duration::from_millis(45),
            &mut x,
        )
        .unwrap();
        let mut reference: Option<Vec<DtmfEvent>> = None;
        for chunk in [1, 7, 160, 320, 1000, x.len()] {
            let mut det = DtmfDetector::new(rate).unwrap();
            let mut ev = Vec::with_capacity(64);
            for c in x.chunks(chunk) {
                det.process(c, &mut ev);
            }
            det.flush(&mut ev);
            let digits: String = ev
                .iter()
                .filter_map(|e| match e {
                    DtmfEvent::DigitStart { digit, .. } => Some(digit.to_char()),
                    _ => None,
                })
                .collect();
            assert_eq!(digits, "0123456789*#ABCD5551", "{rate} Hz chunk {chunk}");
            match &reference {
                None => reference = Some(ev),
                Some(r) => assert_eq!(r, &ev, "chunking changed the events"),
            }
        }
    }
}

/// Not a requirement of Q.24: prints how the detector behaves between the
/// accept and reject limits and below the accepted level, and checks the
/// acceptance edges are monotonic (no islands of acceptance beyond the
/// reject limits).
#[test]
fn characterisation() {
    for rate in RATES {
        let accepted = |p: ToneParams| {
            Digit::ALL
                .iter()
                .filter(|&&d| {
                    let c = single(rate, d, p, 60.0, true, String::new());
                    let mut det = DtmfDetector::new(rate).unwrap();
                    let mut ev = Vec::new();
                    det.process(&c.x, &mut ev);
                    det.flush(&mut ev);
                    ev.iter()
                        .any(|e| matches!(e, DtmfEvent::DigitStart { digit, .. } if digit == &d))
                })
                .count()
        };
        let mut line = String::new();
        for tenth in -60..=60 {
            let o = f64::from(tenth) / 10.0;
            if tenth % 5 == 0 {
                let n = accepted(ToneParams::level(-10.0).with_offsets(o, o));
                line += &format!(" {o:+.1}%:{n}");
                if o.abs() > 3.5 {
                    assert_eq!(n, 0, "{rate} Hz: accepted at {o}%");
                }
            }
        }
        println!("{rate} Hz digits accepted (of 16) vs offset on both tones:{line}");
        let mut line = String::new();
        for level in (-50..=-26).step_by(2) {
            let n = accepted(ToneParams::level(f64::from(level)));
            line += &format!(" {level}:{n}");
        }
        println!("{rate} Hz digits accepted vs level (dBm0/tone):{line}");
        let mut line = String::new();
        for twist in -14..=10 {
            let n = accepted(ToneParams::level(-10.0).with_twist(f64::from(twist)));
            line += &format!(" {twist:+}:{n}");
        }
        println!("{rate} Hz digits accepted vs twist (dB):{line}");
        let mut line = String::new();
        for snr in [30.0, 20.0, 15.0, 12.0, 10.0, 8.0, 6.0] {
            let mut n = 0;
            for (i, &d) in Digit::ALL.iter().enumerate() {
                for level in [-10.0, -24.0] {
                    let p = ToneParams::level(level);
                    let mut c = single(rate, d, p, 50.0, true, String::new());
                    add_noise(&mut c.x, p, snr, 77 + i as u64);
                    let mut det = DtmfDetector::new(rate).unwrap();
                    let mut ev = Vec::new();
                    det.process(&c.x, &mut ev);
                    det.flush(&mut ev);
                    let starts: Vec<_> = ev
                        .iter()
                        .filter(|e| matches!(e, DtmfEvent::DigitStart { .. }))
                        .collect();
                    let ok = matches!(starts.as_slice(), [DtmfEvent::DigitStart { digit, .. }] if *digit == d);
                    assert!(ok || starts.is_empty(), "{rate} Hz {snr} dB SNR: {ev:?}");
                    n += usize::from(ok);
                }
            }
            line += &format!(" {snr}dB:{n}");
            if snr >= 12.0 {
                assert_eq!(n, 32, "{rate} Hz: misses at {snr} dB SNR");
            }
        }
        println!("{rate} Hz 50 ms digits found (of 32) vs white-noise SNR:{line}");
        let mut line = String::new();
        for ms in (20..=44).step_by(2) {
            let n = Digit::ALL
                .iter()
                .filter(|&&d| {
                    let c = single(
                        rate,
                        d,
                        ToneParams::level(-10.0),
                        f64::from(ms),
                        true,
                        String::new(),
                    );
                    let mut det = DtmfDetector::new(rate).unwrap();
                    let mut ev = Vec::new();
                    det.process(&c.x, &mut ev);
                    !ev.is_empty()
                })
                .count();
            line += &format!(" {ms}ms:{n}");
        }
        println!("{rate} Hz digits accepted vs duration:{line}");
    }
}
