//! Behaviour of the call-progress tone generator: frequencies, levels,
//! cadence timing to the sample, frame-size independence and click-free edges.

mod support;

use hotline_media::level::{dbm0_to_peak, peak_to_dbm0};
use hotline_media::tones::{Region, Segment, Sine, ToneGenerator, ToneSpec};
use support::signal::{goertzel_amplitude, max_step};

const REGIONS: [Region; 3] = [Region::Us, Region::Uk, Region::Eu];

fn render(spec: &ToneSpec, rate: u32, n: usize) -> Vec<i16> {
    let mut g = ToneGenerator::new(spec, rate).unwrap();
    let mut out = vec![0i16; n];
    g.fill(&mut out);
    out
}

/// The on periods `[start, end)` of `spec` over `cycles` cycles at `rate`,
/// computed independently of the generator from the nominal durations.
fn on_windows(spec: &ToneSpec, rate: u32, cycles: u64) -> (Vec<(u64, u64)>, u64) {
    let mut bounds = vec![0u64];
    let mut cum = 0.0;
    for s in &spec.segments {
        cum += s.duration_ms;
        bounds.push((cum * f64::from(rate) / 1000.0).round() as u64);
    }
    let cycle = *bounds.last().unwrap();
    let mut wins = Vec::new();
    for c in 0..cycles {
        for (i, s) in spec.segments.iter().enumerate() {
            if !s.sines.is_empty() {
                let (a, b) = (c * cycle + bounds[i], c * cycle + bounds[i + 1]);
                // Adjacent identical bursts merge into one on period.
                match wins.last_mut() {
                    Some((_, e)) if *e == a => *e = b,
                    _ => wins.push((a, b)),
                }
            }
        }
    }
    (wins, cycle)
}

fn all_tones() -> Vec<(&'static str, ToneSpec)> {
    let mut v = Vec::new();
    for r in REGIONS {
        v.push(("ringback", ToneSpec::ringback(r)));
        v.push(("busy", ToneSpec::busy(r)));
        v.push(("congestion", ToneSpec::congestion(r)));
        v.push(("sit", ToneSpec::sit(r)));
    }
    v.push(("beep", ToneSpec::beep()));
    v
}

#[test]
fn cadences_match_the_national_plans() {
    let ms = |spec: &ToneSpec| -> Vec<(f64, Vec<f64>)> {
        spec.segments
            .iter()
            .map(|s| (s.duration_ms, s.sines.iter().map(|x| x.freq_hz).collect()))
            .collect()
    };
    assert_eq!(
        ms(&ToneSpec::ringback(Region::Us)),
        vec![(2000.0, vec![440.0, 480.0]), (4000.0, vec![])]
    );
    assert_eq!(
        ms(&ToneSpec::ringback(Region::Uk)),
        vec![
            (400.0, vec![400.0, 450.0]),
            (200.0, vec![]),
            (400.0, vec![400.0, 450.0]),
            (2000.0, vec![])
        ]
    );
    assert_eq!(
        ms(&ToneSpec::ringback(Region::Eu)),
        vec![(1000.0, vec![425.0]), (4000.0, vec![])]
    );
    assert_eq!(
        ms(&ToneSpec::busy(Region::Us)),
        vec![(500.0, vec![480.0, 620.0]), (500.0, vec![])]
    );
    assert_eq!(
        ms(&ToneSpec::congestion(Region::Us)),
        vec![(250.0, vec![480.0, 620.0]), (250.0, vec![])]
    );
    assert_eq!(
        ms(&ToneSpec::busy(Region::Eu)),
        vec![(500.0, vec![425.0]), (500.0, vec![])]
    );
    assert_eq!(ms(&ToneSpec::beep()), vec![(200.0, vec![1000.0])]);
    assert!(!ToneSpec::beep().repeat);
    assert!(ToneSpec::ringback(Region::Us).repeat);
    // Default levels are within the usual telephony range.
    for (_, spec) in all_tones() {
        for s in spec.segments.iter().flat_map(|s| &s.sines) {
            assert!((-19.0..=-13.0).contains(&s.level_dbm0), "{s:?}");
        }
    }
}

