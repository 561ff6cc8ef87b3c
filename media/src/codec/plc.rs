//! Packet-loss concealment for waveform codecs, after ITU-T G.711
//! Appendix I.
//!
//! The algorithm is the Appendix's: a 48.75 ms history, a pitch estimate by
//! normalised cross-correlation over 5–15 ms lags (coarse on a decimated
//! grid, then fine), a pitch buffer replayed period by period with a
//! quarter-period overlap-add where it wraps, one more period folded in at
//! 10 ms and at 20 ms into the erasure, a linear 20 %-per-10 ms fade from
//! 10 ms on that reaches silence at 60 ms, and an overlap-add of the
//! concealment's continuation into the first good frame.
//!
//! One deliberate difference: the Appendix delays its output by 3.75 ms so
//! that, when a loss starts, it can rewrite the last quarter period it has
//! not yet played. That delay would shift every G.711 stream by 30 samples
//! even when nothing is lost, so this version runs with zero delay and
//! instead bends the start of the replay: it is offset by the pitch
//! prediction error of the last real sample, fading to no offset over a
//! quarter period, which continues the real signal's level and slope.
//!
//! A second addition: the replay is scaled by the normalised correlation at
//! the chosen pitch lag (clamped to [0, 1]), which is the gain that
//! minimises the expected error of predicting the next period from the last.
//! Strongly voiced speech (correlation near 1) is replayed at full level, as
//! in the Appendix; noise-like sounds, which repeat badly, are replayed
//! quieter instead of as a buzz. The scaling fades in with the start
//! overlap, so it adds no step.
//!
//! All lengths are the Appendix's 8 kHz values scaled to the sample rate, so
//! the same code serves 8 kHz G.711 and wideband audio.

/// Appendix I's 8 kHz constants; everything is scaled by `rate / 8000`.
mod at_8k {
    /// Shortest pitch period searched (200 Hz).
    pub const PITCH_MIN: usize = 40;
    /// Longest pitch period searched (66.7 Hz).
    pub const PITCH_MAX: usize = 120;
    /// Correlation window: 20 ms.
    pub const CORR_LEN: usize = 160;
    /// Decimation of the coarse pitch search.
    pub const NDEC: usize = 2;
    /// Frame of the erasure bookkeeping: 10 ms.
    pub const FRAME: usize = 80;
    /// Growth of the end-of-erasure overlap per 10 ms lost: 4 ms.
    pub const EOVERLAP_INCR: usize = 32;
}

/// Floor on the correlation window's energy, so near-silence does not make
/// the normalised correlation blow up (Appendix I `CORRMINPOWER`, for the
/// 80 products of the coarse search).
const CORR_MIN_POWER: f64 = 250.0;

/// Attenuation per 10 ms once the erasure is longer than 10 ms.
const ATTEN_PER_FRAME: f32 = 0.2;

/// Sample rates the concealer supports: multiples of 8 kHz.
const RATES: [u32; 5] = [8000, 16_000, 24_000, 32_000, 48_000];

/// G.711 Appendix I style packet-loss concealment state for one stream.
///
/// Feed every decoded frame to [`good_frame`](Plc::good_frame) and ask
/// [`conceal`](Plc::conceal) for audio when a frame is missing. Frame sizes
/// are free: the erasure bookkeeping counts samples, not calls.
#[derive(Debug, Clone)]
pub struct Plc {
    rate: u32,
    /// 10 ms in samples.
    frame: usize,
    pitch_min: usize,
    pitch_max: usize,
    corr_len: usize,
    ndec: usize,
    eoverlap_incr: usize,
    /// The last `history.len()` samples output, real or concealed.
    history: Vec<i16>,
    /// Float copy of the history taken when a loss starts; its tail is the
    /// pitch buffer that gets replayed.
    pitchbuf: Vec<f32>,
    /// The original last quarter period, kept to redo the wrap overlap each
    /// time the pitch buffer grows.
    lastq: Vec<f32>,
    /// Signal being faded out while the replay fades in.
    ola: Vec<f32>,
    ola_len: usize,
    ola_pos: usize,
    /// Samples concealed in the current erasure; 0 when not concealing.
    lost: usize,
    pitch: usize,
    poverlap: usize,
    /// Read position within the pitch buffer.
    poffset: usize,
    /// Current pitch buffer length (1, 2 or 3 periods).
    pitchblen: usize,
    /// Whether `pitch` has been estimated since the last reset.
    have_pitch: bool,
    /// Level of the replay relative to the history: the pitch correlation.
    voicing: f32,
}

