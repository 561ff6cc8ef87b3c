//! Load test: N simultaneous G.711 <-> Opus 16 kHz (complexity 5) calls on
//! two worker threads, each paced against absolute 20 ms deadlines. Every
//! tick, a worker transcodes one frame in each direction for each of its
//! calls; a tick whose work finishes after its deadline counts as missed.
//!
//! Run: `cargo bench --bench opus_load -- [calls] [seconds]`
//! (defaults: 100 calls, 10 s). Bounded in count and time.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hotline_media::codec::{
    self, AudioDecoder, AudioEncoder, CodecKind, OpusConfig, OpusDecoder, OpusEncoder,
};
use hotline_media::resample::Resampler;

const TICK: Duration = Duration::from_millis(20);
const MAX_CALLS: usize = 2000;
const MAX_SECONDS: u64 = 120;

struct Call {
    ulaw_dec: Box<dyn AudioDecoder + Send>,
    ulaw_enc: Box<dyn AudioEncoder + Send>,
    opus_enc: OpusEncoder,
    opus_dec: OpusDecoder,
    up: Resampler,
    down: Resampler,
    ulaw_in: Vec<Vec<u8>>,
    opus_in: Vec<Vec<u8>>,
    pcm8: Vec<i16>,
    pcm16: Vec<i16>,
    bytes: Vec<u8>,
}

impl Call {
    fn new(seed: usize) -> Call {
        // A voiced-like tone per call, pre-encoded once both ways so the
        // measured loop does exactly the per-frame work of a bridged call.
        let f0 = 110.0 + (seed % 40) as f64 * 3.0;
        let pcm8: Vec<i16> = (0..8000)
            .map(|i| {
                let t = i as f64 / 8000.0;
                (3000.0
                    * ((2.0 * std::f64::consts::PI * f0 * t).sin()
                        + 0.5 * (2.0 * std::f64::consts::PI * 3.0 * f0 * t).sin()))
                    as i16
            })
            .collect();
        let mut up = Resampler::new(8000, 16000).unwrap();
        let mut ulaw_enc = codec::encoder(CodecKind::Pcmu, 8000).unwrap();
        let mut opus_enc = OpusEncoder::new(16000, OpusConfig::default()).unwrap();
        let (mut ulaw_in, mut opus_in) = (Vec::new(), Vec::new());
        for frame in pcm8.chunks_exact(160) {
            let mut u = Vec::new();
            ulaw_enc.encode(frame, &mut u).unwrap();
            ulaw_in.push(u);
            let mut wide = Vec::new();
            up.process(frame, &mut wide).unwrap();
            let mut o = Vec::new();
            opus_enc.encode(&wide, &mut o).unwrap();
            opus_in.push(o);
        }
        Call {
            ulaw_dec: codec::decoder(CodecKind::Pcmu, 8000).unwrap(),
            ulaw_enc,
            opus_enc: OpusEncoder::new(16000, OpusConfig::default()).unwrap(),
            opus_dec: OpusDecoder::new(16000).unwrap(),
            up: Resampler::new(8000, 16000).unwrap(),
            down: Resampler::new(16000, 8000).unwrap(),
            ulaw_in,
            opus_in,
            pcm8: Vec::with_capacity(160),
            pcm16: Vec::with_capacity(320),
            bytes: Vec::with_capacity(4000),
        }
    }

    fn tick(&mut self, n: usize) {
        let i = n % self.ulaw_in.len();
        self.pcm8.clear();
        self.pcm16.clear();
        self.bytes.clear();
        self.ulaw_dec
            .decode(&self.ulaw_in[i], &mut self.pcm8)
            .unwrap();
        self.up.process(&self.pcm8, &mut self.pcm16).unwrap();
        self.opus_enc.encode(&self.pcm16, &mut self.bytes).unwrap();
        self.pcm8.clear();
        self.pcm16.clear();
        self.bytes.clear();
        self.opus_dec
            .decode(&self.opus_in[i], &mut self.pcm16)
            .unwrap();
        self.down.process(&self.pcm16, &mut self.pcm8).unwrap();
        self.ulaw_enc.encode(&self.pcm8, &mut self.bytes).unwrap();
    }
}

struct WorkerReport {
    ticks: usize,
    missed: usize,
    busy: Vec<Duration>,
}

fn worker(calls: usize, seconds: u64, ready: &Barrier) -> WorkerReport {
    let mut set: Vec<Call> = (0..calls).map(Call::new).collect();
    // Setup (pre-encoding the input) is not part of the measured load.
    ready.wait();
    let start = Instant::now();
    let ticks = (seconds * 1000 / 20) as usize;
    let mut busy = Vec::with_capacity(ticks);
    let mut missed = 0;
    let mut deadline = start;
    for n in 0..ticks {
        // Absolute deadlines: the next tick is scheduled from the previous
        // deadline, never from when the work finished.
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        let begun = Instant::now();
        for call in &mut set {
            call.tick(n);
        }
        let done = Instant::now();
        busy.push(done - begun);
        deadline += TICK;
        if done > deadline {
            missed += 1;
        }
    }
    WorkerReport {
        ticks,
        missed,
        busy,
    }
}

fn main() {
    // cargo bench passes `--bench`; positional numbers are ours.
    let nums: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let calls = nums.first().copied().unwrap_or(100).min(MAX_CALLS as u64) as usize;
    let seconds = nums.get(1).copied().unwrap_or(10).clamp(1, MAX_SECONDS);
    let workers = 2;
    let ready = Arc::new(Barrier::new(workers + 1));
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let share = calls / workers + usize::from(w < calls % workers);
            let ready = Arc::clone(&ready);
            std::thread::spawn(move || worker(share, seconds, &ready))
        })
        .collect();
    ready.wait();
    let start = Instant::now();
    let cpu_before = process_cpu();
    let reports: Vec<WorkerReport> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let wall = start.elapsed();
    let mut busy: Vec<Duration> = reports
        .iter()
        .flat_map(|r| r.busy.iter().copied())
        .collect();
    busy.sort();
    let pct = |p: f64| busy[((busy.len() - 1) as f64 * p) as usize];
    let ticks: usize = reports.iter().map(|r| r.ticks).sum();
    let missed: usize = reports.iter().map(|r| r.missed).sum();
    println!(
        "opus_load: {calls} calls (G.711 <-> Opus 16 kHz c5, both directions) on {workers} threads for {seconds} s"
    );
    println!(
        "  per-tick work per thread: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (deadline 20 ms)",
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(*busy.last().unwrap())
    );
    println!("  ticks {ticks}, missed deadlines {missed}");
    if let Some(cpu) = cpu {
        let cores = cpu.as_secs_f64() / wall.as_secs_f64();
        println!(
            "  CPU {:.2} cores over {:.1} s = {:.3}% of a core per call",
            cores,
            wall.as_secs_f64(),
            cores * 100.0 / calls as f64
        );
    }
    if missed > 0 {
        println!("  result: {missed} ticks missed their deadline");
        std::process::exit(1);
    }
    println!("  result: every tick met its deadline");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// User + system CPU time of this process, from /proc (Linux).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / 100.0))
}