#[test]
fn components_have_the_right_frequency_and_level() {
    // Windows of 100 ms (8 kHz) hold whole cycles of every component
    // except 425 Hz, which needs 200 ms.
    let cases: Vec<(ToneSpec, Vec<f64>, f64)> = vec![
        (ToneSpec::ringback(Region::Us), vec![440.0, 480.0], -19.0),
        (ToneSpec::ringback(Region::Uk), vec![400.0, 450.0], -19.0),
        (ToneSpec::ringback(Region::Eu), vec![425.0], -13.0),
        (ToneSpec::busy(Region::Us), vec![480.0, 620.0], -19.0),
        (ToneSpec::congestion(Region::Us), vec![480.0, 620.0], -19.0),
        (ToneSpec::busy(Region::Uk), vec![400.0], -13.0),
        (ToneSpec::busy(Region::Eu), vec![425.0], -13.0),
        (ToneSpec::beep(), vec![1000.0], -13.0),
    ];
    for rate in [8000u32, 16000, 48000] {
        for (spec, freqs, level) in &cases {
            let x = render(spec, rate, rate as usize);
            // A window starting 20 ms in (past the ramp) holding whole
            // cycles: 200 ms for 425 Hz, else 100 ms so it fits the beep.
            let a = rate as usize / 50;
            let len = if freqs.contains(&425.0) {
                rate / 5
            } else {
                rate / 10
            };
            let win = &x[a..a + len as usize];
            for &f in freqs {
                let amp = goertzel_amplitude(win, f, f64::from(rate));
                let got = peak_to_dbm0(amp);
                assert!(
                    (got - level).abs() < 0.05,
                    "{f} Hz at {rate}: {got:.3} dBm0, want {level}"
                );
            }
            // Nothing at frequencies that are not part of the tone.
            for stray in [350.0, 700.0, 1400.0, 2600.0] {
                let amp = goertzel_amplitude(win, stray, f64::from(rate));
                assert!(
                    amp < dbm0_to_peak(*level) * 0.01,
                    "{stray} Hz leaks {amp} at {rate}"
                );
            }
        }
    }
}

#[test]
fn levels_follow_the_requested_dbm0() {
    for level in [-30.0, -19.0, -13.0, -6.0, 0.0, 3.0] {
        let spec = ToneSpec::beep_with(1000.0, 500.0, level);
        let x = render(&spec, 8000, 4000);
        let amp = goertzel_amplitude(&x[400..3600], 1000.0, 8000.0);
        assert!((peak_to_dbm0(amp) - level).abs() < 0.02, "{level}");
        // Peak sample agrees with the 0 dBm0 = 22 706 convention.
        let peak = x.iter().map(|s| s.unsigned_abs()).max().unwrap() as f64;
        assert!((peak - dbm0_to_peak(level)).abs() <= 1.0, "{level}: {peak}");
    }
    let spec = ToneSpec::ringback(Region::Us).with_level(-13.0);
    let x = render(&spec, 8000, 8000);
    let amp = goertzel_amplitude(&x[800..1600], 440.0, 8000.0);
    assert!((peak_to_dbm0(amp) + 13.0).abs() < 0.05);
}

#[test]
fn cadence_is_exact_to_the_sample() {
    // 11025 and 22050 Hz make the UK 0.225 s and similar periods land on
    // fractional sample counts, exercising the rounding of boundaries.
    for rate in [8000u32, 11025, 16000, 22050, 44100, 48000] {
        let ramp = (3.0 * f64::from(rate) / 1000.0).round() as usize;
        for (name, spec) in all_tones() {
            let cycles = if spec.repeat { 3 } else { 1 };
            let (wins, cycle) = on_windows(&spec, rate, cycles);
            let total = (cycle * cycles + u64::from(rate) / 2) as usize;
            let x = render(&spec, rate, total);
            // The render runs into the next cycle; mark its bursts too.
            let (next, _) = on_windows(&spec, rate, cycles + 1);
            let mut inside = vec![false; total];
            for &(a, b) in &next {
                let (a, b) = ((a as usize).min(total), (b as usize).min(total));
                inside[a..b].fill(true);
            }
            // Silence is exact silence everywhere outside the on periods.
            for (i, (&s, &on)) in x.iter().zip(&inside).enumerate() {
                assert!(
                    on || s == 0,
                    "{name} at {rate}: sample {i} = {s} in an off period"
                );
            }
            for &(a, b) in &wins {
                let (a, b) = (a as usize, b as usize);
                // The tone is present right from the edge: within the first
                // and last quarter of the ramp, and at 8 kHz within the first
                // and last two samples.
                let q = (ramp / 4).max(2);
                let head = if rate == 8000 { 2 } else { q };
                assert!(
                    x[a..a + head].iter().any(|&s| s != 0),
                    "{name} at {rate}: late start at {a}"
                );
                assert!(
                    x[b - head..b].iter().any(|&s| s != 0),
                    "{name} at {rate}: early end at {b}"
                );
                // And at full level between the ramps.
                let mid = &x[a + ramp..b - ramp];
                let peak = mid.iter().map(|s| s.unsigned_abs()).max().unwrap();
                assert!(peak > 1000, "{name} at {rate}: weak burst {peak}");
            }
        }
    }
}

