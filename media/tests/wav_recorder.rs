//! The stereo call recorder: caller left, agent right, aligned on the call's
//! sample timeline whatever order and frame sizes the two sides arrive in.

use hotline_media::wav::{Side, StereoRecorder, read_wav};
use proptest::prelude::*;
use std::io::Cursor;
use std::path::PathBuf;
use std::process::Command;

type Rec = StereoRecorder<Cursor<Vec<u8>>>;

fn recorder(skew: usize) -> Rec {
    StereoRecorder::new(Cursor::new(Vec::new()), 8000, skew).unwrap()
}

fn channels(r: Rec) -> (Vec<i16>, Vec<i16>) {
    let w = read_wav(&r.finish().unwrap().into_inner()).unwrap();
    assert_eq!(w.format.channels, 2);
    assert_eq!(w.format.sample_rate, 8000);
    assert!(!w.truncated);
    (w.channel(0), w.channel(1))
}

/// Distinct, recognisable content: side marker plus position.
fn ramp(side: Side, pos: u64, n: usize) -> Vec<i16> {
    let base: i64 = if side == Side::Caller { 1 } else { -1 };
    (0..n as u64)
        .map(|i| (base * (((pos + i) % 30000) as i64 + 1)) as i16)
        .collect()
}

#[test]
fn sides_land_on_the_right_channels_with_different_frame_sizes() {
    let mut r = recorder(8000);
    // Caller in 20 ms frames from 0, agent in 30 ms frames from 100 ms,
    // interleaved as they would be in a call.
    let mut c = 0u64;
    let mut a = 800u64;
    while c < 16_000 || a < 16_000 {
        if c < 16_000 {
            r.push_caller(c, &ramp(Side::Caller, c, 160)).unwrap();
            c += 160;
        }
        if a < 16_000 && a <= c + 400 {
            r.push_agent(a, &ramp(Side::Agent, a, 240)).unwrap();
            a += 240;
        }
    }
    let (left, right) = channels(r);
    // The agent's last frame starts at 15 920 and runs to 16 160.
    assert_eq!(left.len(), 16_160);
    assert_eq!(left[..16_000], ramp(Side::Caller, 0, 16_000)[..]);
    assert!(left[16_000..].iter().all(|&s| s == 0));
    assert!(right[..800].iter().all(|&s| s == 0));
    assert_eq!(right[800..], ramp(Side::Agent, 800, 16_160 - 800)[..]);
}

#[test]
fn gaps_are_silence() {
    let mut r = recorder(4000);
    r.push_caller(0, &[5; 160]).unwrap();
    r.push_caller(1000, &[6; 160]).unwrap();
    r.push_agent(500, &[-7; 100]).unwrap();
    let (left, right) = channels(r);
    assert_eq!(left.len(), 1160);
    assert!(left[..160].iter().all(|&s| s == 5));
    assert!(left[160..1000].iter().all(|&s| s == 0));
    assert!(left[1000..].iter().all(|&s| s == 6));
    assert!(right[..500].iter().all(|&s| s == 0));
    assert!(right[500..600].iter().all(|&s| s == -7));
    assert!(right[600..].iter().all(|&s| s == 0));
}

#[test]
fn overlapping_frames_of_one_side_overwrite() {
    let mut r = recorder(4000);
    r.push_caller(0, &[1; 200]).unwrap();
    r.push_caller(150, &[2; 100]).unwrap();
    // Overlap with the other side never mixes: channels are independent.
    r.push_agent(100, &[3; 200]).unwrap();
    let (left, right) = channels(r);
    assert!(left[..150].iter().all(|&s| s == 1));
    assert!(left[150..250].iter().all(|&s| s == 2));
    assert!(left[250..].iter().all(|&s| s == 0));
    assert!(right[..100].iter().all(|&s| s == 0));
    assert!(right[100..300].iter().all(|&s| s == 3));
}

#[test]
fn out_of_step_arrivals_within_the_window_are_placed_exactly() {
    let mut r = recorder(2000);
    // The agent's frames arrive in a burst, late and reversed.
    for p in (0..10).map(|k| k * 160) {
        r.push_caller(p, &ramp(Side::Caller, p, 160)).unwrap();
    }
    for p in (0..10).rev().map(|k| k * 160) {
        r.push_agent(p, &ramp(Side::Agent, p, 160)).unwrap();
    }
    assert_eq!(r.late_samples(Side::Agent), 0);
    let (left, right) = channels(r);
    assert_eq!(left, ramp(Side::Caller, 0, 1600));
    assert_eq!(right, ramp(Side::Agent, 0, 1600));
}

#[test]
fn a_silent_side_does_not_hold_up_the_file() {
    let skew = 4000usize;
    let mut r = recorder(skew);
    r.push_agent(0, &[9; 160]).unwrap();
    // The agent then says nothing for 60 s; the caller talks throughout.
    let mut p = 0u64;
    while p < 8000 * 60 {
        r.push_caller(p, &ramp(Side::Caller, p, 160)).unwrap();
        p += 160;
        // Memory stays bounded: at most `skew` frames are held back.
        assert!(p - r.frames_written() <= skew as u64);
    }
    // The agent comes back at the current position.
    r.push_agent(p - 160, &[4; 160]).unwrap();
    assert_eq!(r.late_samples(Side::Agent), 0);
    let (left, right) = channels(r);
    assert_eq!(left, ramp(Side::Caller, 0, 8000 * 60));
    assert!(right[..160].iter().all(|&s| s == 9));
    assert!(right[160..480_000 - 160].iter().all(|&s| s == 0));
    assert!(right[480_000 - 160..].iter().all(|&s| s == 4));
}