impl Plc {
    /// A concealer for audio at `rate` Hz; `None` unless `rate` is 8, 16,
    /// 24, 32 or 48 kHz.
    pub fn new(rate: u32) -> Option<Plc> {
        if !RATES.contains(&rate) {
            return None;
        }
        let k = (rate / 8000) as usize;
        let pitch_max = at_8k::PITCH_MAX * k;
        let overlap_max = pitch_max / 4;
        let hist_len = 3 * pitch_max + overlap_max;
        Some(Plc {
            rate,
            frame: at_8k::FRAME * k,
            pitch_min: at_8k::PITCH_MIN * k,
            pitch_max,
            corr_len: at_8k::CORR_LEN * k,
            ndec: at_8k::NDEC * k,
            eoverlap_incr: at_8k::EOVERLAP_INCR * k,
            history: vec![0; hist_len],
            pitchbuf: vec![0.0; hist_len],
            lastq: vec![0.0; overlap_max],
            ola: vec![0.0; overlap_max],
            ola_len: 0,
            ola_pos: 0,
            lost: 0,
            pitch: pitch_max,
            poverlap: 0,
            poffset: 0,
            pitchblen: pitch_max,
            have_pitch: false,
            voicing: 1.0,
        })
    }

    /// The sample rate this concealer was built for.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// The pitch period, in samples, estimated when the latest loss began.
    pub fn pitch(&self) -> Option<usize> {
        self.have_pitch.then_some(self.pitch)
    }

    /// Whether the last call was [`conceal`](Plc::conceal), i.e. the next
    /// good frame will be cross-faded.
    pub fn is_concealing(&self) -> bool {
        self.lost > 0
    }

    /// Forgets the history, as at the start of a new stream.
    pub fn reset(&mut self) {
        self.history.fill(0);
        self.lost = 0;
        self.ola_len = 0;
        self.have_pitch = false;
    }

    /// Records a correctly received frame. After a loss, the concealment's
    /// continuation is first cross-faded into the start of `frame` (which is
    /// why it is `&mut`), so playback does not click.
    pub fn good_frame(&mut self, frame: &mut [i16]) {
        if self.lost > 0 {
            // The longer the gap, the further the replay has drifted from the
            // talker, so the longer the cross-fade (Appendix I).
            let erased_frames = self.lost.div_ceil(self.frame);
            let len = (self.poverlap + (erased_frames - 1) * self.eoverlap_incr)
                .min(self.frame)
                .min(frame.len());
            let step = 1.0 / len as f32;
            for (i, s) in frame[..len].iter_mut().enumerate() {
                let tail = self.next_sample();
                let w = (i + 1) as f32 * step;
                *s = to_i16((1.0 - w) * tail + w * *s as f32);
            }
            self.lost = 0;
            self.ola_len = 0;
        }
        self.push_history(frame);
    }

    /// Fills `out` with concealment for lost audio continuing the stream.
    pub fn conceal(&mut self, out: &mut [i16]) {
        for s in out.iter_mut() {
            *s = to_i16(self.next_sample());
        }
        self.push_history(out);
    }

    /// The next concealment sample, advancing the erasure by one sample.
    fn next_sample(&mut self) -> f32 {
        let n = self.lost;
        self.lost += 1;
        if n == 0 {
            self.start_erasure();
        } else if n.is_multiple_of(self.frame) && (n / self.frame == 1 || n / self.frame == 2) {
            self.add_period();
        }
        if n >= 6 * self.frame {
            return 0.0;
        }
        let mut s = self.read_pitchbuf() * self.voicing;
        if self.ola_pos < self.ola_len {
            let w = (self.ola_pos + 1) as f32 / self.ola_len as f32;
            s = (1.0 - w) * self.ola[self.ola_pos] + w * s;
            self.ola_pos += 1;
        }
        s * self.gain(n)
    }