#[test]
fn cadence_does_not_drift_over_an_hour() {
    let spec = ToneSpec::ringback(Region::Uk);
    let mut g = ToneGenerator::new(&spec, 8000).unwrap();
    assert_eq!(g.cycle_len(), 24_000);
    let mut frame = [0i16; 160];
    let hour = 8000u64 * 3600;
    while g.position() < hour {
        g.fill(&mut frame);
    }
    assert_eq!(g.position(), hour);
    // An hour is exactly 1200 UK ringback cycles: the next samples are a
    // fresh cycle identical to the very first one.
    let mut later = vec![0i16; 24_000];
    g.fill(&mut later);
    let first = render(&spec, 8000, 24_000);
    assert_eq!(later, first);
}

#[test]
fn output_does_not_depend_on_frame_size() {
    let sizes = [160usize, 1, 7, 80, 159, 161, 320, 441, 960, 1023];
    for rate in [8000u32, 16000, 44100] {
        for (name, spec) in all_tones() {
            let n = rate as usize * 7;
            let whole = render(&spec, rate, n);
            let mut g = ToneGenerator::new(&spec, rate).unwrap();
            let mut pieces = Vec::with_capacity(n);
            let mut frame = vec![0i16; 1100];
            let mut i = 0;
            while pieces.len() < n {
                let k = sizes[i % sizes.len()].min(n - pieces.len());
                i += 1;
                g.fill(&mut frame[..k]);
                pieces.extend_from_slice(&frame[..k]);
                // Zero-length frames are a no-op.
                g.fill(&mut frame[..0]);
            }
            assert_eq!(pieces, whole, "{name} at {rate} differs when framed");
            assert_eq!(g.position(), n as u64);

            // 20 ms frames, as a call uses them.
            let mut g = ToneGenerator::new(&spec, rate).unwrap();
            let f = rate as usize / 50;
            let mut framed = Vec::with_capacity(n);
            while framed.len() < n {
                let k = f.min(n - framed.len());
                g.fill(&mut frame[..k]);
                framed.extend_from_slice(&frame[..k]);
            }
            assert_eq!(framed, whole, "{name} at {rate} differs in 20 ms frames");

            g.reset();
            assert_eq!(g.position(), 0);
            let mut again = vec![0i16; n];
            g.fill(&mut again);
            assert_eq!(again, whole, "{name} at {rate} differs after reset");
        }
    }
}

#[test]
fn edges_are_click_free() {
    for rate in [8000u32, 16000, 48000] {
        for (name, spec) in all_tones() {
            let (wins, _) = on_windows(&spec, rate, 1);
            let x = render(&spec, rate, wins.last().unwrap().1 as usize + 100);
            let ramp = (3.0 * f64::from(rate) / 1000.0).round() as usize;
            for &(a, b) in &wins {
                let (a, b) = (a as usize, b as usize);
                // Steady-state step of this burst, away from its edges.
                let steady = max_step(&x[a + ramp..b - ramp]);
                // Peak of the burst bounds how much the envelope can add.
                let peak = x[a..b]
                    .iter()
                    .map(|s| i32::from(s.unsigned_abs()))
                    .max()
                    .unwrap();
                let env_slope = f64::from(peak) * std::f64::consts::PI / (2.0 * ramp as f64);
                let bound = steady + env_slope.ceil() as i32 + 2;
                let edge_in = max_step(&x[a.saturating_sub(1)..a + ramp + 1]);
                let edge_out = max_step(&x[b - ramp - 1..(b + 1).min(x.len())]);
                assert!(
                    edge_in <= bound && edge_out <= bound,
                    "{name} at {rate}: edge steps {edge_in}/{edge_out} > {bound}"
                );
                // The very first and last samples of a burst are small: the
                // ramp starts near zero rather than at the sine's value.
                assert!(i32::from(x[a].unsigned_abs()) <= peak / 20, "{name} {rate}");
                assert!(
                    i32::from(x[b - 1].unsigned_abs()) <= peak / 20,
                    "{name} {rate}"
                );
            }
        }
    }
}

