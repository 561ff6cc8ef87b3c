//! The voices this server can speak with (`GET /v1/voices`): the embedded
//! Piper voice when its model is installed, a curated set of espeak-ng
//! voices checked against what espeak-ng reports, and the fixed voice
//! lists of the cloud providers that have a key.
//!
//! A voice's id is what an agent's `voice` (or a call's) takes: the name
//! the provider itself uses (`en_US-joe-medium`, `en-gb`, `coral`, an
//! ElevenLabs voice id). An agent that names a catalogue voice and no
//! `model.tts` speaks with that voice's provider ([`provider_of`]).
//!
//! Cloud lists are written here, not fetched: listing voices never costs
//! a request to a provider.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::model::TtsKind;

/// A voice as the catalogue lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VoiceInfo {
    /// What an agent's `voice` takes.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Who speaks it: `piper`, `espeak`, `openai` or `elevenlabs` (the
    /// values of an agent's `model.tts`).
    pub provider: &'static str,
    /// BCP 47 tag of the language it speaks best.
    pub language: String,
    /// `female` or `male`, when the provider says.
    pub gender: Option<&'static str>,
}

/// A voice of a fixed list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownVoice {
    /// The provider's name for it.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// BCP 47 tag.
    pub language: &'static str,
    /// `female` or `male`, when known.
    pub gender: Option<&'static str>,
}

const F: Option<&str> = Some("female");
const M: Option<&str> = Some("male");

const fn v(
    id: &'static str,
    name: &'static str,
    language: &'static str,
    gender: Option<&'static str>,
) -> KnownVoice {
    KnownVoice {
        id,
        name,
        language,
        gender,
    }
}

/// espeak-ng voices worth offering for phone calls: the English accents
/// (with a female variant of the two main ones) and the major Latin-script
/// languages. `base+variant` ids are espeak-ng's own syntax. Listed only
/// when the installed espeak-ng has the language and the variant.
pub const ESPEAK_VOICES: [KnownVoice; 14] = [
    v("en-us", "English (America)", "en-US", M),
    v("en-us+f3", "English (America), female", "en-US", F),
    v("en-gb", "English (Great Britain)", "en-GB", M),
    v("en-gb+f3", "English (Great Britain), female", "en-GB", F),
    v("en-gb-scotland", "English (Scotland)", "en-GB", M),
    v("en-029", "English (Caribbean)", "en-029", M),
    v("es", "Spanish (Spain)", "es-ES", M),
    v("es-419", "Spanish (Latin America)", "es-419", M),
    v("fr-fr", "French (France)", "fr-FR", M),
    v("de", "German", "de-DE", M),
    v("it", "Italian", "it-IT", M),
    v("pt-br", "Portuguese (Brazil)", "pt-BR", M),
    v("nl", "Dutch", "nl-NL", M),
    v("pl", "Polish", "pl-PL", M),
];

/// OpenAI's speech voices (`gpt-4o-mini-tts`; `tts-1` has the first
/// nine). OpenAI does not assign them genders. They speak many languages;
/// English is what they are tuned for.
pub const OPENAI_VOICES: [KnownVoice; 13] = [
    v("alloy", "Alloy", "en", None),
    v("ash", "Ash", "en", None),
    v("coral", "Coral", "en", None),
    v("echo", "Echo", "en", None),
    v("fable", "Fable", "en", None),
    v("nova", "Nova", "en", None),
    v("onyx", "Onyx", "en", None),
    v("sage", "Sage", "en", None),
    v("shimmer", "Shimmer", "en", None),
    v("ballad", "Ballad", "en", None),
    v("verse", "Verse", "en", None),
    v("marin", "Marin", "en", None),
    v("cedar", "Cedar", "en", None),
];

/// ElevenLabs' premade voices, which every account has (ids as the API
/// takes them). Its multilingual models speak other languages with them.
pub const ELEVENLABS_VOICES: [KnownVoice; 10] = [
    v("21m00Tcm4TlvDq8ikWAM", "Rachel", "en-US", F),
    v("AZnzlk1XvdvUeBnXmlld", "Domi", "en-US", F),
    v("EXAVITQu4vr4xnSDxMaL", "Sarah", "en-US", F),
    v("MF3mGyEYCl7XYWbV9V6O", "Elli", "en-US", F),
    v("ErXwobaYiN019PkySvjV", "Antoni", "en-US", M),
    v("TxGEqnHWrfWFTfGW9XjX", "Josh", "en-US", M),
    v("VR6AewLTigWG4xSOukaG", "Arnold", "en-US", M),
    v("pNInz6obpgDQGcFmaJgB", "Adam", "en-US", M),
    v("yoZ06aMxZJJ28mfd3POQ", "Sam", "en-US", M),
    v("JBFqnCBsd6RMkjVDRZzb", "George", "en-GB", M),
];

