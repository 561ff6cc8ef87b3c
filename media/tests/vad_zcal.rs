#[path = "vad_signals.rs"]
mod signals;
use signals::*;
use hotline_media::vad::*;

fn pct(mut v: Vec<f32>, name: &str) {
    if v.is_empty() { println!("{name}: empty"); return; }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| v[((v.len() - 1) as f64 * p) as usize];
    println!("{name:>28} n={:5} p1={:6.2} p5={:6.2} p10={:6.2} p50={:6.2} p90={:6.2} p99={:6.2} max={:6.2}", v.len(), q(0.01), q(0.05), q(0.1), q(0.5), q(0.9), q(0.99), q(1.0));
}

fn report(label: &str, x: &[f64], rate: u32, truth: Option<&[bool]>) {
    let (frames, events) = run(VadConfig::new(rate, 20), &to_i16(x), 160);
    let sel: Vec<&VadFrame> = frames.iter().enumerate().filter(|(i, _)| truth.map_or(true, |t| t.get(*i).copied().unwrap_or(false))).map(|(_, f)| f).collect();
    if label == "xx" {
        for (i, f) in frames.iter().enumerate().filter(|(_, f)| f.probability > 0.3).filter(|_| label.starts_with("cn")) {
            println!("   #{i} p={:.2} sp={} per={:.2} res={:.1} pk={:?} top={:.1} lvl={:.1}", f.probability, f.speech as u8, f.features.periodicity, 10.0*(1.0-f.features.tonality).max(1e-6).log10(), f.features.peaks, f.features.top_snr_db, f.features.level_db);
        }
    }
    if truth.is_none() {
        for (i, f) in frames.iter().enumerate().filter(|(_, f)| f.probability > 0.3).filter(|_| label.starts_with("cn")).take(12) {
            println!("   #{i} p={:.2} per={:.2} flat={:.3} top={:.1} lvl={:.1}", f.probability, f.features.periodicity, f.features.flatness, f.features.top_snr_db, f.features.level_db);
        }
    }
    println!("== {label}: events {}  speechfrac {:.3}", events.len(), sel.iter().filter(|f| f.speech).count() as f32 / sel.len() as f32);
    pct(sel.iter().map(|f| f.features.periodicity).collect(), "per");
    pct(sel.iter().map(|f| f.features.flatness).collect(), "flat");
    pct(sel.iter().filter(|f| f.features.level_db > -45.0).map(|f| 10.0*(1.0-f.features.tonality).max(1e-6).log10()).collect(), "resid_db(loud)");
    pct(sel.iter().map(|f| f.features.top_snr_db).collect(), "topsnr");
    pct(sel.iter().map(|f| f.features.snr_db).collect(), "snr");
    pct(sel.iter().map(|f| f.probability).collect(), "prob");
}

#[test]
fn calibrate() {
    let rate = 8000;
    for voice in ["en-us", "en-us+f3", "de", "en-us+m7"] {
        let sp = corpus(voice, rate);
        let clean = speech_at(&sp, rate, -20.0);
        // truth: 20ms frames with energy within 25 dB of peak
        let fl = rate as usize / 50;
        let e: Vec<f64> = clean.chunks(fl).map(|c| c.iter().map(|v| v*v).sum::<f64>()).collect();
        let mx = e.iter().cloned().fold(0.0, f64::max);
        let truth: Vec<bool> = e.iter().map(|&v| v > mx * 10f64.powf(-2.5)).collect();
        let mut sig = white(1, clean.len() + 16000, -70.0);
        mix_into(&mut sig, &clean, 8000);
        let t2: Vec<bool> = std::iter::repeat_n(false, 8000/fl).chain(truth.iter().cloned()).collect();
        report(&format!("{voice} clean"), &sig, rate, Some(&t2));
        for snr in [10.0, 5.0] {
            let mut s = white(2, clean.len() + 16000, -20.0 - snr);
            mix_into(&mut s, &clean, 8000);
            report(&format!("{voice} white {snr}"), &s, rate, Some(&t2));
            let mut s = brown(2, clean.len() + 16000, rate, -20.0 - snr);
            mix_into(&mut s, &clean, 8000);
            report(&format!("{voice} brown {snr}"), &s, rate, Some(&t2));
        }
    }
    let n = secs(rate, 30.0);
    report("white -40", &white(3, n, -40.0), rate, None);
    let mut step = white(4, n, -55.0);
    let hi = white(5, n/2, -40.0);
    step[n/2..].copy_from_slice(&hi);
    report("white step", &step, rate, None);
    report("pink -35", &pink(3, n, rate, -35.0), rate, None);
    report("brown -30", &brown(3, n, rate, -30.0), rate, None);
    report("cn -40", &comfort_noise(3, n, rate, -40.0), rate, None);
    report("hum -30", &hum(n, rate, 50.0, -30.0), rate, None);
    let mut d = dtmf_sequence(rate, 30.0);
    mix_into(&mut d, &white(9, n, -65.0), 0);
    report("dtmf", &d, rate, None);
    let mut k = tones(n, rate, &[1000.0], -10.0);
    for (i, v) in k.iter_mut().enumerate() { if (i / 8000) % 2 == 1 { *v = 0.0; } }
    mix_into(&mut k, &white(9, n, -65.0), 0);
    report("1k burst", &k, rate, None);
    let mut k = tones(n, rate, &[440.0, 480.0], -19.0);
    for (i, v) in k.iter_mut().enumerate() { if (i / 16000) % 3 != 0 { *v = 0.0; } }
    mix_into(&mut k, &white(9, n, -65.0), 0);
    report("ringback", &k, rate, None);
}