    /// Linear fade: full level for the first 10 ms, then −20 % per 10 ms,
    /// reaching zero at 60 ms.
    fn gain(&self, n: usize) -> f32 {
        if n < self.frame {
            1.0
        } else {
            let g = 1.0 - ATTEN_PER_FRAME * (n - self.frame) as f32 / self.frame as f32;
            g.max(0.0)
        }
    }

    fn start_erasure(&mut self) {
        let end = self.history.len();
        for (f, &h) in self.pitchbuf.iter_mut().zip(&self.history) {
            *f = h as f32;
        }
        self.pitch = self.find_pitch();
        self.voicing = self.voicing(self.pitch);
        self.have_pitch = true;
        self.poverlap = self.pitch / 4;
        let pov = self.poverlap;
        self.lastq[..pov].copy_from_slice(&self.pitchbuf[end - pov..end]);
        self.poffset = 0;
        self.pitchblen = self.pitch;
        self.smooth_wrap();
        // Zero-delay start. The replay begins one period back, so its first
        // sample follows the last real one up to the pitch prediction error
        // `e` of that last sample. Start the replay offset by `e` and fade
        // the offset out over a quarter period: the join then repeats the
        // slope the signal had one period earlier, with no step.
        let e = f32::from(self.history[end - 1]) - f32::from(self.history[end - 1 - self.pitch]);
        let start = end - self.pitch;
        for i in 0..pov {
            self.ola[i] = self.pitchbuf[start + i] + e;
        }
        self.ola_len = pov;
        self.ola_pos = 0;
    }

    /// Folds one more (older) pitch period into the replay, so a long
    /// erasure does not sound like a buzzing single period.
    fn add_period(&mut self) {
        let pov = self.poverlap;
        let saved = self.poffset;
        for i in 0..pov {
            self.ola[i] = self.read_pitchbuf() * self.voicing;
        }
        self.poffset = saved;
        while self.poffset > self.pitch {
            self.poffset -= self.pitch;
        }
        self.pitchblen += self.pitch;
        self.smooth_wrap();
        self.ola_len = pov;
        self.ola_pos = 0;
    }

    /// Rewrites the pitch buffer's last quarter period to cross-fade into
    /// the samples just before its start, so replaying it round and round
    /// has no seam.
    fn smooth_wrap(&mut self) {
        let end = self.pitchbuf.len();
        let pov = self.poverlap;
        let before_start = end - self.pitchblen - pov;
        let step = 1.0 / pov as f32;
        for i in 0..pov {
            let w = (i + 1) as f32 * step;
            self.pitchbuf[end - pov + i] =
                (1.0 - w) * self.lastq[i] + w * self.pitchbuf[before_start + i];
        }
    }

    fn read_pitchbuf(&mut self) -> f32 {
        let start = self.pitchbuf.len() - self.pitchblen;
        let v = self.pitchbuf[start + self.poffset];
        self.poffset += 1;
        if self.poffset == self.pitchblen {
            self.poffset = 0;
        }
        v
    }

    /// The lag in `pitch_min..=pitch_max` whose window best matches the
    /// last `corr_len` samples by normalised cross-correlation: first on a
    /// grid decimated to 4 kHz, then sample by sample around the winner.
    fn find_pitch(&self) -> usize {
        let end = self.pitchbuf.len();
        let l = &self.pitchbuf[end - self.corr_len..end];
        // r[j..j + corr_len] lies pitch_max - j samples before l.
        let r = &self.pitchbuf[end - self.corr_len - self.pitch_max..end];
        let diff = self.pitch_max - self.pitch_min;
        let ndec = self.ndec;

        let norm_corr = |j: usize, step: usize, min_power: f64| {
            let (mut corr, mut energy) = (0.0f64, 0.0f64);
            for i in (0..self.corr_len).step_by(step) {
                let x = r[j + i] as f64;
                corr += x * l[i] as f64;
                energy += x * x;
            }
            corr / energy.max(min_power).sqrt()
        };

        let coarse_power = CORR_MIN_POWER;
        let mut best = 0;
        let mut best_corr = f64::NEG_INFINITY;
        for j in (0..=diff).step_by(ndec) {
            let c = norm_corr(j, ndec, coarse_power);
            // `>=` prefers shorter lags on ties, so a multiple of the
            // period never wins over the period itself.
            if c >= best_corr {
                best_corr = c;
                best = j;
            }
        }

        // The fine search sums ndec times as many products.
        let fine_power = CORR_MIN_POWER * ndec as f64;
        let lo = best.saturating_sub(ndec - 1);
        let hi = (best + ndec - 1).min(diff);
        let mut fine_best = lo;
        let mut fine_corr = f64::NEG_INFINITY;
        for j in lo..=hi {
            let c = norm_corr(j, 1, fine_power);
            if c > fine_corr {
                fine_corr = c;
                fine_best = j;
            }
        }
        self.pitch_max - fine_best
    }

