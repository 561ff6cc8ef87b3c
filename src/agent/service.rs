//! The voice agent as the server runs it: the speech and language engines,
//! built once from the configuration and shared by every call, and the
//! recipe that turns a call's request (its number's agent, a stored agent,
//! fields given on `POST /v1/calls`) into an [`AgentSpec`].
//!
//! Local engines load their models in the background at start-up (they
//! take about a second); a call that arrives first waits for them.
//! Engines no call asked for are never built.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;
use tracing::{info, warn};

use super::espeak::{EspeakTts, local_tts};
use super::flow::{FlowBrain, builtin, check_model};
use super::model::{AgentModel, BrainKind, SttKind, TtsKind, kind};
use super::openai::{
    self, DeepgramStt, ElevenLabsTts, OpenAiBrain, OpenAiConfig, OpenAiStt, OpenAiSummarizer,
    OpenAiTts, RealtimeAgentConfig, RealtimeSetup, SttTransport, SummaryRequest,
};
use super::pipeline::{AgentReport, AgentSpec, GreetingCache, TurnConfig, ready_opening};
use super::piper::{self, PiperConfig};
use super::provider::{Brain, CallInfo, Stt, Tts};
use super::provider::{PcmChunk, ProviderError, TtsEvent, TtsOptions};
use super::settings::AgentConfig;
use super::silero::SpeechConfirmer;
use super::voices::{self, Sources};
use super::whisper::WhisperStt;
use crate::api::validate::DenyList;
use crate::config::{Config, ProviderConfig, ProvidersConfig};
use crate::store::{Agent, Store};

/// Which agent a call runs, and what its request changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentRequest {
    /// The organization whose agent it is; the server's default agent when
    /// unset.
    pub org_id: Option<String>,
    /// A stored agent (`agt_…`) of `org_id`; the default agent when unset.
    pub agent_id: Option<String>,
    /// Instructions for the brain, replacing the agent's.
    pub system_prompt: Option<String>,
    /// What the call is for; the after-call outcome is judged against it.
    pub objective: Option<String>,
    /// Said when the call is answered, replacing the agent's.
    pub first_message: Option<String>,
    /// TTS voice.
    pub voice: Option<String>,
    /// STT and TTS language.
    pub language: Option<String>,
    /// Call length limit.
    pub max_duration: Option<Duration>,
    /// Record the call (stereo WAV).
    pub record: Option<bool>,
    /// Where `transfer_call` sends the caller, replacing the agent's.
    pub transfer_number: Option<String>,
    /// An offline flow to run as the brain, whatever the agent's model
    /// says: a built-in's name (`receptionist`, `demo`) or a definition.
    pub flow: Option<Value>,
    /// Sentences appended to the prompt for this call only (an inbound
    /// number's reply-language directive, its after-hours note).
    pub instructions: Vec<String>,
    /// Where the caller's context comes from (an inbound number's
    /// `context_source`); fetched as the call starts and appended to the
    /// prompt.
    pub context: Option<crate::inbound::context::ContextPlan>,
    /// Screen an outbound call for voicemail before the agent speaks
    /// (`on_voicemail` on `POST /v1/calls`).
    pub voicemail: Option<crate::engine::screening::VoicemailPlan>,
    /// An outbound call with an objective: the agent also gets
    /// `schedule_callback` and `mark_do_not_call`
    /// ([`super::campaign_tools`]).
    pub campaign: bool,
    /// What the after-call summary extracts (a JSON schema), replacing
    /// the agent's.
    pub extraction_schema: Option<Value>,
}

/// What the server concluded about an agent call once it was over.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AgentResult {
    /// A few sentences on the call (LLM brains).
    pub summary: Option<String>,
    /// `achieved`, `partial` or `not_achieved`.
    pub outcome: Option<String>,
    /// What was captured: a flow's slots, or data extracted by a schema.
    pub structured_data: Option<Value>,
    /// Why no summary could be made, if it failed.
    pub error: Option<String>,
    /// The call's recording (stereo WAV), if it was recorded.
    pub recording_path: Option<String>,
    /// Per-turn timings.
    pub turns: Vec<super::TurnMetrics>,
    /// A flow's slots filled from speech: slot → what the caller said
    /// (the after-call report quotes it).
    pub slot_quotes: std::collections::BTreeMap<String, String>,
}

/// How an agent call is concluded after it ends.
#[derive(Clone)]
pub struct Conclusion {
    summarizer: Option<Arc<OpenAiSummarizer>>,
    objective: Option<String>,
    schema: Option<Value>,
}

impl std::fmt::Debug for Conclusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conclusion")
            .field("summarizer", &self.summarizer.is_some())
            .field("objective", &self.objective)
            .finish_non_exhaustive()
    }
}

/// Time allowed for the after-call summary before the call is reported
/// without one.
const SUMMARY_TIMEOUT: Duration = Duration::from_secs(45);

impl Conclusion {
    /// The result of a finished call: a flow's end state as it is, an
    /// LLM call summarized by the same kind of model.
    pub async fn conclude(&self, report: &AgentReport) -> AgentResult {
        if let Some(o) = &report.outcome {
            return AgentResult {
                summary: None,
                outcome: Some(o.outcome.clone()),
                structured_data: Some(o.data.clone()),
                slot_quotes: o.quotes.clone(),
                ..AgentResult::default()
            };
        }
        let Some(summarizer) = &self.summarizer else {
            return AgentResult::default();
        };
        if report.messages.is_empty() {
            return AgentResult::default();
        }
        let request = SummaryRequest {
            transcript: &report.messages,
            objective: self.objective.as_deref(),
            schema: self.schema.as_ref(),
        };
        match tokio::time::timeout(SUMMARY_TIMEOUT, summarizer.summarize(&request)).await {
            Ok(Ok(s)) => AgentResult {
                summary: Some(s.summary),
                outcome: s.outcome.map(|o| o.as_str().to_owned()),
                structured_data: s.structured_data,
                ..AgentResult::default()
            },
            Ok(Err(e)) => AgentResult {
                error: Some(e.to_string()),
                ..AgentResult::default()
            },
            Err(_) => AgentResult {
                error: Some("the summary took too long".into()),
                ..AgentResult::default()
            },
        }
    }
}

