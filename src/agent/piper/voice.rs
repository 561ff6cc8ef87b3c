//! One Piper voice loaded into sherpa-onnx: its files, its phoneme set and
//! the ONNX session that turns phonemes into audio.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sherpa_onnx::{
    GenerationConfig, OfflineTts, OfflineTtsConfig, OfflineTtsModelConfig,
    OfflineTtsVitsModelConfig,
};

use super::PiperError;

/// The metadata keys `scripts/models.d/piper_sherpa.py` adds. sherpa-onnx
/// ends the process (it does not return an error) when a required key is
/// missing, so a model that lacks them must never reach it.
const METADATA_KEYS: [&[u8]; 6] = [
    b"model_type",
    b"vits",
    b"comment",
    b"piper",
    b"sample_rate",
    b"n_speakers",
];

/// How much of the model's end to search for them: `onnx.save` writes the
/// metadata after the graph, as the last field of the file.
const METADATA_TAIL: u64 = 16 * 1024;

/// The parts of a Piper voice's `.onnx.json` that synthesis needs.
#[derive(Debug, Deserialize)]
struct VoiceJson {
    audio: AudioJson,
    espeak: EspeakJson,
    #[serde(default)]
    inference: InferenceJson,
    #[serde(default)]
    phoneme_type: Option<String>,
    #[serde(default)]
    num_speakers: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct AudioJson {
    sample_rate: u32,
}

#[derive(Debug, Deserialize)]
struct EspeakJson {
    voice: String,
}

/// Piper's defaults, used when the voice does not give its own.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct InferenceJson {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

impl Default for InferenceJson {
    fn default() -> Self {
        InferenceJson {
            noise_scale: 0.667,
            length_scale: 1.0,
            noise_w: 0.8,
        }
    }
}

/// Where a voice's files are: `<models_dir>/piper/<voice>/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct VoiceFiles {
    /// The voice's name, e.g. `en_US-joe-medium`.
    pub name: String,
    pub model: PathBuf,
    pub config: PathBuf,
    pub tokens: PathBuf,
}

impl VoiceFiles {
    /// The files of `voice` under `models_dir`, checked to exist.
    pub fn find(models_dir: &Path, voice: &str) -> Result<VoiceFiles, PiperError> {
        if voice.is_empty()
            || !voice
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            || voice.starts_with('.')
        {
            return Err(PiperError::BadVoiceName(voice.to_owned()));
        }
        let dir = models_dir.join("piper").join(voice);
        let files = VoiceFiles {
            name: voice.to_owned(),
            model: dir.join(format!("{voice}.onnx")),
            config: dir.join(format!("{voice}.onnx.json")),
            tokens: dir.join("tokens.txt"),
        };
        for path in [&files.model, &files.config, &files.tokens] {
            if !path.is_file() {
                return Err(PiperError::Missing(path.clone()));
            }
        }
        Ok(files)
    }
}

/// A loaded voice. Synthesis takes `&self`: one ONNX Runtime session serves
/// every concurrent call (its `Run` is thread-safe), so the weights are in
/// memory once however many calls speak at a time.
pub(super) struct Voice {
    /// The voice's name.
    pub name: String,
    /// Output rate, from the voice's config.
    pub sample_rate: u32,
    /// The espeak-ng voice whose phonemes the model was trained on.
    pub espeak_voice: String,
    /// Every phoneme the model knows; anything else is left out.
    phonemes: HashSet<char>,
    tts: OfflineTts,
}

impl std::fmt::Debug for Voice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Voice")
            .field("name", &self.name)
            .field("sample_rate", &self.sample_rate)
            .field("espeak_voice", &self.espeak_voice)
            .field("phonemes", &self.phonemes.len())
            .finish_non_exhaustive()
    }
}

impl Voice {
    /// Loads the voice. Blocks for as long as ONNX Runtime takes to build
    /// the session (about a second for a medium voice).
    pub fn load(
        files: &VoiceFiles,
        length_scale: f32,
        threads: usize,
    ) -> Result<Voice, PiperError> {
        let json = fs::read_to_string(&files.config)
            .map_err(|e| PiperError::Io(files.config.clone(), e))?;
        let json: VoiceJson = serde_json::from_str(&json)
            .map_err(|e| PiperError::BadVoice(files.config.clone(), e.to_string()))?;
        if let Some(kind) = &json.phoneme_type
            && kind != "espeak"
        {
            return Err(PiperError::BadVoice(
                files.config.clone(),
                format!("phoneme_type {kind:?} (only espeak voices are supported)"),
            ));
        }
        if json.num_speakers.unwrap_or(1) != 1 {
            return Err(PiperError::BadVoice(
                files.config.clone(),
                "multi-speaker voices are not supported".into(),
            ));
        }
        if !(8_000..=48_000).contains(&json.audio.sample_rate) {
            return Err(PiperError::BadVoice(
                files.config.clone(),
                format!("sample rate {}", json.audio.sample_rate),
            ));
        }
        let phonemes = read_tokens(&files.tokens)?;
        check_metadata(&files.model)?;

        let length_scale = json.inference.length_scale * length_scale;
        let config = OfflineTtsConfig {
            model: OfflineTtsModelConfig {
                vits: OfflineTtsVitsModelConfig {
                    model: Some(path_str(&files.model)?),
                    tokens: Some(path_str(&files.tokens)?),
                    noise_scale: json.inference.noise_scale,
                    noise_scale_w: json.inference.noise_w,
                    length_scale,
                    ..Default::default()
                },
                num_threads: i32::try_from(threads.max(1)).unwrap_or(1),
                provider: Some("cpu".into()),
                debug: false,
                ..Default::default()
            },
            max_num_sentences: 1,
            ..Default::default()
        };
        let tts =
            OfflineTts::create(&config).ok_or_else(|| PiperError::Load(files.model.clone()))?;
        let rate = tts.sample_rate();
        if u32::try_from(rate).ok() != Some(json.audio.sample_rate) {
            return Err(PiperError::BadVoice(
                files.model.clone(),
                format!(
                    "the model runs at {rate} Hz, its config says {}",
                    json.audio.sample_rate
                ),
            ));
        }
        Ok(Voice {
            name: files.name.clone(),
            sample_rate: json.audio.sample_rate,
            espeak_voice: json.espeak.voice,
            phonemes,
            tts,
        })
    }