/// What the catalogue is built from: the server's engines as configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sources {
    /// The Piper voice the server loads, when its files are installed.
    pub piper: Option<String>,
    /// The espeak-ng program; `None` leaves espeak-ng voices out.
    pub espeak: Option<PathBuf>,
    /// Whether OpenAI speech has a key (or a self-hosted endpoint).
    pub openai: bool,
    /// Whether ElevenLabs has a key.
    pub elevenlabs: bool,
}

/// The voices `sources` offer, local first. Runs `espeak-ng --voices` the
/// first time a program is asked about (a few milliseconds): call it from
/// a blocking context.
pub fn list(sources: &Sources) -> Vec<VoiceInfo> {
    let mut out = Vec::new();
    if let Some(name) = &sources.piper {
        out.push(piper_info(name));
    }
    if let Some(program) = &sources.espeak {
        let installed = espeak_installed(program);
        for k in ESPEAK_VOICES
            .iter()
            .filter(|k| installed.has(k.id))
            .copied()
        {
            out.push(info(k, TtsKind::Espeak));
        }
    }
    let clouds = [
        (sources.openai, &OPENAI_VOICES[..], TtsKind::Openai),
        (
            sources.elevenlabs,
            &ELEVENLABS_VOICES[..],
            TtsKind::Elevenlabs,
        ),
    ];
    for (on, voices, kind) in clouds {
        if on {
            out.extend(voices.iter().map(|k| info(*k, kind)));
        }
    }
    out
}

/// The provider whose voice `voice` is, by the catalogue's ids; the
/// embedded Piper voice is `piper`'s. `None` for names the catalogue does
/// not list.
pub fn provider_of(voice: &str, piper: Option<&str>) -> Option<TtsKind> {
    if piper == Some(voice) {
        return Some(TtsKind::Piper);
    }
    let lists = [
        (&ESPEAK_VOICES[..], TtsKind::Espeak),
        (&OPENAI_VOICES[..], TtsKind::Openai),
        (&ELEVENLABS_VOICES[..], TtsKind::Elevenlabs),
    ];
    lists
        .into_iter()
        .find(|(list, _)| list.iter().any(|k| k.id == voice))
        .map(|(_, kind)| kind)
}

fn info(k: KnownVoice, kind: TtsKind) -> VoiceInfo {
    VoiceInfo {
        id: k.id.to_owned(),
        name: k.name.to_owned(),
        provider: kind.as_str(),
        language: k.language.to_owned(),
        gender: k.gender,
    }
}

/// A Piper voice described from its name, `<lang>_<REGION>-<speaker>-<quality>`
/// (`en_US-joe-medium` → "Joe (medium)", `en-US`); other names are shown
/// as they are.
fn piper_info(name: &str) -> VoiceInfo {
    let mut parts = name.splitn(3, '-');
    let (locale, speaker, quality) = (parts.next(), parts.next(), parts.next());
    // `und` (undetermined) when the name does not start with a locale.
    let language = locale
        .filter(|l| {
            let (lang, region) = l.split_once('_').unwrap_or((l, "US"));
            (2..=3).contains(&lang.len())
                && lang.bytes().all(|b| b.is_ascii_lowercase())
                && region.len() == 2
                && region.bytes().all(|b| b.is_ascii_uppercase())
        })
        .map_or_else(|| "und".to_owned(), |l| l.replace('_', "-"));
    let display = match (speaker, quality) {
        (Some(s), q) if !s.is_empty() => {
            let mut chars = s.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            let title: String = first.into_iter().chain(chars).collect();
            match q {
                Some(q) => format!("{} ({q})", title.replace('_', " ")),
                None => title.replace('_', " "),
            }
        }
        _ => name.to_owned(),
    };
    VoiceInfo {
        id: name.to_owned(),
        name: display,
        provider: TtsKind::Piper.as_str(),
        language,
        gender: None,
    }
}

/// What an espeak-ng installation has: its language voices and variants.
#[derive(Debug, Default)]
struct Installed {
    languages: HashSet<String>,
    variants: HashSet<String>,
}

impl Installed {
    /// Whether `id` (`lang` or `lang+variant`) can be spoken.
    fn has(&self, id: &str) -> bool {
        let (base, variant) = match id.split_once('+') {
            Some((b, v)) => (b, Some(v)),
            None => (id, None),
        };
        self.languages.contains(base) && variant.is_none_or(|v| self.variants.contains(v))
    }
}

/// espeak-ng's voices, asked once per program for the process's life
/// (installing voices needs a restart to show).
fn espeak_installed(program: &Path) -> Arc<Installed> {
    static SEEN: Mutex<Option<HashMap<PathBuf, Arc<Installed>>>> = Mutex::new(None);
    if let Some(i) = SEEN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(program))
    {
        return i.clone();
    }
    // Asked without the lock held: two first callers may both run it,
    // which is harmless.
    let installed = Arc::new(Installed {
        languages: run_voices(program, "--voices").into_iter().collect(),
        variants: run_voices(program, "--voices=variant")
            .into_iter()
            .collect(),
    });
    SEEN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(program.to_owned(), installed.clone());
    installed
}