/// How a call's agent runs.
#[derive(Debug)]
pub enum AgentRun {
    /// The STT → brain → TTS pipeline, with these settings.
    Pipeline(AgentSpec),
    /// The OpenAI Realtime API, speech to speech
    /// ([`openai::run_realtime`]).
    Realtime(RealtimeRun),
}

/// A realtime agent's settings: the server's, resolved for this agent,
/// and the call's.
#[derive(Debug)]
pub struct RealtimeRun {
    /// Endpoint, model, key, turn detection.
    pub config: RealtimeAgentConfig,
    /// Instructions, greeting, tools, limits.
    pub setup: RealtimeSetup,
}

/// A call's agent, ready to run.
#[derive(Debug)]
pub struct PreparedAgent {
    /// How it runs.
    pub run: AgentRun,
    /// Where the call is to be recorded, if it is.
    pub recording: Option<PathBuf>,
    /// How to conclude the call.
    pub conclusion: Conclusion,
}

impl PreparedAgent {
    /// Appends `lines` to the prompt, each as a paragraph of its own (the
    /// caller's context, fetched while the agent was being prepared). A
    /// flow has no prompt to append to.
    pub fn append_instructions(&mut self, lines: &[String]) {
        let prompt = match &mut self.run {
            AgentRun::Pipeline(spec) => &mut spec.system_prompt,
            AgentRun::Realtime(rt) => &mut rt.setup.instructions,
        };
        for line in lines {
            prompt.push_str("\n\n");
            prompt.push_str(line);
        }
    }

    /// The pipeline's settings, unless the agent runs on the Realtime API.
    pub fn pipeline(&self) -> Option<&AgentSpec> {
        match &self.run {
            AgentRun::Pipeline(spec) => Some(spec),
            AgentRun::Realtime(_) => None,
        }
    }
}

/// The engines and the recipe; one per server.
pub struct AgentService {
    config: AgentConfig,
    deny: Arc<DenyList>,
    providers: ProvidersConfig,
    data_dir: PathBuf,
    store: Option<Store>,
    /// How national caller IDs are read as E.164 (`sip.default_country_code`).
    default_country_code: Option<String>,
    greetings: Arc<GreetingCache>,
    whisper: OnceCell<Result<Arc<dyn Stt>, String>>,
    silero: OnceCell<Option<Arc<SpeechConfirmer>>>,
    local_tts: OnceCell<Arc<dyn Tts>>,
    espeak: OnceCell<Arc<dyn Tts>>,
    default_flow: OnceCell<Arc<dyn Brain>>,
    server_llm: OnceCell<Result<Arc<dyn Brain>, String>>,
    summarizer: OnceCell<Option<Arc<OpenAiSummarizer>>>,
    /// The server-keyed cloud engines, one per kind, built on first use
    /// (cheap: no I/O, so the lock is never held across an await).
    cloud_stt: std::sync::Mutex<HashMap<SttKind, Arc<dyn Stt>>>,
    cloud_tts: std::sync::Mutex<HashMap<TtsKind, Arc<dyn Tts>>>,
}

impl std::fmt::Debug for AgentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentService")
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

impl AgentService {
    /// The service for `config`; `store` resolves stored agents.
    pub fn new(config: &Config, store: Option<Store>) -> Arc<AgentService> {
        let deny = match &config.api.deny_prefixes {
            Some(prefixes) => DenyList::new(prefixes.iter().cloned()),
            None => DenyList::default(),
        };
        Arc::new(AgentService {
            config: config.agent.resolved(&config.data_dir),
            deny: Arc::new(deny),
            providers: config.providers.clone(),
            data_dir: config.data_dir.clone(),
            store,
            default_country_code: config.sip.default_country_code.clone(),
            greetings: Arc::default(),
            whisper: OnceCell::new(),
            silero: OnceCell::new(),
            local_tts: OnceCell::new(),
            espeak: OnceCell::new(),
            default_flow: OnceCell::new(),
            server_llm: OnceCell::new(),
            summarizer: OnceCell::new(),
            cloud_stt: std::sync::Mutex::default(),
            cloud_tts: std::sync::Mutex::default(),
        })
    }

    /// Numbers agents may not transfer callers to (`api.deny_prefixes`).
    pub fn deny_list(&self) -> Arc<DenyList> {
        self.deny.clone()
    }

    /// Loads the default agent's engines and synthesizes its greeting, so
    /// that the first call does not wait. Logs what it could not load.
    pub async fn warm_up(self: &Arc<Self>) {
        let default = AgentRequest::default();
        match self.prepare(&default, &CallInfo::default()).await {
            Ok(PreparedAgent {
                run: AgentRun::Pipeline(spec),
                ..
            }) => {
                self.warm_greeting(&spec).await;
                info!(
                    stt = spec.stt.name(),
                    brain = spec.brain.name(),
                    tts = spec.tts.name(),
                    "voice agent ready"
                );
            }
            Ok(PreparedAgent {
                run: AgentRun::Realtime(rt),
                ..
            }) => info!(model = %rt.config.model, "voice agent ready (OpenAI Realtime)"),
            Err(e) => warn!(error = %e, "the default voice agent is not available"),
        }
    }

    /// Synthesizes an agent's greeting (its first message, or a flow's
    /// opening) into the cache; call it when an agent is saved.
    pub async fn warm_agent(self: &Arc<Self>, agent: &Agent) {
        let request = AgentRequest {
            org_id: Some(agent.org_id.clone()),
            agent_id: Some(agent.id.clone()),
            ..AgentRequest::default()
        };
        self.warm_request(&request).await;
    }