    /// Normalised correlation between the last `corr_len` samples and the
    /// ones `lag` earlier: how well repeating the last period predicts the
    /// signal. Clamped to [0, 1].
    fn voicing(&self, lag: usize) -> f32 {
        let end = self.pitchbuf.len();
        let l = &self.pitchbuf[end - self.corr_len..end];
        let r = &self.pitchbuf[end - self.corr_len - lag..end - lag];
        let (mut c, mut el, mut er) = (0.0f64, 0.0f64, 0.0f64);
        for (&x, &y) in l.iter().zip(r) {
            c += x as f64 * y as f64;
            el += x as f64 * x as f64;
            er += y as f64 * y as f64;
        }
        let floor = CORR_MIN_POWER * self.ndec as f64;
        (c / (el.max(floor) * er.max(floor)).sqrt()).clamp(0.0, 1.0) as f32
    }

    fn push_history(&mut self, frame: &[i16]) {
        let len = self.history.len();
        if frame.len() >= len {
            self.history.copy_from_slice(&frame[frame.len() - len..]);
        } else {
            self.history.copy_within(frame.len().., 0);
            self.history[len - frame.len()..].copy_from_slice(frame);
        }
    }
}

fn to_i16(x: f32) -> i16 {
    // `as` saturates, which is the clipping wanted here.
    x.round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(period: f64, len: usize) -> Vec<i16> {
        (0..len)
            .map(|n| {
                let ph = 2.0 * std::f64::consts::PI * n as f64 / period;
                (8000.0 * ph.sin() + 3000.0 * (2.0 * ph).sin() + 1500.0 * (3.0 * ph).cos()) as i16
            })
            .collect()
    }

    #[test]
    fn rejects_odd_rates() {
        assert!(Plc::new(44_100).is_none());
        assert!(Plc::new(11_025).is_none());
        assert!(Plc::new(8000).is_some());
        assert!(Plc::new(48_000).is_some());
    }

    #[test]
    fn finds_integer_pitch_at_every_rate() {
        for rate in RATES {
            let k = (rate / 8000) as usize;
            // Short periods may be found as their double (Appendix I keeps
            // the best correlation, and a doubled period ties): an equally
            // good buffer to replay. Long ones must be exact, odd or not.
            for period in [45 * k, 46 * k, 64 * k, 101 * k] {
                let mut plc = Plc::new(rate).unwrap();
                let mut sig = tone(period as f64, 800 * k);
                plc.good_frame(&mut sig);
                let mut out = vec![0; 10];
                plc.conceal(&mut out);
                let found = plc.pitch().unwrap();
                assert_eq!(
                    found % period,
                    0,
                    "rate {rate} period {period} found {found}"
                );
                if 2 * period > plc.pitch_max {
                    assert_eq!(found, period, "rate {rate}");
                }
            }
        }
    }

    #[test]
    fn silence_conceals_to_silence() {
        let mut plc = Plc::new(8000).unwrap();
        let mut out = vec![1; 480];
        plc.conceal(&mut out);
        assert!(out.iter().all(|&s| s == 0));
    }

    #[test]
    fn history_keeps_the_latest_samples() {
        let mut plc = Plc::new(8000).unwrap();
        let len = plc.history.len();
        let mut a: Vec<i16> = (0..100).collect();
        plc.good_frame(&mut a);
        assert_eq!(&plc.history[len - 100..], &a[..]);
        let mut b: Vec<i16> = (0..1000).collect();
        plc.good_frame(&mut b);
        assert_eq!(&plc.history[..], &b[1000 - len..]);
    }
}
