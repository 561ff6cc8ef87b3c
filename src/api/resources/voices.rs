//! `GET /v1/voices`: the voices this server can speak with (see
//! [`crate::agent::voices`]), and `GET /v1/voices/{id}/sample`, a short
//! sentence in that voice, synthesized on demand and kept in a bounded
//! cache.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;
use utoipa::ToSchema;

use crate::agent::model::{TtsKind, kind};
use crate::agent::service::AgentService;
use crate::agent::voices::{self, VoiceInfo};
use crate::api::extract::QueryParams;
use crate::api::page::{List, list_schema};
use crate::api::{ApiError, AppState, Caller};

/// Longest sample accepted from a provider.
const SAMPLE_MAX_AUDIO: Duration = Duration::from_secs(20);
/// Time allowed to synthesize a sample (a cold Piper voice loads first).
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Samples kept: enough for every local voice and a cloud list.
const CACHE_ENTRIES: usize = 32;
/// Bytes of WAV kept at most (a sample is about 200 kB).
const CACHE_BYTES: usize = 16 << 20;
/// Samples synthesized at once; more wait (the machine's cores are for
/// calls).
const CONCURRENT_SAMPLES: usize = 2;

/// The routes of `/v1/voices`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/voices", get(list))
        .route("/voices/{id}/sample", get(sample))
}

/// A voice as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VoiceOut {
    /// What an agent's (or a call's) `voice` takes. An agent that names
    /// no `model.tts` speaks with this voice's provider.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `piper` and `espeak` (local), `openai` or `elevenlabs`: the value
    /// of an agent's `model.tts`.
    pub provider: String,
    /// BCP 47 tag of the language it speaks best.
    pub language: String,
    /// `female` or `male`, when the provider says.
    pub gender: Option<String>,
    /// Where to hear it: a WAV of a short sentence.
    pub sample_url: String,
}

impl From<VoiceInfo> for VoiceOut {
    fn from(v: VoiceInfo) -> Self {
        VoiceOut {
            sample_url: format!("/v1/voices/{}/sample", v.id),
            id: v.id,
            name: v.name,
            provider: v.provider.to_owned(),
            language: v.language,
            gender: v.gender.map(str::to_owned),
        }
    }
}

list_schema!(VoiceList, VoiceOut);

/// Voice samples already made, and the agent service used to make them
/// when the server runs without a call engine (tests of the API alone).
#[derive(Debug)]
pub struct VoiceSamples {
    /// Oldest first; bounded by [`CACHE_ENTRIES`] and [`CACHE_BYTES`].
    /// Held for a lookup or an insert, never across an `.await`.
    cache: Mutex<VecDeque<(String, Bytes)>>,
    permits: Semaphore,
    own_service: OnceLock<Arc<AgentService>>,
}

impl Default for VoiceSamples {
    fn default() -> Self {
        VoiceSamples {
            cache: Mutex::default(),
            permits: Semaphore::new(CONCURRENT_SAMPLES),
            own_service: OnceLock::new(),
        }
    }
}