#[test]
fn a_side_too_far_behind_is_flushed_with_silence_and_its_late_audio_dropped() {
    let skew = 800usize;
    let mut r = recorder(skew);
    for p in (0..20).map(|k| k * 160) {
        r.push_caller(p, &[1; 160]).unwrap();
    }
    // Caller reached 3200; the window now starts at 2400.
    assert_eq!(r.frames_written(), 3200 - skew as u64);
    // Agent audio for 2000..2560: the first 400 samples are already written.
    r.push_agent(2000, &[2; 560]).unwrap();
    assert_eq!(r.late_samples(Side::Agent), 400);
    // Entirely late frames are dropped whole.
    r.push_agent(0, &[3; 160]).unwrap();
    assert_eq!(r.late_samples(Side::Agent), 560);
    assert_eq!(r.late_samples(Side::Caller), 0);
    let (left, right) = channels(r);
    assert_eq!(left, vec![1; 3200]);
    assert!(right[..2400].iter().all(|&s| s == 0));
    assert!(right[2400..2560].iter().all(|&s| s == 2));
    assert!(right[2560..].iter().all(|&s| s == 0));
}

#[test]
fn recording_is_readable_by_soxi() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wav_recorder");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("call.wav");
    let file = std::fs::File::create(&path).unwrap();
    let mut r = StereoRecorder::new(std::io::BufWriter::new(file), 16_000, 16_000).unwrap();
    for k in 0..100u64 {
        r.push_caller(k * 320, &ramp(Side::Caller, k * 320, 320))
            .unwrap();
        r.push_agent(k * 320 + 50, &ramp(Side::Agent, k * 320, 320))
            .unwrap();
    }
    r.finish().unwrap();
    let soxi = |flag: &str| {
        let out = Command::new("soxi").arg(flag).arg(&path).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(soxi("-c"), "2");
    assert_eq!(soxi("-r"), "16000");
    assert_eq!(soxi("-s"), "32050");
    assert_eq!(soxi("-b"), "16");
    // sox's "remix 1" extracts the left channel: it must be the caller.
    let raw = dir.join("left.raw");
    let out = Command::new("sox")
        .arg(&path)
        .args(["-t", "raw", "-e", "signed-integer", "-b", "16", "-L"])
        .arg(&raw)
        .args(["remix", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<i16> = std::fs::read(&raw)
        .unwrap()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(left[..32_000], ramp(Side::Caller, 0, 32_000)[..]);
}

/// One frame of one side: where it belongs and when it arrives.
#[derive(Debug, Clone)]
struct Frame {
    side: Side,
    pos: u64,
    len: usize,
    arrival: u64,
}

fn frames(side: Side, sizes: &[(usize, usize, u64)]) -> Vec<Frame> {
    // (length, gap before, arrival delay)
    let mut pos = 0u64;
    let mut out = Vec::new();
    for &(len, gap, delay) in sizes {
        pos += gap as u64;
        out.push(Frame {
            side,
            pos,
            len,
            arrival: pos + delay,
        });
        pos += len as u64;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Arbitrary frame sizes, gaps and arrival orders, with each side lagging
    /// by less than the window: the file equals a model timeline per side
    /// with later writes winning, and nothing is dropped.
    #[test]
    fn matches_a_model_timeline(
        caller in proptest::collection::vec((1usize..400, 0usize..600, 0u64..300), 0..60),
        agent in proptest::collection::vec((1usize..400, 0usize..600, 0u64..300), 0..60),
        resend in proptest::collection::vec((any::<bool>(), 0usize..60, 0u64..100), 0..10),
    ) {
        let skew = 1000usize;
        let mut all = frames(Side::Caller, &caller);
        all.extend(frames(Side::Agent, &agent));
        // Some frames are sent twice (retransmission), shortly after.
        for (is_caller, idx, extra) in resend {
            let side = if is_caller { Side::Caller } else { Side::Agent };
            let mine: Vec<Frame> = all.iter().filter(|f| f.side == side).cloned().collect();
            if let Some(f) = mine.get(idx % mine.len().max(1)) {
                let mut f = f.clone();
                f.arrival += extra;
                all.push(f);
            }
        }
        all.sort_by_key(|f| f.arrival);

        let mut model = [Vec::<i16>::new(), Vec::<i16>::new()];
        let mut r = recorder(skew);
        let mut round = 0i16;
        for f in &all {
            // Every resend carries different content, so "later wins" shows.
            round = round.wrapping_add(1);
            let data: Vec<i16> = ramp(f.side, f.pos, f.len)
                .iter()
                .map(|s| s.wrapping_add(round.wrapping_mul(7)))
                .collect();
            r.push(f.side, f.pos, &data).unwrap();
            let m = &mut model[if f.side == Side::Caller { 0 } else { 1 }];
            let end = f.pos as usize + f.len;
            if m.len() < end { m.resize(end, 0); }
            m[f.pos as usize..end].copy_from_slice(&data);
        }
        prop_assert_eq!(r.late_samples(Side::Caller), 0);
        prop_assert_eq!(r.late_samples(Side::Agent), 0);
        let total = model[0].len().max(model[1].len());
        model[0].resize(total, 0);
        model[1].resize(total, 0);
        let (left, right) = channels(r);
        prop_assert_eq!(left, model[0].clone());
        prop_assert_eq!(right, model[1].clone());
    }
}