fn run_voices(program: &Path, arg: &str) -> Vec<String> {
    match std::process::Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => parse_voices(&String::from_utf8_lossy(&o.stdout)),
        Ok(o) => {
            tracing::warn!(status = %o.status, arg, "espeak-ng could not list its voices");
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(program = %program.display(), error = %e, "cannot run espeak-ng");
            Vec::new()
        }
    }
}

/// The names in `espeak-ng --voices` output, lower case: each row's
/// language code and its file's base name (`en-us` and `en-us`, `f3` for
/// the variant file `!v/f3`).
fn parse_voices(out: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in out.lines().skip(1) {
        // Pty Language Age/Gender VoiceName File [Other languages]
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 5 {
            names.push(cols[1].to_ascii_lowercase());
            let file = cols[4].rsplit('/').next().unwrap_or(cols[4]);
            names.push(file.to_ascii_lowercase());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOICES: &str = "\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  fr-fr           --/M      French_(France)    roa/fr               (fr 5)
";
    const VARIANTS: &str = "\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  variant         --/F      female3            !v/f3
 5  variant         --/M      male2              !v/m2
";

    #[test]
    fn espeak_output_is_read_by_column() {
        let names = parse_voices(VOICES);
        for n in ["en-gb", "en", "en-us", "fr-fr", "fr"] {
            assert!(names.iter().any(|x| x == n), "{n}: {names:?}");
        }
        let variants = parse_voices(VARIANTS);
        assert!(variants.contains(&"f3".to_owned()), "{variants:?}");
        assert!(parse_voices("").is_empty());
        assert!(parse_voices("header only\n garbage\n").is_empty());
    }

    #[test]
    fn curated_voices_need_their_language_and_variant() {
        let installed = Installed {
            languages: parse_voices(VOICES).into_iter().collect(),
            variants: parse_voices(VARIANTS).into_iter().collect(),
        };
        assert!(installed.has("en-us"));
        assert!(installed.has("en-us+f3"));
        assert!(!installed.has("en-us+f5"));
        assert!(!installed.has("de"));
        let none = Installed::default();
        assert!(!none.has("en-us"));
    }

    #[test]
    fn the_local_espeak_ng_offers_american_english() {
        let voices = list(&Sources {
            espeak: Some(PathBuf::from("espeak-ng")),
            ..Sources::default()
        });
        // This machine has espeak-ng (the fallback voice needs it).
        let us = voices.iter().find(|v| v.id == "en-us").expect("en-us");
        assert_eq!(us.provider, "espeak");
        assert_eq!(us.language, "en-US");
        assert!(voices.iter().all(|v| v.provider == "espeak"));
        let missing = list(&Sources {
            espeak: Some(PathBuf::from("/nonexistent/espeak-ng")),
            ..Sources::default()
        });
        assert!(missing.is_empty());
    }

    #[test]
    fn cloud_voices_are_listed_only_when_configured() {
        let none = list(&Sources::default());
        assert!(none.is_empty());
        let openai = list(&Sources {
            openai: true,
            ..Sources::default()
        });
        assert_eq!(openai.len(), OPENAI_VOICES.len());
        assert!(openai.iter().all(|v| v.provider == "openai"));
        let both = list(&Sources {
            openai: true,
            elevenlabs: true,
            piper: Some("en_US-joe-medium".into()),
            espeak: None,
        });
        assert_eq!(both[0].id, "en_US-joe-medium");
        assert_eq!(
            both.len(),
            1 + OPENAI_VOICES.len() + ELEVENLABS_VOICES.len()
        );
    }

    #[test]
    fn ids_are_unique_and_name_their_provider() {
        let mut ids = HashSet::new();
        for k in ESPEAK_VOICES
            .iter()
            .chain(&OPENAI_VOICES)
            .chain(&ELEVENLABS_VOICES)
        {
            assert!(ids.insert(k.id), "{} twice", k.id);
            assert!(crate::api::resources::agents::is_language_tag(k.language));
        }
        assert_eq!(provider_of("en-gb+f3", None), Some(TtsKind::Espeak));
        assert_eq!(provider_of("coral", None), Some(TtsKind::Openai));
        assert_eq!(
            provider_of("21m00Tcm4TlvDq8ikWAM", None),
            Some(TtsKind::Elevenlabs)
        );
        assert_eq!(
            provider_of("en_US-joe-medium", Some("en_US-joe-medium")),
            Some(TtsKind::Piper)
        );
        assert_eq!(provider_of("en_US-joe-medium", None), None);
        assert_eq!(provider_of("robot", None), None);
    }

    #[test]
    fn piper_voices_are_described_from_their_name() {
        let joe = piper_info("en_US-joe-medium");
        assert_eq!(joe.name, "Joe (medium)");
        assert_eq!(joe.language, "en-US");
        assert_eq!(joe.provider, "piper");
        let odd = piper_info("custom");
        assert_eq!(odd.name, "custom");
        assert_eq!(odd.language, "und");
        assert_eq!(piper_info("de-thorsten-low").language, "de");
    }
}