impl VoiceSamples {
    fn get(&self, id: &str) -> Option<Bytes> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.iter().find(|(k, _)| k == id).map(|(_, b)| b.clone())
    }

    fn put(&self, id: &str, wav: Bytes) {
        if wav.len() > CACHE_BYTES {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|(k, _)| k != id);
        cache.push_back((id.to_owned(), wav));
        let mut total: usize = cache.iter().map(|(_, b)| b.len()).sum();
        while cache.len() > CACHE_ENTRIES || total > CACHE_BYTES {
            match cache.pop_front() {
                Some((_, b)) => total -= b.len(),
                None => break,
            }
        }
    }

    /// How many samples are cached.
    pub fn len(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no sample is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The agent service: the call engine's, or one of the API's own with the
/// same configuration.
fn service(state: &AppState) -> Arc<AgentService> {
    if let Some(s) = state.engine.as_ref().and_then(|e| e.agents()) {
        return s;
    }
    state
        .voice_samples
        .own_service
        .get_or_init(|| AgentService::new(&state.config, Some(state.store.clone())))
        .clone()
}

/// The organization's own provider keys (`PATCH /v1/settings`).
async fn org_keys(state: &AppState, org_id: &str) -> Result<Option<Value>, ApiError> {
    Ok(state
        .store
        .org_settings(org_id)
        .await?
        .get("provider_keys")
        .cloned())
}

/// The voices an organization with `org_keys` can use; `None` lists
/// only what the server itself has.
pub(crate) async fn catalog(
    state: &AppState,
    org_keys: Option<&Value>,
) -> Result<Vec<VoiceInfo>, ApiError> {
    let sources = service(state).voice_sources(org_keys);
    // Checks files and may run `espeak-ng --voices` once: off the runtime.
    tokio::task::spawn_blocking(move || voices::list(&sources))
        .await
        .map_err(|e| ApiError::Internal(format!("voice catalogue: {e}")))
}

/// Lists the voices this server can speak with: local ones first, then
/// those of each cloud provider with a key (the server's, or the
/// organization's own in `/v1/settings`).
#[utoipa::path(
    get, path = "/v1/voices", tag = "voices",
    params(
        ("provider" = Option<String>, Query, description = "Only this provider's voices: `piper`, `espeak`, `openai`, `elevenlabs`"),
        ("language" = Option<String>, Query, description = "Only voices of this language: `en` matches `en-US` and `en-GB`"),
    ),
    responses(
        (status = 200, description = "The voices (one page: `next_cursor` is null)", body = VoiceList),
        (status = 422, description = "Unknown provider", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<List<VoiceOut>>, ApiError> {
    let provider = query.choice("provider", &["piper", "espeak", "openai", "elevenlabs"])?;
    let language = query.text("language").map(str::to_ascii_lowercase);
    let keys = org_keys(&state, &caller.org_id).await?;
    let data = catalog(&state, keys.as_ref())
        .await?
        .into_iter()
        .filter(|v| provider.is_none_or(|p| v.provider == p))
        .filter(|v| {
            language.as_deref().is_none_or(|want| {
                let have = v.language.to_ascii_lowercase();
                have == want
                    || have
                        .strip_prefix(want)
                        .is_some_and(|rest| rest.starts_with('-'))
            })
        })
        .map(VoiceOut::from)
        .collect();
    Ok(Json(List {
        data,
        next_cursor: None,
    }))
}

/// A sentence that shows a voice off, in its language (English when the
/// language has none here).
fn sample_text(language: &str) -> &'static str {
    match language.split('-').next().unwrap_or_default() {
        "es" => "Hola, gracias por llamar. Así sueno por teléfono. ¿En qué puedo ayudarle?",
        "fr" => {
            "Bonjour, merci de votre appel. Voici ma voix au téléphone. Comment puis-je vous aider ?"
        }
        "de" => "Hallo, danke für Ihren Anruf. So klinge ich am Telefon. Wie kann ich helfen?",
        "it" => {
            "Buongiorno, grazie per la chiamata. Ecco come suono al telefono. Come posso aiutarla?"
        }
        "pt" => "Olá, obrigado por ligar. É assim que eu soo ao telefone. Como posso ajudar?",
        "nl" => {
            "Hallo, bedankt voor het bellen. Zo klink ik aan de telefoon. Waarmee kan ik helpen?"
        }
        "pl" => "Dzień dobry, dziękuję za telefon. Tak brzmię przez telefon. W czym mogę pomóc?",
        _ => {
            "Hello, thanks for calling. This is how I sound on the phone. How can I help you today?"
        }
    }
}

/// A short sentence spoken with a voice, as WAV (16-bit PCM, mono, at the
/// voice's own rate). Made on first request and cached.
#[utoipa::path(
    get, path = "/v1/voices/{id}/sample", tag = "voices",
    params(("id" = String, Path, description = "Voice id from `GET /v1/voices`")),
    responses(
        (status = 200, description = "The sample", content_type = "audio/wav", body = Vec<u8>),
        (status = 404, description = "No such voice on this server (or not for this organization)", body = crate::api::error::ErrorBody),
        (status = 502, description = "The voice's provider failed; the detail says how", body = crate::api::error::ErrorBody),
    )
)]
pub async fn sample(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // Looked up in this organization's list first: a cloud voice another
    // organization pays for is not this one's to hear.
    let keys = org_keys(&state, &caller.org_id).await?;
    let voice = catalog(&state, keys.as_ref())
        .await?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or(ApiError::NotFound("voice"))?;
    let samples = &state.voice_samples;
    if let Some(wav) = samples.get(&id) {
        return Ok(wav_response(wav));
    }
    let _permit = samples
        .permits
        .acquire()
        .await
        .map_err(|_| ApiError::Internal("voice samples are shut".into()))?;
    // Another request may have made it while this one waited.
    if let Some(wav) = samples.get(&id) {
        return Ok(wav_response(wav));
    }
    let which = kind::<TtsKind>(voice.provider)
        .ok_or_else(|| ApiError::Internal(format!("voice provider {}", voice.provider)))?;
    let pcm = service(&state)
        .speak(
            which,
            &voice.id,
            keys.as_ref(),
            sample_text(&voice.language),
            SAMPLE_MAX_AUDIO,
            SAMPLE_TIMEOUT,
        )
        .await
        .map_err(|e| ApiError::BadGateway(format!("voice {id}: {e}")))?;
    let wav =
        hotline_media::wav::encode_wav(hotline_media::wav::WavSpec::mono(pcm.rate), &pcm.samples)
            .map_err(|e| ApiError::Internal(format!("voice sample: {e}")))?;
    let wav = Bytes::from(wav);
    samples.put(&id, wav.clone());
    Ok(wav_response(wav))
}

fn wav_response(wav: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "audio/wav"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        wav,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_the_newest_within_its_bounds() {
        let s = VoiceSamples::default();
        for i in 0..CACHE_ENTRIES + 5 {
            s.put(&format!("v{i}"), Bytes::from(vec![0u8; 10]));
        }
        assert_eq!(s.len(), CACHE_ENTRIES);
        assert!(s.get("v0").is_none());
        assert!(s.get(&format!("v{}", CACHE_ENTRIES + 4)).is_some());
        // Bytes bound: a big entry pushes out the old ones.
        s.put("big", Bytes::from(vec![0u8; CACHE_BYTES - 5]));
        assert!(s.get("big").is_some());
        assert_eq!(s.len(), 1);
        // Larger than the whole cache: not kept.
        s.put("huge", Bytes::from(vec![0u8; CACHE_BYTES + 1]));
        assert!(s.get("huge").is_none());
        // Replacing keeps one entry per voice.
        s.put("big", Bytes::from_static(b"x"));
        assert_eq!(s.get("big").unwrap().len(), 1);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn samples_are_in_the_voice_s_language() {
        assert!(sample_text("fr-FR").starts_with("Bonjour"));
        assert!(sample_text("es-419").starts_with("Hola"));
        assert!(sample_text("en-US").starts_with("Hello"));
        assert!(sample_text("und").starts_with("Hello"));
        for k in voices::ESPEAK_VOICES {
            assert!(!sample_text(k.language).is_empty());
        }
    }
}
