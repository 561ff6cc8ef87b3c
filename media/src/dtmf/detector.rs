//! Goertzel-bank DTMF detector meeting ITU-T Q.24.
//!
//! # How it decides
//!
//! The input is cut into overlapping analysis windows of 12.75 ms (102
//! samples at 8 kHz, 204 at 16 kHz: the block Asterisk's `dsp.c` and spandsp
//! use, because its Goertzel bin width of 78.4 Hz puts each low-group
//! neighbour, 73-89 Hz away, close to a null) advanced by a quarter window
//! (≈3.2 ms). Each window is classified as "digit d" or "nothing" by these
//! guards, cheapest first:
//!
//! 1. **Energy floor**: the eight Goertzel bins (rectangular window) must
//!    hold a plausible tone in each group.
//! 2. **Dominance**: the strongest bin of each group must beat every other
//!    bin of its group (cheap pre-filter, refined in 4).
//! 3. **Frequency**: the frequency of each chosen tone is *measured* (not
//!    inferred from bin energy, which cannot tell 1.5 % from 3.5 % at this
//!    block length: a 24 Hz error is only 0.3 bin) and must lie within
//!    [`MAX_FREQ_DEV`] of nominal.
//! 4. **Two-tone fit**: a least-squares fit of two sinusoids at the measured
//!    frequencies gives leak-free tone amplitudes and the fraction of the
//!    window's energy they explain (signal-to-total ratio). That fraction
//!    must reach [`MIN_EXPLAINED`]; it rejects speech and noise, and since a
//!    tone covering only part of the window explains only that part, it is
//!    also what makes duration measurement independent of level. With the
//!    two tones removed, no other DTMF frequency may come within
//!    [`DOMINANCE_DB`] of them.
//! 5. **Level**: each tone at least [`MIN_LEVEL_DBM0`].
//! 6. **Twist**: high minus low level within [`MAX_TWIST_NEG_DB`] ..
//!    [`MAX_TWIST_POS_DB`].
//! 7. **Second harmonics**: nothing within [`HARMONIC_DB`] at twice either
//!    tone (speech is harmonic-rich, DTMF is not).
//!
//! A digit starts after [`START_HITS`] consecutive windows of it and ends
//! after [`END_MISSES`] consecutive windows without it (see their docs for
//! why these counts give Q.24's 40 ms / 23 ms / 10 ms figures).

use std::f64::consts::{PI, TAU};

use super::{Digit, DtmfError, HIGH_GROUP_HZ, LOW_GROUP_HZ};
use crate::level::dbm0_to_peak;

/// Analysis window length, seconds (102 samples at 8 kHz).
const WINDOW_SECONDS: f64 = 0.01275;

/// Margin by which each tone must beat every other frequency of its group
/// once both fitted tones are removed (so leakage cannot eat the margin).
/// A real digit leaves only noise there (−34 dB at 20 dB SNR); a second
/// key or speech harmonics near another row or column do not.
pub const DOMINANCE_DB: f64 = 10.0;

/// Margin of the cheap raw-bin pre-filter (see `classify`).
const PRE_DOMINANCE_DB: f64 = 3.0;

/// Largest accepted frequency error, as a fraction of nominal. Q.24 asks to
/// accept ±1.5 % and reject beyond ±3.5 %; the midpoint leaves 1 % (7 Hz at
/// 697 Hz) on each side for measurement error, which stays under ±4 Hz even
/// with +4 dB twist leakage between 941 and 1209 Hz.
pub const MAX_FREQ_DEV: f64 = 0.025;

/// Least fraction of a window's energy the two-tone fit must explain. It
/// sets both talk-off immunity and how much of a window a tone must cover
/// (a gated tone covering a fraction p explains p). 0.7 passes a tone in
/// white noise at 6 dB SNR and finds 82 % of digits keyed over speech of the
/// same level (0.8 found 72 %), while still not one window of the
/// 2 × 15 minute speech corpus of the talk-off test passes all guards; a
/// window 30 % empty fails, which keeps the duration arithmetic of
/// [`START_HITS`] safe.
pub const MIN_EXPLAINED: f64 = 0.7;

/// Weakest accepted tone, dBm0. Asterisk's floor is about −42 dBm0 per tone;
/// −40 keeps 10 dB below the −30 dBm0 we want to accept and 15 dB above the
/// −55 dBm0 at which nothing may be detected.
pub const MIN_LEVEL_DBM0: f64 = -40.0;

/// Largest accepted positive twist (high group stronger), dB. Q.24 asks to
/// accept +4 dB; 6 dB gives 2 dB of margin and still rejects +8 dB.
pub const MAX_TWIST_POS_DB: f64 = 6.0;

/// Largest accepted negative twist (high group weaker), dB, as a positive
/// number. Q.24 asks to accept −8 dB; 10 dB gives 2 dB margin, rejects −12.
pub const MAX_TWIST_NEG_DB: f64 = 10.0;

/// Each tone's second harmonic (in what is left after removing the two
/// tones) must be this far below the tone. DTMF sources have none; voiced
/// speech, whose energy sits in harmonics of the pitch, usually does.
pub const HARMONIC_DB: f64 = 12.0;