    /// True when the model has a token for `c`.
    pub fn knows(&self, c: char) -> bool {
        self.phonemes.contains(&c)
    }

    /// Speaks one sentence of phonemes (every one of them known to the
    /// model, at least one that is not a space or punctuation). Blocks for
    /// the whole inference: call it on the blocking pool.
    pub fn synthesize(&self, phonemes: &[char]) -> Result<Vec<f32>, PiperError> {
        if phonemes.is_empty() {
            return Ok(Vec::new());
        }
        let codepoints: Vec<i32> = phonemes.iter().map(|&c| c as i32).collect();
        let generation = GenerationConfig {
            phoneme_codepoints: Some(vec![codepoints]),
            // Pauses between sentences are ours to add; within one call
            // there is only one sentence.
            silence_scale: 1.0,
            ..Default::default()
        };
        let audio = self
            .tts
            .generate_with_config("", &generation, None::<fn(&[f32], f32) -> bool>)
            .ok_or(PiperError::Synthesis)?;
        Ok(audio.samples().to_vec())
    }
}

fn path_str(path: &Path) -> Result<String, PiperError> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| PiperError::BadVoice(path.to_path_buf(), "path is not UTF-8".into()))
}

/// The symbols of `tokens.txt` ("symbol id" per line; the space token's
/// line is " 3").
pub(super) fn read_tokens(path: &Path) -> Result<HashSet<char>, PiperError> {
    let text = fs::read_to_string(path).map_err(|e| PiperError::Io(path.to_path_buf(), e))?;
    let mut set = HashSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || PiperError::BadVoice(path.to_path_buf(), format!("bad line {line:?}"));
        let (symbol, id) = line.rsplit_once(' ').ok_or_else(bad)?;
        id.trim().parse::<u32>().map_err(|_| bad())?;
        let mut chars = symbol.chars();
        let c = match (chars.next(), chars.next()) {
            (Some(c), None) => c,
            // The space token: its symbol is the separator itself.
            (None, None) => ' ',
            _ => return Err(bad()),
        };
        set.insert(c);
    }
    for needed in ['_', '^', '$', ' '] {
        if !set.contains(&needed) {
            return Err(PiperError::BadVoice(
                path.to_path_buf(),
                format!("no token for {needed:?}"),
            ));
        }
    }
    Ok(set)
}

/// Fails unless the model carries the metadata sherpa-onnx needs, i.e. it
/// went through `scripts/models`.
fn check_metadata(model: &Path) -> Result<(), PiperError> {
    let io = |e| PiperError::Io(model.to_path_buf(), e);
    let mut f = fs::File::open(model).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(METADATA_TAIL)))
        .map_err(io)?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).map_err(io)?;
    let has = |key: &[u8]| tail.windows(key.len()).any(|w| w == key);
    if METADATA_KEYS.iter().all(|k| has(k)) {
        Ok(())
    } else {
        Err(PiperError::NotPrepared(model.to_path_buf()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_file_parses_including_the_space_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.txt");
        fs::write(&path, "_ 0\n^ 1\n$ 2\n  3\nə 59\nˈ 120\n").unwrap();
        let set = read_tokens(&path).unwrap();
        for c in ['_', '^', '$', ' ', 'ə', 'ˈ'] {
            assert!(set.contains(&c), "{c:?}");
        }
        assert_eq!(set.len(), 6);

        fs::write(&path, "_ 0\nab 1\n").unwrap();
        assert!(matches!(read_tokens(&path), Err(PiperError::BadVoice(..))));
        fs::write(&path, "_ 0\n^ 1\n$ 2\n").unwrap();
        let err = read_tokens(&path).unwrap_err().to_string();
        assert!(err.contains("' '"), "{err}");
    }

    #[test]
    fn a_model_without_sherpa_metadata_is_refused_before_loading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        fs::write(&path, vec![0u8; 100_000]).unwrap();
        assert!(matches!(
            check_metadata(&path),
            Err(PiperError::NotPrepared(_))
        ));
        let mut bytes = vec![0u8; 100_000];
        bytes.extend_from_slice(b"model_type\x12vits comment piper sample_rate n_speakers");
        fs::write(&path, bytes).unwrap();
        check_metadata(&path).unwrap();
    }

    #[test]
    fn voice_names_cannot_leave_the_models_dir() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "../etc", "a/b", ".hidden"] {
            assert!(
                matches!(
                    VoiceFiles::find(dir.path(), bad),
                    Err(PiperError::BadVoiceName(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            VoiceFiles::find(dir.path(), "en_US-joe-medium"),
            Err(PiperError::Missing(_))
        ));
    }
}