    /// Synthesizes the greeting `request` would open with (an agent just
    /// saved, or an API call's own first message while it rings), so it
    /// plays at once on the answer.
    pub async fn warm_request(self: &Arc<Self>, request: &AgentRequest) {
        match self.prepare(request, &CallInfo::default()).await {
            Ok(PreparedAgent {
                run: AgentRun::Pipeline(spec),
                ..
            }) => self.warm_greeting(&spec).await,
            // A realtime agent's voice is the API's: nothing to warm.
            Ok(_) => {}
            Err(e) => warn!(
                agent = request.agent_id.as_deref().unwrap_or("-"),
                error = %e,
                "cannot prepare a greeting ahead of calls"
            ),
        }
    }

    async fn warm_greeting(&self, spec: &AgentSpec) {
        let text = match &spec.first_message {
            Some(t) => Some(t.clone()),
            None if spec.brain_leads => ready_opening(spec.brain.as_ref(), &CallInfo::default()),
            None => None,
        };
        let Some(text) = text else { return };
        if let Err(e) = self
            .greetings
            .warm(
                spec.tts.as_ref(),
                spec.voice.as_deref(),
                spec.language.as_deref(),
                &text,
            )
            .await
        {
            warn!(error = %e, "cannot synthesize a greeting ahead of calls");
        }
    }

    /// The caller context `request` asks for (an inbound number's
    /// `context_source`), as paragraphs for the prompt; none when it asks
    /// for none or there is none to be had in time.
    pub async fn caller_context(
        &self,
        request: &AgentRequest,
        call: &crate::call::CallInfo,
    ) -> Vec<String> {
        let (Some(plan), Some(org_id)) = (&request.context, &request.org_id) else {
            return Vec::new();
        };
        let caller =
            crate::engine::blocked::caller_e164(&call.from, self.default_country_code.as_deref());
        let at = crate::inbound::context::ContextCall {
            call_id: call.id.as_str(),
            org_id,
            from: &call.from,
            caller,
            started: call.created,
        };
        crate::inbound::context::resolve(plan, self.store.as_ref(), &at).await
    }