/// Consecutive windows of the same digit needed to report its start.
/// Windows advance by a hop H ≈ 3.2 ms and pass once a tone covers 70 % of
/// their length N = 12.75 ms, so a tone of L ms gives passing windows whose
/// starts span L − N + 2·0.3·N = L − 5.1 ms: at most ⌊17.9 / 3.2⌋ + 1 = 6
/// windows for the 23 ms tones Q.24 says to reject, at least 10 for the
/// 40 ms tones it says to accept. Seven confirms a digit 33-34 ms after it
/// begins (target: 45 ms); tones from about 26 ms up are accepted.
pub const START_HITS: u32 = 7;

/// Consecutive windows without the digit needed to report its end. A window
/// fails once a gap covers 30 % of it, so a 10 ms interruption spoils at
/// most ⌊(10 + 12.75 − 7.65) / 3.2⌋ + 1 = 5 windows and must not end the
/// digit, while a 40 ms pause spoils at least 13 and must. Ten is between,
/// and reports the end about 32 ms after the tone stops.
pub const END_MISSES: u32 = 10;

/// A digit event. Positions count samples since the stream started (or since
/// the last [`DtmfDetector::reset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfEvent {
    /// A digit has been confirmed. `at` is the estimated position where its
    /// tone began; the event itself is emitted about 33-34 ms later (in the
    /// `process` call that feeds the confirming sample).
    DigitStart {
        /// The digit.
        digit: Digit,
        /// Estimated first sample of the tone.
        at: u64,
    },
    /// The digit's tone has stopped. `at` is the estimated position just
    /// past its last sample; the event is emitted about 32 ms later.
    DigitEnd {
        /// The digit.
        digit: Digit,
        /// Estimated position just past the tone's last sample.
        at: u64,
        /// Estimated tone length in samples (`at` minus the start's `at`).
        duration: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Active {
    digit: Digit,
    start: u64,
    last_hit_end: u64,
    misses: u32,
}

/// A streaming DTMF detector for 16-bit PCM at 8-48 kHz.
///
/// Feed it audio of any chunk length with [`process`](Self::process); it
/// appends [`DtmfEvent`]s to a caller-owned `Vec`. No allocation happens
/// after construction (as long as the event `Vec` has room).
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    sample_rate: u32,
    n: usize,
    hop: usize,
    buf: Vec<f32>,
    filled: usize,
    pos: u64,
    /// Nominal angular frequencies (rad/sample): 4 rows then 4 columns.
    omega: [f64; 8],
    /// Goertzel coefficients 2·cos(ω).
    coef: [f32; 8],
    /// `cos(ω_k n)` and `sin(ω_k n)` for the windowed estimator, k-major.
    cos_tab: Vec<f32>,
    sin_tab: Vec<f32>,
    /// sin²(π(n+1)/N): a Hann window that is zero at n = −1 and n = N−1, so
    /// that it and its one-sample delay share support (see `measure`).
    hann: Vec<f32>,
    min_amp: f64,
    /// Goertzel energy below which a group cannot hold a tone of
    /// `min_amp` (pre-filter only; the real level check uses the fit).
    min_bin_energy: f32,
    start_bias: u64,
    end_bias: u64,
    active: Option<Active>,
    cand: Option<Digit>,
    run: u32,
    run_start: u64,
}

impl DtmfDetector {
    /// A detector for `sample_rate` Hz audio (8000 to 48000).
    pub fn new(sample_rate: u32) -> Result<Self, DtmfError> {
        if !(8000..=48000).contains(&sample_rate) {
            return Err(DtmfError::UnsupportedRate(sample_rate));
        }
        let rate = f64::from(sample_rate);
        let n = (rate * WINDOW_SECONDS).round() as usize;
        let hop = (n + 2) / 4;
        let mut omega = [0.0; 8];
        for (i, f) in LOW_GROUP_HZ.iter().chain(HIGH_GROUP_HZ.iter()).enumerate() {
            omega[i] = TAU * f / rate;
        }
        let coef = omega.map(|w| (2.0 * w.cos()) as f32);
        let mut cos_tab = Vec::with_capacity(8 * n);
        let mut sin_tab = Vec::with_capacity(8 * n);
        for w in omega {
            for i in 0..n {
                cos_tab.push((w * i as f64).cos() as f32);
                sin_tab.push((w * i as f64).sin() as f32);
            }
        }
        let hann = (0..n)
            .map(|i| (PI * (i + 1) as f64 / n as f64).sin().powi(2) as f32)
            .collect();
        let min_amp = dbm0_to_peak(MIN_LEVEL_DBM0);
        // A tone of amplitude A filling the window gives (A·N/2)² in its bin;
        // allow for the 4 dB a 2.5 % offset costs at 1633 Hz and a window
        // only 70 % filled.
        let full = (min_amp * n as f64 / 2.0).powi(2);
        let min_bin_energy = (full * 0.15) as f32;
        // Windows pass once a tone covers (1 − MIN_EXPLAINED) less than all
        // of them, so the first passing window starts about that much before
        // the tone, and the last ends that much after it.
        let slack = ((1.0 - MIN_EXPLAINED) * n as f64 / 2.0).round() as u64;
        Ok(DtmfDetector {
            sample_rate,
            n,
            hop,
            // Room for two consecutive windows (see `process`).
            buf: vec![0.0; n + hop],
            filled: 0,
            pos: 0,
            omega,
            coef,
            cos_tab,
            sin_tab,
            hann,
            min_amp,
            min_bin_energy,
            start_bias: slack,
            end_bias: slack,
            active: None,
            cand: None,
            run: 0,
            run_start: 0,
        })
    }