#[test]
fn hard_edges_would_click() {
    // The same tone without ramps jumps straight to the cosine's peak:
    // this is what the ramp prevents, and shows the click test is sensitive.
    let spec = ToneSpec::ringback(Region::Us).with_ramp_ms(0.0);
    let x = render(&spec, 8000, 20_000);
    let steady = max_step(&x[100..15_900]);
    // The first sample is the step from the preceding silence.
    let onset = i32::from(x[0]).abs();
    assert!(onset > steady * 2, "{onset} vs {steady}");
    let smooth = render(&ToneSpec::ringback(Region::Us), 8000, 20_000);
    assert!(i32::from(smooth[0].abs()) < 10);
}

#[test]
fn beep_is_200_ms_once() {
    for rate in [8000u32, 16000, 48000] {
        let mut g = ToneGenerator::new(&ToneSpec::beep(), rate).unwrap();
        let n = rate as usize / 5;
        assert_eq!(g.cycle_len(), n as u64);
        let mut buf = vec![0i16; rate as usize];
        assert_eq!(g.fill(&mut buf), n);
        assert!(g.is_finished());
        assert!(buf[n..].iter().all(|&s| s == 0));
        let amp = goertzel_amplitude(
            &buf[n / 4..n / 4 + rate as usize / 10],
            1000.0,
            f64::from(rate),
        );
        assert!((peak_to_dbm0(amp) + 13.0).abs() < 0.05);
    }
}

#[test]
fn sit_plays_three_rising_tones() {
    for (region, tones, ms) in [
        (Region::Us, [913.8, 1370.6, 1776.7], [274.0, 274.0, 380.0]),
        (Region::Eu, [950.0, 1400.0, 1800.0], [330.0, 330.0, 330.0]),
    ] {
        let rate = 8000u32;
        let spec = ToneSpec::sit(region);
        let mut g = ToneGenerator::new(&spec, rate).unwrap();
        let mut x = vec![0i16; 20_000];
        g.fill(&mut x);
        let mut start = 0usize;
        for (i, (&f, &d)) in tones.iter().zip(&ms).enumerate() {
            let len = (d * 8.0) as usize;
            // A 100 ms window in the middle of each tone; with a Hann-free
            // rectangular window non-integer cycles leak a little, hence the
            // 0.3 dB tolerance.
            let mid = start + len / 2 - 400;
            let w = &x[mid..mid + 800];
            let own = goertzel_amplitude(w, f, 8000.0);
            assert!(
                (peak_to_dbm0(own) + 19.0).abs() < 0.3,
                "{region:?} tone {i}"
            );
            for (j, &other) in tones.iter().enumerate() {
                if j != i {
                    assert!(goertzel_amplitude(w, other, 8000.0) < own * 0.05);
                }
            }
            start += len;
        }
        assert!(g.is_finished());
    }
}

#[test]
fn custom_cadences_and_rates() {
    // A dial-tone-like steady tone at an unusual rate keeps a constant level.
    let spec = ToneSpec::continuous(&[Sine::new(350.0, -13.0), Sine::new(440.0, -13.0)]);
    let x = render(&spec, 12_000, 12_000 * 4);
    for s in x[1200..].chunks(1200) {
        let a = goertzel_amplitude(s, 350.0, 12_000.0);
        assert!((peak_to_dbm0(a) + 13.0).abs() < 0.05);
    }
    // A zero-length segment is skipped without disturbing the timing.
    let spec = ToneSpec::repeating(vec![
        Segment::off(0.0),
        Segment::on(100.0, &[Sine::new(1000.0, -10.0)]),
        Segment::off(0.0),
        Segment::off(100.0),
    ]);
    let x = render(&spec, 8000, 3200);
    for c in 0..2 {
        let base = c * 1600;
        assert!(x[base + 800..base + 1600].iter().all(|&s| s == 0));
        assert!(x[base + 400] != 0 || x[base + 401] != 0);
    }
}