    /// The agent a call runs: its engines, prompt and settings.
    pub async fn prepare(
        &self,
        request: &AgentRequest,
        call: &CallInfo,
    ) -> Result<PreparedAgent, String> {
        let agent = match (&request.org_id, &request.agent_id, &self.store) {
            (Some(org), Some(id), Some(store)) => Some(
                store
                    .get_agent(org, id)
                    .await
                    .map_err(|e| format!("agent {id}: {e}"))?,
            ),
            (_, Some(id), None) => return Err(format!("agent {id}: no database")),
            _ => None,
        };
        let mut model = match &agent {
            Some(a) => AgentModel::parse(&a.model).map_err(|issues| {
                let list: Vec<String> = issues.iter().map(|(p, m)| format!("{p}: {m}")).collect();
                format!("agent model: {}", list.join("; "))
            })?,
            None => AgentModel::default(),
        };
        if let Some(flow) = &request.flow {
            model.provider = Some(BrainKind::Flow);
            model.flow = Some(flow.clone());
        }
        let brain_kind = match model.provider {
            Some(k) => k,
            None => kind::<BrainKind>(&self.providers.llm.kind).unwrap_or(BrainKind::Auto),
        };
        let org_keys = match (&request.org_id, &self.store) {
            (Some(org), Some(store)) => store
                .org_settings(org)
                .await
                .map_err(|e| format!("organization settings: {e}"))?
                .get("provider_keys")
                .cloned(),
            _ => None,
        };
        let org_key = |provider: &str| {
            org_keys
                .as_ref()
                .and_then(|k| k.get(provider))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let brain_kind = match brain_kind {
            BrainKind::Auto
                if self.llm_configured()
                    || model.base_url.is_some()
                    || model.api_key.is_some()
                    || org_key("openai").is_some() =>
            {
                BrainKind::Openai
            }
            BrainKind::Auto => BrainKind::Flow,
            k => k,
        };
        if brain_kind == BrainKind::OpenaiRealtime {
            return self
                .prepare_realtime(request, agent.as_ref(), &model, call)
                .await;
        }
        let (brain, summarizer): (Arc<dyn Brain>, _) = match brain_kind {
            BrainKind::Flow => (self.flow_brain(agent.as_ref(), &model, call).await?, None),
            _ => self.llm_brain(&model, org_key("openai")).await?,
        };
        let stt_kind = match model.stt {
            Some(k) => k,
            None => kind::<SttKind>(&self.providers.stt.kind).unwrap_or(SttKind::Whisper),
        };
        let voice = request
            .voice
            .clone()
            .or_else(|| agent.as_ref().and_then(|a| a.voice.clone()));
        // A voice from the catalogue brings its provider along, unless the
        // agent names one; a cloud voice only where that cloud has a key.
        let by_voice = voice.as_deref().and_then(|v| {
            let k = voices::provider_of(v, Some(self.piper_config().voice.as_str()))?;
            self.tts_configured(k, org_keys.as_ref()).then_some(k)
        });
        let tts_kind = match model.tts.or(by_voice) {
            Some(k) => k,
            None => kind::<TtsKind>(&self.providers.tts.kind).unwrap_or(TtsKind::Piper),
        };
        let stt_key = match stt_kind {
            SttKind::Whisper => None,
            SttKind::Deepgram => org_key("deepgram"),
            SttKind::Openai | SttKind::OpenaiRealtime => org_key("openai"),
        };
        let tts_key = match tts_kind {
            TtsKind::Piper | TtsKind::Espeak => None,
            TtsKind::Elevenlabs => org_key("elevenlabs"),
            TtsKind::Openai => org_key("openai"),
        };
        let stt = self.stt(stt_kind, stt_key).await?;
        let tts = self.tts(tts_kind, tts_key).await?;

        let c = &self.config;
        let mut spec = AgentSpec::new(stt, brain, tts);
        let flow = brain_kind == BrainKind::Flow;
        spec.brain_leads = flow;
        spec.system_prompt = compose_prompt(request, agent.as_ref());
        // A flow has its own greeting: its opening node.
        spec.first_message = if flow {
            None
        } else {
            request
                .first_message
                .clone()
                .or_else(|| agent.as_ref().and_then(|a| a.first_message.clone()))
                .or_else(|| agent.is_none().then(default_greeting))
        };
        spec.greeting_interruptible = model
            .greeting_interruptible
            .unwrap_or(c.greeting_interruptible);
        spec.backchannels.enabled = model.backchannels.unwrap_or(c.backchannels);
        spec.confirmer = self.confirmer().await;
        spec.endpoint_silence =
            Duration::from_millis(model.endpoint_silence_ms.unwrap_or(c.endpoint_silence_ms));
        spec.turns = TurnConfig {
            barge_in_min: Duration::from_millis(c.barge_in_ms),
            max_utterance: Duration::from_secs(c.max_utterance_secs),
            silence_reprompt: Duration::from_secs(c.silence_reprompt_secs),
            ..TurnConfig::default()
        };
        spec.max_duration = Some(
            request
                .max_duration
                .or_else(|| {
                    agent
                        .as_ref()
                        .and_then(|a| a.max_duration_secs)
                        .and_then(|s| u64::try_from(s).ok())
                        .map(Duration::from_secs)
                })
                .unwrap_or(Duration::from_secs(c.max_duration_secs)),
        );
        spec.language = request
            .language
            .clone()
            .or_else(|| agent.as_ref().and_then(|a| a.language.clone()));
        spec.voice = voice;
        spec.transfer_to = request
            .transfer_number
            .clone()
            .or_else(|| agent.as_ref().and_then(|a| a.transfer_number.clone()));
        if let Some(a) = &agent {
            // Checked when the agent was saved; a stored value that no
            // longer parses (an older version's) is refused here.
            spec.http_tools = super::tools::parse_tools(&a.tools, None).map_err(|problems| {
                let list: Vec<String> = problems.iter().map(|(p, m)| format!("{p}: {m}")).collect();
                format!("agent tools: {}", list.join("; "))
            })?;
        }
        if request.campaign {
            spec.tools.extend(super::campaign_tools::tools());
        }
        spec.greetings = self.greetings.clone();
        let record = request.record.or(model.record).unwrap_or(c.record);
        let recording = (record && !call.call_id.is_empty()).then(|| {
            self.data_dir
                .join("recordings")
                .join(format!("{}.wav", call.call_id))
        });
        spec.recording.clone_from(&recording);
        Ok(PreparedAgent {
            run: AgentRun::Pipeline(spec),
            recording,
            conclusion: Conclusion {
                summarizer,
                objective: request.objective.clone(),
                schema: request
                    .extraction_schema
                    .clone()
                    .or_else(|| model.structured_data_schema.clone()),
            },
        })
    }

    /// A realtime agent: the same request and agent settings as the
    /// pipeline's, given to the realtime model instead.
    async fn prepare_realtime(
        &self,
        request: &AgentRequest,
        agent: Option<&Agent>,
        model: &AgentModel,
        call: &CallInfo,
    ) -> Result<PreparedAgent, String> {
        let c = &self.config;
        let mut config = c.openai_realtime.clone();
        let mut own_key = None;
        let p = &self.providers.llm;
        let server = kind::<BrainKind>(&p.kind) == Some(BrainKind::OpenaiRealtime);
        for (m, url, key) in [
            (
                p.model.as_ref().filter(|_| server),
                p.base_url.as_ref().filter(|_| server),
                p.api_key.as_ref().filter(|_| server),
            ),
            (
                model.model.as_ref(),
                model.base_url.as_ref(),
                model.api_key.as_ref(),
            ),
        ] {
            if let Some(m) = m {
                config.model.clone_from(m);
            }
            if let Some(u) = url {
                config.url = realtime_url(u);
            }
            if let Some(k) = key {
                config.api_key = Some(k.clone());
            }
        }
        if model.api_key.is_some() {
            own_key.clone_from(&model.api_key);
        }
        config
            .check()
            .map_err(|(k, m)| format!("agent.openai_realtime.{k}: {m}"))?;
        let mut setup = RealtimeSetup::new(compose_prompt(request, agent));
        setup.first_message = request
            .first_message
            .clone()
            .or_else(|| agent.and_then(|a| a.first_message.clone()))
            .or_else(|| agent.is_none().then(default_greeting));
        setup.greeting_interruptible = model
            .greeting_interruptible
            .unwrap_or(c.greeting_interruptible);
        setup.silence_reprompt =
            (c.silence_reprompt_secs > 0).then(|| Duration::from_secs(c.silence_reprompt_secs));
        setup.max_duration = Some(
            request
                .max_duration
                .or_else(|| {
                    agent
                        .and_then(|a| a.max_duration_secs)
                        .and_then(|s| u64::try_from(s).ok())
                        .map(Duration::from_secs)
                })
                .unwrap_or(Duration::from_secs(c.max_duration_secs)),
        );
        setup.language = request
            .language
            .clone()
            .or_else(|| agent.and_then(|a| a.language.clone()));
        setup.voice = request
            .voice
            .clone()
            .or_else(|| agent.and_then(|a| a.voice.clone()));
        setup.transfer_to = request
            .transfer_number
            .clone()
            .or_else(|| agent.and_then(|a| a.transfer_number.clone()));
        if let Some(a) = agent {
            setup.http_tools = super::tools::parse_tools(&a.tools, None).map_err(|problems| {
                let list: Vec<String> = problems.iter().map(|(p, m)| format!("{p}: {m}")).collect();
                format!("agent tools: {}", list.join("; "))
            })?;
        }
        if request.campaign {
            setup.tools.extend(super::campaign_tools::tools());
        }
        // The apology is for when the API fails: a local voice that needs
        // no model.
        setup.apology_tts = self.tts(TtsKind::Espeak, None).await.ok();
        let record = request.record.or(model.record).unwrap_or(c.record);
        let recording = (record && !call.call_id.is_empty()).then(|| {
            self.data_dir
                .join("recordings")
                .join(format!("{}.wav", call.call_id))
        });
        setup.recording.clone_from(&recording);
        // The summary is made by the server's chat model, with the agent's
        // own key if it brought one.
        let summarizer = match own_key {
            Some(key) => {
                let mut s = self.server_llm_config();
                s.api_key = Some(key);
                OpenAiSummarizer::new(s).ok().map(Arc::new)
            }
            None => self
                .summarizer
                .get_or_init(|| async {
                    OpenAiSummarizer::new(self.server_llm_config())
                        .ok()
                        .map(Arc::new)
                })
                .await
                .clone(),
        };
        Ok(PreparedAgent {
            run: AgentRun::Realtime(RealtimeRun { config, setup }),
            recording,
            conclusion: Conclusion {
                summarizer,
                objective: request.objective.clone(),
                schema: request
                    .extraction_schema
                    .clone()
                    .or_else(|| model.structured_data_schema.clone()),
            },
        })
    }

    /// Whether the server has an LLM to offer: a key (config or
    /// `OPENAI_API_KEY`) or a self-hosted base URL.
    fn llm_configured(&self) -> bool {
        let c = self.server_llm_config();
        c.base_url.trim_end_matches('/') != openai::OPENAI_BASE_URL
            || c.api_key.is_some()
            || std::env::var(openai::API_KEY_ENV).is_ok_and(|k| !k.trim().is_empty())
    }

    /// `[agent.openai]` with `[providers.llm]`'s simple settings over it.
    fn server_llm_config(&self) -> OpenAiConfig {
        let mut c = self.config.openai.clone();
        let p = &self.providers.llm;
        if let Some(m) = &p.model {
            c.model.clone_from(m);
        }
        if let Some(u) = &p.base_url {
            c.base_url.clone_from(u);
        }
        if p.api_key.is_some() {
            c.api_key.clone_from(&p.api_key);
        }
        c
    }

    async fn flow_brain(
        &self,
        agent: Option<&Agent>,
        model: &AgentModel,
        _call: &CallInfo,
    ) -> Result<Arc<dyn Brain>, String> {
        match &model.flow {
            Some(Value::String(name)) if name == "receptionist" => {
                let business = agent.map_or("us", |a| a.name.as_str());
                // Numbers said without a country code take the caller's.
                flow_of(builtin::receptionist(business, None))
            }
            Some(Value::String(_)) => Ok(Arc::new(FlowBrain::demo())),
            Some(def) if !def.is_null() => {
                let as_model = serde_json::json!({"provider": "flow", "flow": def});
                if let Some(issue) = check_model(&as_model).first() {
                    return Err(format!("agent flow: {issue}"));
                }
                FlowBrain::from_model(&as_model)
                    .map(|b| Arc::new(b) as Arc<dyn Brain>)
                    .map_err(|issues| format!("agent flow: {issues:?}"))
            }
            _ => self
                .default_flow
                .get_or_try_init(|| async {
                    self.config
                        .flow
                        .load()
                        .map(|b| Arc::new(b) as Arc<dyn Brain>)
                        .map_err(|e| e.to_string())
                })
                .await
                .cloned(),
        }
    }

    async fn llm_brain(
        &self,
        model: &AgentModel,
        org_key: Option<String>,
    ) -> Result<(Arc<dyn Brain>, Option<Arc<OpenAiSummarizer>>), String> {
        if let Some(c) = self.own_llm_config(model, org_key) {
            let brain = OpenAiBrain::new(c.clone()).map_err(|e| e.to_string())?;
            let summarizer = OpenAiSummarizer::new(c).ok().map(Arc::new);
            return Ok((Arc::new(brain), summarizer));
        }
        let brain = self
            .server_llm
            .get_or_init(|| async {
                OpenAiBrain::new(self.server_llm_config())
                    .map(|b| Arc::new(b) as Arc<dyn Brain>)
                    .map_err(|e| e.to_string())
            })
            .await
            .clone()?;
        let summarizer = self
            .summarizer
            .get_or_init(|| async {
                OpenAiSummarizer::new(self.server_llm_config())
                    .ok()
                    .map(Arc::new)
            })
            .await
            .clone();
        Ok((brain, summarizer))
    }

    /// The endpoint of an agent that brings its own key or model (or
    /// whose organization has a key): the server's settings with the
    /// agent's over them. `None` when the agent uses the server's as is.
    fn own_llm_config(&self, model: &AgentModel, org_key: Option<String>) -> Option<OpenAiConfig> {
        let own = model.model.is_some()
            || model.base_url.is_some()
            || model.api_key.is_some()
            || org_key.is_some()
            || model.temperature.is_some();
        if !own {
            return None;
        }
        // Bring your own key (or model): an endpoint for this call.
        let mut c = self.server_llm_config();
        if let Some(m) = &model.model {
            c.model.clone_from(m);
        }
        if let Some(u) = &model.base_url {
            c.base_url.clone_from(u);
        }
        // The agent's own key, else its organization's, else the
        // server's.
        if let Some(k) = model.api_key.clone().or(org_key) {
            c.api_key = Some(k);
        }
        if model.temperature.is_some() {
            c.temperature = model.temperature;
        }
        Some(c)
    }

    /// The chat endpoint that writes a finished call's report: the one
    /// the call's agent would talk to (its own key or model, else its
    /// organization's key, else the server's LLM), or `None` when there
    /// is no LLM to use (the offline default: the report is then put
    /// together from the flow's slots). A realtime agent's model speaks
    /// audio, so its report uses the server's chat model with the agent's
    /// key, as its summary does.
    pub async fn report_llm(
        &self,
        org_id: &str,
        agent_id: Option<&str>,
    ) -> Result<Option<OpenAiConfig>, String> {
        let model = match (agent_id, &self.store) {
            (Some(id), Some(store)) => match store.get_agent(org_id, id).await {
                Ok(a) => AgentModel::parse(&a.model).unwrap_or_default(),
                // Deleted since the call: the organization's settings apply.
                Err(crate::store::StoreError::NotFound) => AgentModel::default(),
                Err(e) => return Err(format!("agent {id}: {e}")),
            },
            _ => AgentModel::default(),
        };
        let org_key = match &self.store {
            Some(store) => store
                .org_settings(org_id)
                .await
                .map_err(|e| format!("organization settings: {e}"))?
                .get("provider_keys")
                .and_then(|k| k.get("openai"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            None => None,
        };
        if model.provider == Some(BrainKind::OpenaiRealtime) {
            let mut c = self.server_llm_config();
            if let Some(k) = model.api_key.clone().or(org_key) {
                c.api_key = Some(k);
            }
            return Ok(Some(c));
        }
        if let Some(c) = self.own_llm_config(&model, org_key) {
            return Ok(Some(c));
        }
        Ok(self.llm_configured().then(|| self.server_llm_config()))
    }

    /// Silero for barge-in onsets; without its model, barge-ins go ahead
    /// unconfirmed (logged once).
    async fn confirmer(&self) -> Option<Arc<SpeechConfirmer>> {
        self.silero
            .get_or_init(|| async {
                let c = self.config.silero.clone();
                match tokio::task::spawn_blocking(move || SpeechConfirmer::new(&c)).await {
                    Ok(Ok(s)) => Some(Arc::new(s)),
                    Ok(Err(e)) => {
                        warn!(error = %e, "barge-ins are not checked for speech");
                        None
                    }
                    Err(e) => {
                        warn!(error = %e, "barge-ins are not checked for speech");
                        None
                    }
                }
            })
            .await
            .clone()
    }

    /// Speech-to-text of `which`; a cloud engine with the organization's
    /// own `key` is built for the call, the server's is shared.
    async fn stt(&self, which: SttKind, key: Option<String>) -> Result<Arc<dyn Stt>, String> {
        if which == SttKind::Whisper {
            let p = &self.providers.stt;
            return self
                .whisper
                .get_or_init(|| async {
                    let mut c = self.config.whisper.clone();
                    if let Some(m) = &p.model {
                        c.model = PathBuf::from(m);
                    }
                    tokio::task::spawn_blocking(move || WhisperStt::new(&c))
                        .await
                        .map_err(|e| e.to_string())?
                        .map(|s| Arc::new(s) as Arc<dyn Stt>)
                        .map_err(|e| e.to_string())
                })
                .await
                .clone();
        }
        if key.is_some() {
            return self.cloud_stt_for(which, key);
        }
        let mut shared = self.cloud_stt.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = shared.get(&which) {
            return Ok(s.clone());
        }
        let s = self.cloud_stt_for(which, None)?;
        shared.insert(which, s.clone());
        Ok(s)
    }

    fn cloud_stt_for(&self, which: SttKind, key: Option<String>) -> Result<Arc<dyn Stt>, String> {
        let p = &self.providers.stt;
        let key = key.or_else(|| p.api_key.clone());
        match which {
            SttKind::Deepgram => {
                let mut c = self.config.deepgram.clone();
                if let Some(m) = &p.model {
                    c.model.clone_from(m);
                }
                if key.is_some() {
                    c.api_key = key;
                }
                DeepgramStt::new(c).map(|s| Arc::new(s) as Arc<dyn Stt>)
            }
            _ => {
                let mut c = self.config.openai_stt.clone();
                if which == SttKind::OpenaiRealtime {
                    c.transport = SttTransport::Realtime;
                }
                if let Some(m) = &p.model {
                    c.model.clone_from(m);
                }
                if let Some(u) = &p.base_url {
                    c.base_url.clone_from(u);
                }
                if key.is_some() {
                    c.api_key = key;
                }
                OpenAiStt::new(c).map(|s| Arc::new(s) as Arc<dyn Stt>)
            }
        }
        .map_err(|e| e.to_string())
    }

    /// The server's configured speech-to-text (local Whisper by default),
    /// for audio that is not a conversation (voicemails).
    pub async fn default_stt(&self) -> Result<Arc<dyn Stt>, String> {
        let which = kind::<SttKind>(&self.providers.stt.kind).unwrap_or(SttKind::Whisper);
        self.stt(which, None).await
    }

    /// The server's own voice and the shared cache of synthesized
    /// prompts: what calls that need no agent speak with (phone alerts,
    /// verification codes). The configured TTS with the server's key; the
    /// embedded voice by default, and espeak-ng when a cloud voice cannot
    /// be built.
    pub async fn voice(&self) -> (Arc<dyn Tts>, Arc<GreetingCache>) {
        let which = kind::<TtsKind>(&self.providers.tts.kind).unwrap_or(TtsKind::Piper);
        let tts = match self.tts(which, None).await {
            Ok(t) => t,
            Err(e) => {
                warn!(error = %e, "the configured voice is unavailable; using espeak-ng");
                self.tts(TtsKind::Espeak, None)
                    .await
                    .expect("espeak-ng needs no key")
            }
        };
        (tts, self.greetings.clone())
    }

    /// Text-to-speech of `which`; as [`Self::stt`] for keys.
    async fn tts(&self, which: TtsKind, key: Option<String>) -> Result<Arc<dyn Tts>, String> {
        match which {
            TtsKind::Piper => Ok(self
                .local_tts
                .get_or_init(|| async {
                    let piper = self.piper_config();
                    let espeak = self.config.espeak.clone();
                    match tokio::task::spawn_blocking(move || local_tts(&piper, &espeak)).await {
                        Ok(t) => t,
                        Err(_) => Arc::new(EspeakTts::new(&self.config.espeak)),
                    }
                })
                .await
                .clone()),
            TtsKind::Espeak => Ok(self
                .espeak
                .get_or_init(|| async {
                    Arc::new(EspeakTts::new(&self.config.espeak)) as Arc<dyn Tts>
                })
                .await
                .clone()),
            other if key.is_some() => self.cloud_tts_for(other, key),
            other => {
                let mut shared = self.cloud_tts.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(t) = shared.get(&other) {
                    return Ok(t.clone());
                }
                let t = self.cloud_tts_for(other, None)?;
                shared.insert(other, t.clone());
                Ok(t)
            }
        }
    }

    /// The Piper settings the local voice loads with: `[agent.piper]`,
    /// with `[providers.tts] model` as the voice when Piper is the
    /// configured TTS.
    fn piper_config(&self) -> PiperConfig {
        let mut piper = self.config.piper.clone();
        let p = &self.providers.tts;
        if kind::<TtsKind>(&p.kind) == Some(TtsKind::Piper)
            && let Some(v) = &p.model
        {
            piper.voice.clone_from(v);
        }
        piper
    }

    /// Whether `which` can speak: local voices always (Piper falls back to
    /// espeak-ng), a cloud one when the server has a key for it (config or
    /// environment; for OpenAI also a self-hosted endpoint, which needs
    /// none) or the organization's `provider_keys` (from its settings)
    /// hold one.
    pub fn tts_configured(&self, which: TtsKind, org_keys: Option<&Value>) -> bool {
        let org = |name: &str| {
            org_keys
                .and_then(|k| k.get(name))
                .and_then(Value::as_str)
                .is_some_and(|k| !k.trim().is_empty())
        };
        let set = |k: &Option<String>| k.as_deref().is_some_and(|k| !k.trim().is_empty());
        let env = |name: &str| std::env::var(name).is_ok_and(|k| !k.trim().is_empty());
        let p = &self.providers.tts;
        let chosen = kind::<TtsKind>(&p.kind) == Some(which);
        match which {
            TtsKind::Piper | TtsKind::Espeak => true,
            TtsKind::Openai => {
                let c = &self.config.openai_tts;
                let own_base = c.base_url.trim_end_matches('/') != openai::OPENAI_BASE_URL
                    || (chosen && p.base_url.is_some());
                org("openai")
                    || set(&c.api_key)
                    || (chosen && set(&p.api_key))
                    || own_base
                    || env(openai::API_KEY_ENV)
            }
            TtsKind::Elevenlabs => {
                org("elevenlabs")
                    || set(&self.config.elevenlabs.api_key)
                    || (chosen && set(&p.api_key))
                    || env(openai::elevenlabs::ELEVENLABS_KEY_ENV)
            }
        }
    }

    /// What the voice catalogue lists for an organization with
    /// `org_keys`: the Piper voice if installed, espeak-ng's, and the
    /// clouds [`Self::tts_configured`] allows.
    pub fn voice_sources(&self, org_keys: Option<&Value>) -> Sources {
        let piper = self.piper_config();
        Sources {
            piper: piper::installed(&piper).then_some(piper.voice),
            espeak: Some(self.config.espeak.espeak_ng.clone()),
            openai: self.tts_configured(TtsKind::Openai, org_keys),
            elevenlabs: self.tts_configured(TtsKind::Elevenlabs, org_keys),
        }
    }

    /// Speaks `text` once with `voice` of `which` (an organization's own
    /// key from `org_keys` for a cloud voice) and returns all of its audio:
    /// voice samples. Fails when the provider does, when it produces more
    /// than `max_audio`, or when it takes longer than `timeout`.
    pub async fn speak(
        &self,
        which: TtsKind,
        voice: &str,
        org_keys: Option<&Value>,
        text: &str,
        max_audio: Duration,
        timeout: Duration,
    ) -> Result<PcmChunk, ProviderError> {
        let org_key = |name: &str| {
            org_keys
                .and_then(|k| k.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let key = match which {
            TtsKind::Piper | TtsKind::Espeak => None,
            TtsKind::Openai => org_key("openai"),
            TtsKind::Elevenlabs => org_key("elevenlabs"),
        };
        let tts = self
            .tts(which, key)
            .await
            .map_err(|e| ProviderError::new(which.as_str(), e, false))?;
        if which == TtsKind::Piper && tts.name() != which.as_str() {
            // The embedded voice fell back to espeak-ng: a sample of it
            // would not be the voice asked for.
            return Err(ProviderError::new(
                "piper",
                "the Piper voice could not be loaded",
                false,
            ));
        }
        collect_speech(tts.as_ref(), voice, text, max_audio, timeout).await
    }

    fn cloud_tts_for(&self, which: TtsKind, key: Option<String>) -> Result<Arc<dyn Tts>, String> {
        // `[providers.tts]` describes the provider it names; another
        // provider's voice, model or key would be sent to the wrong API.
        let unset = ProviderConfig {
            kind: which.as_str().to_owned(),
            model: None,
            base_url: None,
            api_key: None,
        };
        let p = if kind::<TtsKind>(&self.providers.tts.kind) == Some(which) {
            &self.providers.tts
        } else {
            &unset
        };
        let key = key.or_else(|| p.api_key.clone());
        match which {
            TtsKind::Elevenlabs => {
                let mut c = self.config.elevenlabs.clone();
                if let Some(v) = &p.model {
                    c.voice_id.clone_from(v);
                }
                if key.is_some() {
                    c.api_key = key;
                }
                ElevenLabsTts::new(c).map(|t| Arc::new(t) as Arc<dyn Tts>)
            }
            _ => {
                let mut c = self.config.openai_tts.clone();
                if let Some(v) = &p.model {
                    c.voice.clone_from(v);
                }
                if let Some(u) = &p.base_url {
                    c.base_url.clone_from(u);
                }
                if key.is_some() {
                    c.api_key = key;
                }
                OpenAiTts::new(c).map(|t| Arc::new(t) as Arc<dyn Tts>)
            }
        }
        .map_err(|e| e.to_string())
    }
}

/// All the audio of `text` spoken by `tts` with `voice`, bounded in length
/// and time; the synthesis is cancelled (its stream dropped) on either.
async fn collect_speech(
    tts: &dyn Tts,
    voice: &str,
    text: &str,
    max_audio: Duration,
    timeout: Duration,
) -> Result<PcmChunk, ProviderError> {
    let name = tts.name().to_owned();
    let mut stream = tts.start(&TtsOptions {
        voice: Some(voice.to_owned()),
        language: None,
    });
    if stream.text.send(text.to_owned()).await.is_err() {
        return Err(ProviderError::new(&name, "the synthesis ended early", true));
    }
    // The whole text is sent: closing the input lets the stream end.
    drop(stream.text);
    let mut out = PcmChunk {
        rate: 0,
        samples: Vec::new(),
    };
    let collect = async {
        while let Some(event) = stream.audio.recv().await {
            match event {
                TtsEvent::Audio { chunk, .. } => {
                    if out.rate == 0 {
                        out.rate = chunk.rate;
                    } else if chunk.rate != out.rate {
                        return Err(ProviderError::new(&name, "the sample rate changed", false));
                    }
                    out.samples.extend_from_slice(&chunk.samples);
                    if out.duration() > max_audio {
                        return Err(ProviderError::new(
                            &name,
                            format!("more than {} s of audio", max_audio.as_secs()),
                            false,
                        ));
                    }
                }
                TtsEvent::SegmentDone { .. } => {}
                TtsEvent::Error(e) => return Err(e),
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, collect).await {
        Ok(Ok(())) if out.samples.is_empty() => {
            Err(ProviderError::new(&name, "no audio was produced", true))
        }
        Ok(Ok(())) => Ok(out),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ProviderError::new(
            &name,
            format!("no complete audio within {} s", timeout.as_secs()),
            true,
        )),
    }
}

fn flow_of(def: super::flow::FlowDef) -> Result<Arc<dyn Brain>, String> {
    super::flow::Flow::new(def)
        .map(|f| Arc::new(FlowBrain::new(f)) as Arc<dyn Brain>)
        .map_err(|issues| format!("built-in flow: {issues:?}"))
}

/// The realtime endpoint under an API base: `https://host/v1` →
/// `wss://host/v1/realtime`; a `ws(s)://` URL is taken as the endpoint.
fn realtime_url(base: &str) -> String {
    let base = openai_base(base);
    if base.starts_with("ws://") || base.starts_with("wss://") {
        return base;
    }
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base
    };
    format!("{ws}/realtime")
}

fn openai_base(base: &str) -> String {
    base.trim().trim_end_matches('/').to_owned()
}

/// The prompt the brain gets: the request's or the agent's (or the
/// default), then the call's objective and its own instructions. What is
/// stored is never changed.
fn compose_prompt(request: &AgentRequest, agent: Option<&Agent>) -> String {
    let mut prompt = request
        .system_prompt
        .clone()
        .or_else(|| agent.map(|a| a.system_prompt.clone()))
        .unwrap_or_else(default_prompt);
    if let Some(o) = &request.objective {
        prompt.push_str(&format!("\n\nThe objective of this call: {o}"));
    }
    for line in &request.instructions {
        prompt.push_str("\n\n");
        prompt.push_str(line);
    }
    prompt
}

fn default_prompt() -> String {
    "You are Hotline's helpful voice assistant on a phone call. Keep replies short: \
     one or two sentences, plain words, no lists or markdown. When the caller is done, \
     say goodbye and call end_call."
        .into()
}

fn default_greeting() -> String {
    "Hello! This is the Hotline assistant. How can I help you?".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_endpoints_follow_the_api_base() {
        assert_eq!(
            realtime_url("https://api.openai.com/v1/"),
            "wss://api.openai.com/v1/realtime"
        );
        assert_eq!(
            realtime_url("http://127.0.0.1:8000/v1"),
            "ws://127.0.0.1:8000/v1/realtime"
        );
        assert_eq!(realtime_url("ws://h/rt"), "ws://h/rt");
    }

    /// A voice from the catalogue speaks with its own provider when the
    /// agent names none; a cloud voice only where that cloud has a key.
    #[tokio::test]
    async fn a_catalogue_voice_brings_its_provider() {
        let tts_of = |service: Arc<AgentService>, voice: &str| {
            let request = AgentRequest {
                voice: Some(voice.into()),
                ..AgentRequest::default()
            };
            async move {
                let p = service
                    .prepare(&request, &CallInfo::default())
                    .await
                    .unwrap();
                p.pipeline().unwrap().tts.name().to_owned()
            }
        };
        let mut config = Config::default();
        // The flow brain: no LLM is needed to prepare.
        config.providers.llm.kind = "flow".into();
        let plain = AgentService::new(&config, None);
        assert_eq!(tts_of(plain.clone(), "en-gb+f3").await, "espeak");
        if std::env::var(openai::API_KEY_ENV).is_err() {
            // No OpenAI key: the server's own voice speaks instead.
            assert_ne!(tts_of(plain.clone(), "coral").await, "openai");
        }
        config.agent.openai_tts.api_key = Some("sk-test".into());
        config.agent.openai_tts.base_url = "http://127.0.0.1:9/v1".into();
        let keyed = AgentService::new(&config, None);
        assert_eq!(tts_of(keyed.clone(), "coral").await, "openai");
        assert!(keyed.tts_configured(TtsKind::Openai, None));
        let org = serde_json::json!({"elevenlabs": "xi-org"});
        assert!(keyed.tts_configured(TtsKind::Elevenlabs, Some(&org)));
        assert_eq!(
            keyed.tts_configured(TtsKind::Elevenlabs, None),
            std::env::var(openai::elevenlabs::ELEVENLABS_KEY_ENV).is_ok_and(|k| !k.is_empty())
        );
    }

    #[tokio::test]
    async fn providers_llm_openai_realtime_runs_the_realtime_agent() {
        let mut config = Config::default();
        config.providers.llm.kind = "openai-realtime".into();
        config.providers.llm.model = Some("gpt-realtime-mini".into());
        config.providers.llm.base_url = Some("http://127.0.0.1:9/v1".into());
        let service = AgentService::new(&config, None);
        let request = AgentRequest {
            first_message: Some("Hi there.".into()),
            max_duration: Some(Duration::from_secs(60)),
            ..AgentRequest::default()
        };
        let p = service
            .prepare(&request, &CallInfo::default())
            .await
            .unwrap();
        let AgentRun::Realtime(rt) = p.run else {
            panic!("the pipeline was prepared");
        };
        assert_eq!(rt.config.model, "gpt-realtime-mini");
        assert_eq!(rt.config.url, "ws://127.0.0.1:9/v1/realtime");
        assert_eq!(rt.setup.first_message.as_deref(), Some("Hi there."));
        assert_eq!(rt.setup.max_duration, Some(Duration::from_secs(60)));
        assert_eq!(rt.setup.silence_reprompt, Some(Duration::from_secs(8)));
        assert!(rt.setup.apology_tts.is_some());
        assert!(rt.setup.instructions.contains("end_call"));
    }
}