    /// The sample rate this detector was built for.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Samples consumed since the start (or the last reset).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The digit currently sounding, if one has been confirmed and not ended.
    pub fn active_digit(&self) -> Option<Digit> {
        self.active.map(|a| a.digit)
    }

    /// Forgets everything: a new stream starting at position 0.
    pub fn reset(&mut self) {
        self.filled = 0;
        self.pos = 0;
        self.active = None;
        self.cand = None;
        self.run = 0;
    }

    /// Ends a digit still sounding at the end of the stream (reporting it as
    /// ending at the last window that saw it).
    pub fn flush(&mut self, events: &mut Vec<DtmfEvent>) {
        if let Some(a) = self.active.take() {
            self.emit_end(a, events);
        }
        self.cand = None;
        self.run = 0;
    }

    /// Feeds `samples` (any length) and appends any events they complete.
    ///
    /// Windows are analysed two at a time when both are complete (their
    /// filter banks then run interleaved, hiding each other's latency), and
    /// one at a time only for a last window the call completes alone. Every
    /// window is still classified, in order, by the call that feeds its last
    /// sample, so events are exactly those of a window-by-window detector.
    pub fn process(&mut self, samples: &[i16], events: &mut Vec<DtmfEvent>) {
        let (n, hop) = (self.n, self.hop);
        let cap = n + hop;
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (cap - self.filled).min(rest.len());
            for (d, &s) in self.buf[self.filled..self.filled + take]
                .iter_mut()
                .zip(rest)
            {
                *d = f32::from(s);
            }
            rest = &rest[take..];
            self.filled += take;
            self.pos += take as u64;
            if self.filled == cap {
                let (a, b) = self.classify_pair();
                let win_a = self.pos - cap as u64;
                self.step(a, win_a, events);
                self.step(b, win_a + hop as u64, events);
                self.buf.copy_within(2 * hop.., 0);
                self.filled = cap - 2 * hop;
            }
        }
        // At most one more window is complete (a call starts with fewer than
        // `n` samples buffered, and any pair was consumed above).
        if self.filled >= n {
            let hit = self.why(&self.buf[..n]).ok();
            let win_start = self.pos - self.filled as u64;
            self.step(hit, win_start, events);
            self.buf.copy_within(hop..self.filled, 0);
            self.filled -= hop;
        }
    }

    fn emit_end(&self, a: Active, events: &mut Vec<DtmfEvent>) {
        let at = a.last_hit_end.saturating_sub(self.end_bias).max(a.start);
        events.push(DtmfEvent::DigitEnd {
            digit: a.digit,
            at,
            duration: at - a.start,
        });
    }

    /// Advances the start/end state machine by one window.
    fn step(&mut self, hit: Option<Digit>, win_start: u64, events: &mut Vec<DtmfEvent>) {
        let win_end = win_start + self.n as u64;
        if let Some(a) = &mut self.active
            && hit == Some(a.digit)
        {
            a.misses = 0;
            a.last_hit_end = win_end;
            self.cand = None;
            self.run = 0;
            return;
        }
        match hit {
            Some(d) if self.cand == Some(d) => self.run += 1,
            Some(d) => {
                self.cand = Some(d);
                self.run = 1;
                self.run_start = win_start;
            }
            None => {
                self.cand = None;
                self.run = 0;
            }
        }
        if let Some(mut a) = self.active {
            a.misses += 1;
            // A different digit confirmed before the pause was long enough
            // still ends this one (digits keyed without a gap).
            if a.misses >= END_MISSES || self.run >= START_HITS {
                self.emit_end(a, events);
                self.active = None;
            } else {
                self.active = Some(a);
            }
        }
        if self.active.is_none()
            && self.run >= START_HITS
            && let Some(digit) = self.cand.take()
        {
            let start = self.run_start + self.start_bias;
            events.push(DtmfEvent::DigitStart { digit, at: start });
            self.active = Some(Active {
                digit,
                start,
                last_hit_end: win_end,
                misses: 0,
            });
            self.run = 0;
        }
    }

    /// Classifies the two windows `buf[..n]` and `buf[hop..hop + n]`,
    /// exactly as [`why`](Self::why) would one by one.
    fn classify_pair(&self) -> (Option<Digit>, Option<Digit>) {
        let a = &self.buf[..self.n];
        let b = &self.buf[self.hop..self.hop + self.n];
        let (ta, tb) = (energy(a), energy(b));
        match (self.too_quiet(ta), self.too_quiet(tb)) {
            (false, false) => {
                let (ea, eb) = goertzel_bank2(a, b, &self.coef);
                (self.decide(a, ta, &ea).ok(), self.decide(b, tb, &eb).ok())
            }
            (false, true) => (self.why(a).ok(), None),
            (true, false) => (None, self.why(b).ok()),
            (true, true) => (None, None),
        }
    }

    /// Two tones at the floor carry N·A² of energy; with the fit needing
    /// MIN_EXPLAINED of the total, a window of less `total` cannot pass.
    fn too_quiet(&self, total: f64) -> bool {
        total < self.n as f64 * self.min_amp * self.min_amp * MIN_EXPLAINED
    }

    /// Classifies window `x`, saying which guard rejected it.
    fn why(&self, x: &[f32]) -> Result<Digit, Reject> {
        let total = energy(x);
        if self.too_quiet(total) {
            return Err(Reject::Energy);
        }
        self.decide(x, total, &goertzel_bank(x, &self.coef))
    }

    /// The guards after the energy floor, given window `x`'s energy `total`
    /// and its eight Goertzel energies `e`.
    fn decide(&self, x: &[f32], total: f64, e: &[f32; 8]) -> Result<Digit, Reject> {
        let r = argmax(&e[..4]);
        let c = 4 + argmax(&e[4..]);
        if e[r] < self.min_bin_energy || e[c] < self.min_bin_energy {
            return Err(Reject::Energy);
        }
        // Cheap pre-filter: with both tones fitted and removed below, the
        // real dominance test is leak-free; here a loose margin only sheds
        // work on speech. Leakage from the other group and from a 1.5 %
        // offset can bring a neighbour within 7 dB, so 3 dB keeps 4 dB spare.
        let pre = 10f32.powf((PRE_DOMINANCE_DB / 10.0) as f32);
        let dominates = |best: usize, group: std::ops::Range<usize>| {
            group.filter(|&k| k != best).all(|k| e[best] >= pre * e[k])
        };
        if !dominates(r, 0..4) || !dominates(c, 4..8) {
            return Err(Reject::Dominance);
        }
        let [dr, dc] = self.measure_pair(x, [r, c]);
        let dr = dr.ok_or(Reject::Frequency)?;
        let dc = dc.ok_or(Reject::Frequency)?;
        if (dr / self.omega[r]).abs() > MAX_FREQ_DEV || (dc / self.omega[c]).abs() > MAX_FREQ_DEV {
            return Err(Reject::Frequency);
        }
        let wr = self.omega[r] + dr;
        let wc = self.omega[c] + dc;
        let fit = fit_two_tones(x, wr, wc).ok_or(Reject::Fit)?;
        if fit.explained < MIN_EXPLAINED * total {
            return Err(Reject::Fit);
        }
        if fit.amp[0] < self.min_amp || fit.amp[1] < self.min_amp {
            return Err(Reject::Level);
        }
        let twist = 20.0 * (fit.amp[1] / fit.amp[0]).log10();
        if !(-MAX_TWIST_NEG_DB..=MAX_TWIST_POS_DB).contains(&twist) {
            return Err(Reject::Twist);
        }
        // What is left once the two tones are removed, seen at the other six
        // DTMF frequencies and at both second harmonics. Removing the tones
        // first matters: their leakage into these bins (up to −7 dB at a
        // neighbour, −6 dB from the 1336 Hz tone into 2×697 Hz) would
        // otherwise swamp the comparison.
        let mut coefs = [0f32; 8];
        for (j, k) in (0..8).filter(|&k| k != r && k != c).enumerate() {
            coefs[j] = self.coef[k];
        }
        let harm_ok = [2.0 * wr, 2.0 * wc].map(|w| w < PI * 0.95);
        coefs[6] = (2.0 * (2.0 * wr).cos()) as f32;
        coefs[7] = (2.0 * (2.0 * wc).cos()) as f32;
        let left = residual_goertzel(x, &fit, wr, wc, &coefs);
        // In Goertzel units a fitted tone of amplitude A holds (A·N/2)².
        let half_n = self.n as f64 / 2.0;
        let tone_e = [(fit.amp[0] * half_n).powi(2), (fit.amp[1] * half_n).powi(2)];
        let dom = db_to_ratio(-DOMINANCE_DB);
        for (j, k) in (0..8).filter(|&k| k != r && k != c).enumerate() {
            let group = usize::from(k >= 4);
            if left[j] > tone_e[group] * dom {
                return Err(Reject::Dominance);
            }
        }
        let harm = db_to_ratio(-HARMONIC_DB);
        for g in 0..2 {
            if harm_ok[g] && left[6 + g] > tone_e[g] * harm {
                return Err(Reject::Harmonic);
            }
        }
        Digit::from_row_col(r, c - 4).ok_or(Reject::Energy)
    }

    /// Measures the frequency error (rad/sample) of the tone nearest bin `k`.
    ///
    /// With W = Σ w(n)·x(n)·e^{−jωn} and Y the same with the window delayed
    /// one sample, a tone at ω+δ gives exactly Y = e^{jδ}·W (the window is
    /// zero at both ends, so the shift loses nothing), hence δ = arg(Y·W̄).
    /// The Hann taper keeps leakage from the other group's tone at −41 dB
    /// (941 vs 1209 Hz) so the estimate stays within a few Hz.
    ///
    /// Both tones are measured in one pass (two independent sets of
    /// accumulators hide each other's add latency); each set does exactly
    /// the operations of a pass of its own.
    fn measure_pair(&self, x: &[f32], ks: [usize; 2]) -> [Option<f64>; 2] {
        let n = self.n;
        let (x, hann) = (&x[..n], &self.hann[..n]);
        let cos = ks.map(|k| &self.cos_tab[k * n..(k + 1) * n]);
        let sin = ks.map(|k| &self.sin_tab[k * n..(k + 1) * n]);
        // Per tone: W real, W imaginary, Y real, Y imaginary.
        let mut acc = [[0f32; 4]; 2];
        let mut prev_w = 0f32;
        for i in 0..n {
            let w = hann[i];
            for j in 0..2 {
                let c = x[i] * cos[j][i];
                let s = -x[i] * sin[j][i];
                let a = &mut acc[j];
                a[0] += w * c;
                a[1] += w * s;
                a[2] += prev_w * c;
                a[3] += prev_w * s;
            }
            prev_w = w;
        }
        acc.map(|[wr, wi, yr, yi]| {
            let (wr, wi, yr, yi) = (f64::from(wr), f64::from(wi), f64::from(yr), f64::from(yi));
            // Y·conj(W)
            let re = yr * wr + yi * wi;
            let im = yi * wr - yr * wi;
            if re == 0.0 && im == 0.0 {
                return None;
            }
            Some(im.atan2(re))
        })
    }

    /// [`measure_pair`](Self::measure_pair) for one tone.
    #[cfg(test)]
    fn measure(&self, x: &[f32], k: usize) -> Option<f64> {
        self.measure_pair(x, [k, k])[0]
    }
}

