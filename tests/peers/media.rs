//! Test audio: real speech from espeak-ng, tones, and the forms peers read
//! (8 kHz mono S16 WAV for baresip's `aufile`, headerless G.711 for sipp).
//! Generated files are cached in `CARGO_TARGET_TMPDIR/peers-media/`, keyed by
//! their parameters, and written atomically (temp name + rename) because
//! tests in parallel may ask for the same file.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use hotline_media::codec::g711::{self, Law};
use hotline_media::wav::{WavSpec, encode_wav, read_wav};

fn cache_dir() -> anyhow::Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("peers-media");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn key(parts: &impl Hash) -> String {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Makes `name` in the cache with `make(tmp_path)` unless it exists.
fn cached(name: &str, make: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<PathBuf> {
    let path = cache_dir()?.join(name);
    if path.exists() {
        return Ok(path);
    }
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!(
        "tmp{}-{n}.{}",
        std::process::id(),
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    make(&tmp)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .output()
        .map_err(|e| anyhow::anyhow!("{cmd:?}: {e}; run scripts/deps"))?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `text` spoken by espeak-ng (en-us, 150 wpm), as a mono signed 16-bit WAV
/// at `rate` Hz (sox resamples).
pub fn speech_wav(text: &str, rate: u32) -> anyhow::Result<PathBuf> {
    let name = format!("speech-{}-{rate}.wav", key(&(text, rate)));
    cached(&name, |out| {
        let raw = out.with_extension("espeak.wav");
        run(Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "150", "-w"])
            .arg(&raw)
            .arg(text))?;
        run(Command::new("sox")
            .arg(&raw)
            .args([
                "-r",
                &rate.to_string(),
                "-c",
                "1",
                "-b",
                "16",
                "-e",
                "signed-integer",
                "-t",
                "wav",
            ])
            .arg(out))?;
        let _ = std::fs::remove_file(&raw);
        Ok(())
    })
}

/// A sine tone of `hz` for `secs` at half scale, mono S16 WAV at `rate` Hz.
pub fn tone_wav(hz: u32, secs: f64, rate: u32) -> anyhow::Result<PathBuf> {
    let name = format!("tone-{hz}-{}-{rate}.wav", (secs * 1000.0) as u64);
    cached(&name, |out| {
        let n = (secs * f64::from(rate)) as usize;
        let samples: Vec<i16> = (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (16384.0 * (2.0 * std::f64::consts::PI * f64::from(hz) * t).sin()) as i16
            })
            .collect();
        std::fs::write(out, encode_wav(WavSpec::mono(rate), &samples)?)?;
        Ok(())
    })
}

/// Reads a WAV file as mono samples and its sample rate.
pub fn read_pcm(path: &Path) -> anyhow::Result<(u32, Vec<i16>)> {
    let wav =
        read_wav(&std::fs::read(path)?).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((wav.format.sample_rate, wav.to_mono()))
}

/// The 8 kHz WAV at `wav` as headerless G.711 bytes (sipp's `rtp_stream`
/// sends a WAV header as audio, so it needs these).
pub fn g711_bytes(wav: &Path, law: Law) -> anyhow::Result<Vec<u8>> {
    let (rate, pcm) = read_pcm(wav)?;
    anyhow::ensure!(
        rate == 8000,
        "{}: G.711 needs 8 kHz, file is {rate} Hz",
        wav.display()
    );
    let mut out = Vec::with_capacity(pcm.len());
    g711::encode_slice(law, &pcm, &mut out);
    Ok(out)
}

/// [`g711_bytes`] written next to the WAV's cache entry as `.ul` / `.al`.
pub fn g711_file(wav: &Path, law: Law) -> anyhow::Result<PathBuf> {
    let ext = if law == Law::Mu { "ul" } else { "al" };
    let name = format!(
        "{}-{}.{ext}",
        wav.file_stem().and_then(|s| s.to_str()).unwrap_or("audio"),
        key(&wav)
    );
    cached(&name, |out| Ok(std::fs::write(out, g711_bytes(wav, law)?)?))
}

/// `wav` followed by `pad_secs` of silence, as 8 kHz mono S16 (baresip's
/// `aufile` hangs the call up when its file ends, so sources are padded).
pub fn padded_wav(wav: &Path, pad_secs: u32, out: &Path) -> anyhow::Result<()> {
    let (rate, mut pcm) = read_pcm(wav)?;
    anyhow::ensure!(
        rate == 8000,
        "{}: aufile with PCMU needs 8 kHz, file is {rate} Hz",
        wav.display()
    );
    pcm.resize(pcm.len() + 8000 * pad_secs as usize, 0);
    std::fs::write(out, encode_wav(WavSpec::mono(8000), &pcm)?)?;
    Ok(())
}

/// A caller's side of a conversation for baresip's `aufile`: each part is
/// a pause (seconds) and then `text` spoken, as 8 kHz mono S16.
pub fn script_wav(parts: &[(f64, &str)]) -> anyhow::Result<PathBuf> {
    let name = format!(
        "script-{}.wav",
        key(&parts
            .iter()
            .map(|(p, t)| (p.to_bits(), *t))
            .collect::<Vec<_>>())
    );
    cached(&name, |out| {
        let mut pcm = Vec::new();
        for (pause, text) in parts {
            pcm.resize(pcm.len() + (pause * 8000.0) as usize, 0);
            let (rate, speech) = read_pcm(&speech_wav(text, 8000)?)?;
            anyhow::ensure!(rate == 8000, "espeak-ng speech is resampled to 8 kHz");
            pcm.extend_from_slice(&speech);
        }
        std::fs::write(out, encode_wav(WavSpec::mono(8000), &pcm)?)?;
        Ok(())
    })
}