/// Which guard turned a window down (for diagnostics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reject {
    Energy,
    Dominance,
    Frequency,
    Fit,
    Level,
    Twist,
    Harmonic,
}

fn db_to_ratio(db: f64) -> f64 {
    10f64.powf(db / 10.0)
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &e) in v.iter().enumerate() {
        if e > v[best] {
            best = i;
        }
    }
    best
}

/// Σ x², exactly. Samples are integers below 2¹⁵, so each square is an
/// integer below 2³⁰ and any partial sum of a window stays below 2⁵³: f64
/// adds are exact in any order, which lets the eight independent lanes here
/// (vectorised, no serial add chain) give the same bits as a plain sum.
fn energy(x: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f64::from(v) * f64::from(v);
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum();
    acc.iter().sum::<f64>() + tail
}

/// Energies |X(ω_k)|² of `x` at the eight frequencies whose coefficients are
/// 2·cos(ω_k), all in one pass.
///
/// One Goertzel filter is a serial chain (each sample waits for the previous
/// state), so running the eight one after another is bound by latency. Here
/// the eight states advance together as arrays, which the compiler turns
/// into vector operations: eight chains for the latency of one. Each lane
/// performs exactly the operations, in the same order, of the single-filter
/// recurrence s₀ = x + c·s₁ − s₂, so the energies are bit for bit those of
/// eight separate filters (see the `fused_bank_matches_single_filters` test).
fn goertzel_bank(x: &[f32], coef: &[f32; 8]) -> [f32; 8] {
    goertzel_bank2(x, &[], coef).0
}

/// [`goertzel_bank`] of `a` and of `b` (empty, or as long as `a`), in one
/// pass: two independent sets of chains interleaved, so one set's latency
/// hides the other's.
fn goertzel_bank2(a: &[f32], b: &[f32], coef: &[f32; 8]) -> ([f32; 8], [f32; 8]) {
    let mut s1 = [0f32; 8];
    let mut s2 = [0f32; 8];
    let mut t1 = [0f32; 8];
    let mut t2 = [0f32; 8];
    if b.is_empty() {
        for &v in a {
            for k in 0..8 {
                let s0 = v + coef[k] * s1[k] - s2[k];
                s2[k] = s1[k];
                s1[k] = s0;
            }
        }
    } else {
        for (&v, &w) in a.iter().zip(b) {
            for k in 0..8 {
                let s0 = v + coef[k] * s1[k] - s2[k];
                s2[k] = s1[k];
                s1[k] = s0;
                let t0 = w + coef[k] * t1[k] - t2[k];
                t2[k] = t1[k];
                t1[k] = t0;
            }
        }
    }
    (
        goertzel_energy(&s1, &s2, coef),
        goertzel_energy(&t1, &t2, coef),
    )
}

/// |X|² from the final Goertzel states of each lane.
fn goertzel_energy(s1: &[f32; 8], s2: &[f32; 8], coef: &[f32; 8]) -> [f32; 8] {
    let mut e = [0f32; 8];
    for k in 0..8 {
        e[k] = s1[k] * s1[k] + s2[k] * s2[k] - coef[k] * s1[k] * s2[k];
    }
    e
}

struct Fit {
    /// Peak amplitudes of the (low, high) tones.
    amp: [f64; 2],
    /// Energy of `x` explained by the two tones (Σ of the fitted signal²).
    explained: f64,
    /// Coefficients of cos w1, sin w1, cos w2, sin w2.
    coef: [f64; 4],
}

/// Least-squares fit of a·cos(w1 n) + b·sin(w1 n) + c·cos(w2 n) + d·sin(w2 n)
/// to `x`. Unlike Goertzel magnitudes, the amplitudes carry no leakage from
/// the other tone, and the explained energy is the part of the window the
/// two-tone model accounts for.
fn fit_two_tones(x: &[f32], w1: f64, w2: f64) -> Option<Fit> {
    let (r1c, r1s) = (w1.cos(), w1.sin());
    let (r2c, r2s) = (w2.cos(), w2.sin());
    // Oscillators start at n = 0; f64 rotation stays exact to ~1e-13 over a
    // few hundred samples.
    let (mut c1, mut s1, mut c2, mut s2) = (1.0f64, 0.0f64, 1.0f64, 0.0f64);
    let mut g = [[0f64; 4]; 4];
    let mut b = [0f64; 4];
    for &v in x {
        let u = [c1, s1, c2, s2];
        let v = f64::from(v);
        for i in 0..4 {
            b[i] += v * u[i];
            for j in i..4 {
                g[i][j] += u[i] * u[j];
            }
        }
        (c1, s1) = (c1 * r1c - s1 * r1s, s1 * r1c + c1 * r1s);
        (c2, s2) = (c2 * r2c - s2 * r2s, s2 * r2c + c2 * r2s);
    }
    #[allow(clippy::needless_range_loop)] // mirrors a matrix triangle
    for i in 0..4 {
        for j in 0..i {
            g[i][j] = g[j][i];
        }
    }
    let a = solve4(g, b)?;
    let explained: f64 = a.iter().zip(&b).map(|(a, b)| a * b).sum();
    Some(Fit {
        amp: [a[0].hypot(a[1]), a[2].hypot(a[3])],
        explained,
        coef: a,
    })
}

/// Goertzel energies, at the eight frequencies given by `coefs`
/// (2·cos ω), of `x` minus the fitted two-tone signal.
fn residual_goertzel(x: &[f32], fit: &Fit, w1: f64, w2: f64, coefs: &[f32; 8]) -> [f64; 8] {
    let (r1c, r1s) = (w1.cos(), w1.sin());
    let (r2c, r2s) = (w2.cos(), w2.sin());
    let (mut c1, mut s1, mut c2, mut s2) = (1.0f64, 0.0f64, 1.0f64, 0.0f64);
    let a = fit.coef;
    let mut st1 = [0f32; 8];
    let mut st2 = [0f32; 8];
    for &v in x {
        let res = (f64::from(v) - (a[0] * c1 + a[1] * s1 + a[2] * c2 + a[3] * s2)) as f32;
        for k in 0..8 {
            let s0 = res + coefs[k] * st1[k] - st2[k];
            st2[k] = st1[k];
            st1[k] = s0;
        }
        (c1, s1) = (c1 * r1c - s1 * r1s, s1 * r1c + c1 * r1s);
        (c2, s2) = (c2 * r2c - s2 * r2s, s2 * r2c + c2 * r2s);
    }
    let mut e = [0f64; 8];
    for k in 0..8 {
        let (p, q, cf) = (f64::from(st1[k]), f64::from(st2[k]), f64::from(coefs[k]));
        e[k] = p * p + q * q - cf * p * q;
    }
    e
}

/// Solves the 4×4 system `g·a = b` by Gaussian elimination with partial
/// pivoting; `None` if it is singular.
fn solve4(mut g: [[f64; 4]; 4], mut b: [f64; 4]) -> Option<[f64; 4]> {
    for col in 0..4 {
        let p = (col..4).max_by(|&i, &j| g[i][col].abs().total_cmp(&g[j][col].abs()))?;
        if g[p][col].abs() < 1e-9 {
            return None;
        }
        g.swap(col, p);
        b.swap(col, p);
        for row in col + 1..4 {
            let f = g[row][col] / g[col][col];
            let pivot_row = g[col];
            for (dst, src) in g[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *dst -= f * src;
            }
            b[row] -= f * b[col];
        }
    }
    let mut a = [0f64; 4];
    for row in (0..4).rev() {
        let mut s = b[row];
        for k in row + 1..4 {
            s -= g[row][k] * a[k];
        }
        a[row] = s / g[row][row];
    }
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::super::{DtmfGenerator, ToneParams};
    use super::*;

    fn tone(rate: u32, d: Digit, p: ToneParams, ms: u32) -> Vec<i16> {
        let mut g = DtmfGenerator::new(rate, d, p).unwrap();
        let mut v = vec![0i16; (rate * ms / 1000) as usize];
        g.fill(&mut v);
        v
    }

    /// Energy |X(ω)|² of `x` at the frequency whose coefficient is 2·cos(ω):
    /// the textbook single-filter Goertzel the fused bank must reproduce.
    fn goertzel(x: &[f32], coef: f32) -> f32 {
        let (mut s1, mut s2) = (0f32, 0f32);
        for &v in x {
            let s0 = v + coef * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        s1 * s1 + s2 * s2 - coef * s1 * s2
    }

    #[test]
    fn fused_bank_matches_single_filters() {
        let mut seed = 0x9e37_79b9u32;
        let mut noise = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    f32::from((seed >> 16) as u16 as i16)
                })
                .collect()
        };
        for rate in [8000, 16000, 48000] {
            let det = DtmfDetector::new(rate).unwrap();
            let mut inputs = vec![noise(det.n), noise(det.n), vec![0.0; det.n]];
            inputs.push(vec![f32::from(i16::MIN); det.n]);
            for d in Digit::ALL {
                let p = ToneParams::level(-10.0).with_offsets(1.5, -1.5);
                inputs.push(
                    tone(rate, d, p, 30)[..det.n]
                        .iter()
                        .map(|&s| f32::from(s))
                        .collect(),
                );
            }
            let mut single_tone = vec![0.0; det.n];
            add_sine(&mut single_tone, rate, 1209.0, 20_000.0);
            // Windows hold converted i16 samples; `energy` relies on that.
            single_tone.iter_mut().for_each(|v| *v = v.round());
            inputs.push(single_tone);
            for x in &inputs {
                let fused = goertzel_bank(x, &det.coef);
                let (pa, pb) = goertzel_bank2(x, &inputs[1], &det.coef);
                let (qa, qb) = goertzel_bank2(&inputs[0], x, &det.coef);
                assert_eq!(
                    (pa.map(f32::to_bits), qb.map(f32::to_bits)),
                    (fused.map(f32::to_bits), fused.map(f32::to_bits))
                );
                assert_eq!(
                    (pb, qa),
                    (
                        goertzel_bank(&inputs[1], &det.coef),
                        goertzel_bank(&inputs[0], &det.coef)
                    )
                );
                for (k, (&f, &cf)) in fused.iter().zip(&det.coef).enumerate() {
                    let single = goertzel(x, cf);
                    let tol = 1e-4 * single.abs().max(1.0);
                    assert!((f - single).abs() <= tol, "{rate} bin {k}: {f} vs {single}");
                    // Stronger than asked of it: same operations per lane,
                    // so the same bits, hence the same decisions.
                    assert_eq!(f.to_bits(), single.to_bits(), "{rate} bin {k}");
                }
                let plain: f64 = x.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
                assert_eq!(energy(x), plain, "{rate}");
            }
            // A window shorter than one lane group and one that is not a
            // multiple of it exercise the tail.
            for n in [3, 13] {
                let x = &inputs[0][..n];
                let plain: f64 = x.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
                assert_eq!(energy(x), plain);
            }
        }
    }

    /// Windows are classified in pairs or alone depending on how the input
    /// is chunked; the events must not depend on it.
    #[test]
    fn events_do_not_depend_on_chunking() {
        for rate in [8000u32, 16000] {
            let mut x = Vec::new();
            let mut seed = 0x2545_f491u32;
            for (i, d) in [Digit::D1, Digit::Hash, Digit::D0, Digit::A]
                .into_iter()
                .enumerate()
            {
                x.extend((0..rate / 20).map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    (seed >> 24) as i8 as i16 * 8
                }));
                x.extend(tone(rate, d, ToneParams::default(), 30 + 15 * i as u32));
            }
            let whole = {
                let mut det = DtmfDetector::new(rate).unwrap();
                let mut ev = Vec::new();
                det.process(&x, &mut ev);
                det.flush(&mut ev);
                ev
            };
            assert!(whole.len() >= 4, "{whole:?}");
            for chunk in [1, 7, 26, 27, 160, 333] {
                let mut det = DtmfDetector::new(rate).unwrap();
                let mut ev = Vec::new();
                for c in x.chunks(chunk) {
                    det.process(c, &mut ev);
                }
                det.flush(&mut ev);
                assert_eq!(ev, whole, "{rate} Hz, chunks of {chunk}");
            }
        }
    }

    fn run(det: &mut DtmfDetector, x: &[i16]) -> Vec<DtmfEvent> {
        let mut ev = Vec::new();
        for c in x.chunks(160) {
            det.process(c, &mut ev);
        }
        det.flush(&mut ev);
        ev
    }

    #[test]
    fn rejects_bad_rates() {
        assert_eq!(
            DtmfDetector::new(4000).unwrap_err(),
            DtmfError::UnsupportedRate(4000)
        );
        assert!(DtmfDetector::new(96000).is_err());
        assert!(DtmfDetector::new(8000).is_ok());
    }

    #[test]
    fn frequency_measurement_is_accurate() {
        for rate in [8000, 16000] {
            let det = DtmfDetector::new(rate).unwrap();
            for d in Digit::ALL {
                for off in [-3.0, -1.5, 0.0, 1.5, 3.0] {
                    let p = ToneParams::level(-10.0).with_offsets(off, -off);
                    let x = tone(rate, d, p, 50);
                    let w: Vec<f32> = x[..det.n].iter().map(|&s| f32::from(s)).collect();
                    let (r, c) = d.row_col();
                    let dr = det.measure(&w, r).unwrap() / det.omega[r] * 100.0;
                    let dc = det.measure(&w, 4 + c).unwrap() / det.omega[4 + c] * 100.0;
                    assert!((dr - off).abs() < 0.3, "{d} {off}: {dr}");
                    assert!((dc + off).abs() < 0.3, "{d} {off}: {dc}");
                }
            }
        }
    }

    #[test]
    fn fit_recovers_amplitudes() {
        let rate = 8000;
        let p = ToneParams::level(-10.0).with_twist(4.0);
        let x: Vec<f32> = tone(rate, Digit::Star, p, 20)[..102]
            .iter()
            .map(|&s| f32::from(s))
            .collect();
        let w1 = TAU * 941.0 / 8000.0;
        let w2 = TAU * 1209.0 / 8000.0;
        let f = fit_two_tones(&x, w1, w2).unwrap();
        assert!((f.amp[0] / dbm0_to_peak(-10.0) - 1.0).abs() < 0.01);
        assert!((f.amp[1] / dbm0_to_peak(-6.0) - 1.0).abs() < 0.01);
        let total: f64 = x.iter().map(|&s| f64::from(s).powi(2)).sum();
        assert!(f.explained / total > 0.999);
    }

    #[test]
    fn detects_a_digit_once_with_positions() {
        for rate in [8000u32, 16000] {
            let mut det = DtmfDetector::new(rate).unwrap();
            let silence = vec![0i16; rate as usize / 10];
            let mut x = silence.clone();
            x.extend(tone(rate, Digit::D7, ToneParams::default(), 100));
            x.extend(&silence);
            let ev = run(&mut det, &x);
            assert_eq!(ev.len(), 2, "{ev:?}");
            let ms = |s: u64| s as f64 * 1000.0 / f64::from(rate);
            match (ev[0], ev[1]) {
                (
                    DtmfEvent::DigitStart { digit, at },
                    DtmfEvent::DigitEnd {
                        digit: d2,
                        at: end,
                        duration,
                    },
                ) => {
                    assert_eq!((digit, d2), (Digit::D7, Digit::D7));
                    assert!((ms(at) - 100.0).abs() < 4.0, "start {}", ms(at));
                    assert!((ms(end) - 200.0).abs() < 4.0, "end {}", ms(end));
                    assert_eq!(duration, end - at);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn silence_and_full_scale_garbage_do_not_panic_or_detect() {
        let mut det = DtmfDetector::new(8000).unwrap();
        let mut ev = Vec::new();
        det.process(&[0; 10_000], &mut ev);
        let square: Vec<i16> = (0..10_000)
            .map(|i| if (i / 5) % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        det.process(&square, &mut ev);
        det.process(&[], &mut ev);
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(det.position(), 20_000);
    }

    fn window(rate: u32, d: Digit, p: ToneParams) -> (DtmfDetector, Vec<f32>) {
        let det = DtmfDetector::new(rate).unwrap();
        let x = tone(rate, d, p, 30)[..det.n]
            .iter()
            .map(|&s| f32::from(s))
            .collect();
        (det, x)
    }

    /// Adds a sine of `amp` at `f` Hz to `x`.
    fn add_sine(x: &mut [f32], rate: u32, f: f64, amp: f64) {
        for (i, v) in x.iter_mut().enumerate() {
            *v += (amp * (TAU * f * i as f64 / f64::from(rate)).sin()) as f32;
        }
    }

    #[test]
    fn each_guard_rejects_what_it_is_for() {
        let a = dbm0_to_peak(-10.0);
        for rate in [8000, 16000] {
            let (det, x) = window(rate, Digit::D5, ToneParams::level(-10.0));
            assert_eq!(det.why(&x), Ok(Digit::D5));
            // A second row tone 6 dB down (two keys, or speech): it either
            // pulls the measured frequency or is left after the fit.
            for f in [852.0, 941.0] {
                let mut y = x.clone();
                add_sine(&mut y, rate, f, a / 2.0);
                assert!(
                    matches!(det.why(&y), Err(Reject::Dominance | Reject::Frequency)),
                    "{f}: {:?}",
                    det.why(&y)
                );
            }
            // Second harmonic of the high tone 8 dB down: explains too little
            // to fail the fit, but is not DTMF.
            let mut y = x.clone();
            add_sine(&mut y, rate, 2672.0, a * 0.4);
            assert_eq!(det.why(&y), Err(Reject::Harmonic));
            // Same for the low tone (2 × 770 = 1540 Hz, 204 Hz from 1336).
            let mut y = x.clone();
            add_sine(&mut y, rate, 1540.0, a * 0.4);
            assert_eq!(det.why(&y), Err(Reject::Harmonic));
            // Broadband noise as strong as the pair.
            let mut y = x.clone();
            let mut seed = 0x1234_5678u32;
            for v in &mut y {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                *v += ((seed as f64 / u32::MAX as f64 - 0.5) * 2.0 * a * 1.7) as f32;
            }
            assert!(det.why(&y).is_err());
            let (det, x) = window(rate, Digit::D5, ToneParams::level(-10.0).with_twist(8.0));
            assert_eq!(det.why(&x), Err(Reject::Twist));
            let (det, x) = window(
                rate,
                Digit::D5,
                ToneParams::level(-10.0).with_offsets(3.0, 0.0),
            );
            assert!(matches!(
                det.why(&x),
                Err(Reject::Frequency | Reject::Dominance)
            ));
            let (det, x) = window(rate, Digit::D5, ToneParams::level(-45.0));
            assert!(matches!(det.why(&x), Err(Reject::Energy | Reject::Level)));
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_gives_well_formed_events(
            x in proptest::collection::vec(proptest::num::i16::ANY, 0..4000),
            chunk in 1usize..400,
            sixteen in proptest::bool::ANY,
        ) {
            let rate = if sixteen { 16000 } else { 8000 };
            let mut det = DtmfDetector::new(rate).unwrap();
            // Random samples with a digit in the middle, so events happen.
            let mut y = x.clone();
            y.extend(tone(rate, Digit::D9, ToneParams::default(), 60));
            y.extend(&x);
            let mut ev = Vec::new();
            for c in y.chunks(chunk) {
                det.process(c, &mut ev);
            }
            det.flush(&mut ev);
            proptest::prop_assert_eq!(det.position(), y.len() as u64);
            let mut open = None;
            for e in ev {
                match e {
                    DtmfEvent::DigitStart { digit, at } => {
                        proptest::prop_assert!(open.is_none());
                        proptest::prop_assert!(at <= y.len() as u64);
                        open = Some((digit, at));
                    }
                    DtmfEvent::DigitEnd { digit, at, duration } => {
                        let (d, start) = open.take().unwrap();
                        proptest::prop_assert_eq!(d, digit);
                        proptest::prop_assert_eq!(at - start, duration);
                    }
                }
            }
            proptest::prop_assert!(open.is_none());
        }
    }
}
