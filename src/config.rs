//! Server configuration: built-in defaults, then an optional TOML file, then
//! `HOTLINE_*` environment variables, each layer overriding the one before.
//!
//! Environment variables name a key path with `__` between levels, so keys
//! that contain a single underscore stay readable:
//! `HOTLINE_HTTP__LISTEN=0.0.0.0:8080`, `HOTLINE_RTP__PORT_MIN=20000`,
//! `HOTLINE_DATA_DIR=/var/lib/hotline`. A value is typed after the key it
//! replaces (a string key stays a string even if the value looks numeric);
//! for keys with no default, the value is read as a TOML literal when it is
//! one (`5060`, `true`, `["udp:0.0.0.0:5060"]`) and as a string otherwise.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "HOTLINE_";

/// Everything the server can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database, recordings and converted models live.
    pub data_dir: PathBuf,
    /// Logging.
    pub log: LogConfig,
    /// The control plane's HTTP listener.
    pub http: HttpConfig,
    /// REST API limits and call policy.
    pub api: ApiConfig,
    /// SIP signalling.
    pub sip: SipConfig,
    /// RTP media ports and addressing.
    pub rtp: RtpConfig,
    /// Storage backend.
    pub database: DatabaseConfig,
    /// SIP trunks (carriers) calls arrive from and leave through.
    pub trunks: Vec<TrunkConfig>,
    /// Numbers Hotline answers, selected by the dialled Request-URI user.
    pub numbers: Vec<NumberConfig>,
    /// Speech and language engines.
    pub providers: ProvidersConfig,
    /// The voice agent: conversation defaults and engine settings.
    pub agent: crate::agent::settings::AgentConfig,
    /// Phone alerts: how their calls are placed and scheduled, and the
    /// default policy of organizations.
    pub alerts: crate::alerts::settings::AlertsConfig,
    /// After-call reports and the owner's notifications (email).
    pub notify: crate::reports::NotifyConfig,
    /// The outbound dialling queue and organizations' default limits.
    pub outbound: crate::outbound::settings::OutboundConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            log: LogConfig::default(),
            http: HttpConfig::default(),
            api: ApiConfig::default(),
            sip: SipConfig::default(),
            rtp: RtpConfig::default(),
            database: DatabaseConfig::default(),
            trunks: Vec::new(),
            numbers: vec![NumberConfig::echo_demo(), NumberConfig::agent_demo()],
            providers: ProvidersConfig::default(),
            agent: crate::agent::settings::AgentConfig::default(),
            alerts: crate::alerts::settings::AlertsConfig::default(),
            notify: crate::reports::NotifyConfig::default(),
            outbound: crate::outbound::settings::OutboundConfig::default(),
        }
    }
}

/// Log output settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter directive such as `info` or `hotline=debug,info`.
    /// `RUST_LOG`, when set, takes precedence.
    pub level: String,
    /// Human-readable text or one JSON object per line.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info,whisper_rs=warn".into(),
            format: LogFormat::Text,
        }
    }
}

/// How log lines are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// HTTP control plane settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the REST and WebSocket API listens on. Loopback by default:
    /// exposing the API is a deliberate choice.
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// REST API settings: request rate limits, the largest request body and
/// the numbers calls may not be placed to.
///
/// Rate limits are token buckets: each API key may make `rate_per_sec`
/// requests a second on average with bursts of `burst`, and all keys of one
/// organization together `org_rate_per_sec` with bursts of `org_burst`, so
/// minting more keys does not buy more capacity. A request over either
/// limit gets 429 with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Average requests a second per API key.
    pub rate_per_sec: f64,
    /// Burst allowance per API key.
    pub burst: u32,
    /// Average requests a second per organization, all its keys together.
    pub org_rate_per_sec: f64,
    /// Burst allowance per organization.
    pub org_burst: u32,
    /// E.164 prefixes (`+1900`) calls may never be placed to. Unset means
    /// the built-in list of emergency and premium-rate prefixes
    /// (`hotline::api::validate::DEFAULT_DENY_PREFIXES`); a list given here
    /// replaces it, so copy the built-in entries you want to keep.
    pub deny_prefixes: Option<Vec<String>>,
    /// Largest request body accepted, in bytes; a larger one gets 413.
    pub max_body_bytes: usize,
}

/// Default of [`ApiConfig::max_body_bytes`]: 1 MiB, far above the
/// largest valid request (an agent with a 20 kB prompt and its tools).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// Smallest [`ApiConfig::max_body_bytes`] allowed: below it, ordinary
/// requests would be refused.
pub const MIN_MAX_BODY_BYTES: usize = 1024;

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            rate_per_sec: 20.0,
            burst: 100,
            org_rate_per_sec: 50.0,
            org_burst: 200,
            deny_prefixes: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl ApiConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        for (field, rate) in [
            ("api.rate_per_sec", self.rate_per_sec),
            ("api.org_rate_per_sec", self.org_rate_per_sec),
        ] {
            // Below one request a day a bucket never refills in practice;
            // NaN and infinity would break the arithmetic.
            if !rate.is_finite() || rate < 1.0 / 86_400.0 {
                return Err((
                    field.into(),
                    format!("{rate} is not a positive number of requests a second"),
                ));
            }
        }
        for (field, burst) in [("api.burst", self.burst), ("api.org_burst", self.org_burst)] {
            if burst == 0 {
                return Err((field.into(), "must be at least 1".into()));
            }
        }
        if self.max_body_bytes < MIN_MAX_BODY_BYTES {
            return Err((
                "api.max_body_bytes".into(),
                format!("must be at least {MIN_MAX_BODY_BYTES}"),
            ));
        }
        for (i, p) in self.deny_prefixes.iter().flatten().enumerate() {
            let digits = p.strip_prefix('+').unwrap_or("");
            if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err((
                    format!("api.deny_prefixes[{i}]"),
                    format!("{p:?} is not an E.164 prefix such as \"+1900\""),
                ));
            }
        }
        Ok(())
    }
}

/// SIP signalling settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// Sockets to listen on, as `transport:ip:port` (`udp:0.0.0.0:5060`).
    pub listen: Vec<SipListen>,
    /// Address advertised in Via, Contact and SDP when the server sits behind
    /// NAT. The listen address is used when unset.
    pub public_ip: Option<IpAddr>,
    /// The SIP domain Hotline answers for; the public or listen IP if unset.
    #[serde(deserialize_with = "opt_text")]
    pub domain: Option<String>,
    /// Overrides the `User-Agent`/`Server` header.
    #[serde(deserialize_with = "opt_text")]
    pub user_agent: Option<String>,
    /// Sources allowed to call in without matching a trunk. Loopback by
    /// default, so a fresh install answers `sip:echo@127.0.0.1`; set it to
    /// `[]` in production to accept trunks only.
    pub local_networks: Vec<Cidr>,
    /// Country calling code used to normalise national numbers to E.164
    /// (`1` for NANP, `44` for the UK); national numbers stay as dialled
    /// when unset.
    #[serde(deserialize_with = "opt_text")]
    pub default_country_code: Option<String>,
    /// An outbound call that is not answered within this many seconds is
    /// cancelled and ends as no-answer.
    pub ring_timeout_secs: u64,
    /// RFC 4028 session interval offered and accepted; 0 turns session
    /// timers off.
    pub session_expires_secs: u32,
    /// RFC 4028 smallest session interval accepted (Min-SE).
    pub min_se_secs: u32,
    /// On SIGTERM, live calls may finish for this long before they are hung
    /// up; new calls get 503 meanwhile.
    pub drain_secs: u64,
    /// Calls above this many at once are refused with 503.
    pub max_calls: usize,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: vec![
                SipListen::new(SipTransport::Udp, SocketAddr::from(([0, 0, 0, 0], 5060))),
                SipListen::new(SipTransport::Tcp, SocketAddr::from(([0, 0, 0, 0], 5060))),
            ],
            public_ip: None,
            domain: None,
            user_agent: None,
            local_networks: vec![
                "127.0.0.0/8".parse().expect("valid"),
                "::1/128".parse().expect("valid"),
            ],
            default_country_code: None,
            ring_timeout_secs: 60,
            session_expires_secs: 1800,
            min_se_secs: 90,
            drain_secs: 30,
            max_calls: 1000,
        }
    }
}

/// A SIP transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SipTransport {
    /// UDP (RFC 3261 §18).
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP (`sips:`).
    Tls,
}

impl fmt::Display for SipTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SipTransport::Udp => "udp",
            SipTransport::Tcp => "tcp",
            SipTransport::Tls => "tls",
        })
    }
}

impl FromStr for SipTransport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(SipTransport::Udp),
            "tcp" => Ok(SipTransport::Tcp),
            "tls" => Ok(SipTransport::Tls),
            other => Err(format!("unknown SIP transport {other:?} (udp, tcp or tls)")),
        }
    }
}

impl Serialize for SipTransport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SipTransport {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One SIP listening socket, written `transport:ip:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipListen {
    /// Transport protocol.
    pub transport: SipTransport,
    /// Local address to bind.
    pub addr: SocketAddr,
}

impl SipListen {
    /// A listener on `addr` over `transport`.
    pub fn new(transport: SipTransport, addr: SocketAddr) -> Self {
        SipListen { transport, addr }
    }
}

impl fmt::Display for SipListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)
    }
}

impl FromStr for SipListen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (transport, addr) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not transport:ip:port"))?;
        let addr = addr
            .parse()
            .map_err(|e| format!("{s:?}: bad address {addr:?}: {e}"))?;
        Ok(SipListen::new(transport.parse()?, addr))
    }
}

impl Serialize for SipListen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SipListen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// RTP media settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtpConfig {
    /// Lowest UDP port for media (inclusive, even).
    pub port_min: u16,
    /// Highest UDP port for media (inclusive).
    pub port_max: u16,
    /// IP to bind media sockets on.
    pub bind_ip: IpAddr,
    /// Address written in SDP; falls back to `sip.public_ip`, then the bind IP.
    pub public_ip: Option<IpAddr>,
    /// A call that receives no RTP or RTCP for this long is hung up.
    pub inactivity_timeout_secs: u64,
    /// Worker threads of the media runtime, which runs only RTP sessions;
    /// 0 means one per CPU.
    pub media_threads: usize,
    /// Scheduling of the media threads: `high` (nice -10, the default;
    /// stays at the default with a warning when not permitted) or
    /// `normal`.
    pub priority: crate::rtp::MediaPriority,
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            port_min: 10000,
            port_max: 19999,
            bind_ip: IpAddr::from([0, 0, 0, 0]),
            public_ip: None,
            inactivity_timeout_secs: 30,
            media_threads: 0,
            priority: crate::rtp::MediaPriority::default(),
        }
    }
}

impl RtpConfig {
    /// How many calls the port range can carry: one even RTP port per call
    /// (RTCP takes the odd port above it).
    pub fn call_capacity(&self) -> usize {
        let first_even = self.port_min + self.port_min % 2;
        if first_even >= self.port_max {
            return 0;
        }
        usize::from((self.port_max - first_even) / 2 + 1)
    }
}

/// Storage settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`. Unset means an embedded SQLite file
    /// in the data directory. `DATABASE_URL` is honoured too.
    #[serde(deserialize_with = "opt_text")]
    pub url: Option<String>,
}

/// A SIP trunk: a carrier that sends calls to Hotline and takes calls from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// Unique name that API requests and numbers refer to.
    pub name: String,
    /// The carrier's SIP host, `host` or `host:port`.
    pub host: String,
    /// Transport used to reach the carrier.
    #[serde(default = "default_trunk_transport")]
    pub transport: SipTransport,
    /// Digest username for challenges from the carrier (and for REGISTER).
    #[serde(default, deserialize_with = "opt_text")]
    pub username: Option<String>,
    /// Digest password.
    #[serde(default, deserialize_with = "opt_text")]
    pub password: Option<String>,
    /// Digest realm to insist on; any realm the carrier offers when unset.
    #[serde(default, deserialize_with = "opt_text")]
    pub realm: Option<String>,
    /// Register to the carrier instead of relying on IP authentication.
    #[serde(default)]
    pub register: bool,
    /// Source IPs or CIDR blocks inbound calls from this trunk come from.
    #[serde(default)]
    pub inbound_ips: Vec<Cidr>,
    /// Challenge inbound requests from this trunk with digest auth.
    #[serde(default)]
    pub inbound_auth: bool,
    /// Codec preference for this trunk, by name (`PCMU`, `PCMA`, `opus`).
    #[serde(default = "default_codecs")]
    pub codecs: Vec<String>,
    /// Caller ID (E.164) put in From on outbound calls when the request
    /// names none.
    #[serde(default, deserialize_with = "opt_text")]
    pub caller_id: Option<String>,
    /// Send every request through this proxy (`host:port`), with a loose
    /// Route, instead of straight to `host`.
    #[serde(default, deserialize_with = "opt_text")]
    pub outbound_proxy: Option<String>,
    /// Registration lifetime asked for when `register` is on.
    #[serde(default = "default_register_expires")]
    pub register_expires_secs: u32,
}

fn default_register_expires() -> u32 {
    3600
}

impl TrunkConfig {
    /// A trunk named `name` to `host` over UDP, with the defaults a
    /// configuration file gets for every other field.
    pub fn new(name: &str, host: &str) -> TrunkConfig {
        TrunkConfig {
            name: name.to_owned(),
            host: host.to_owned(),
            transport: default_trunk_transport(),
            username: None,
            password: None,
            realm: None,
            register: false,
            inbound_ips: Vec::new(),
            inbound_auth: false,
            codecs: default_codecs(),
            caller_id: None,
            outbound_proxy: None,
            register_expires_secs: default_register_expires(),
        }
    }
}

/// What a number does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberMode {
    /// Echoes the caller's audio back: the classic trunk test line.
    Echo,
    /// Plays a prompt, then collects DTMF digits and logs them.
    Play,
    /// Runs the voice agent.
    Agent,
    /// Calls `forward_to` and bridges the two calls: the caller hears the
    /// target's ringing and is answered only when the target answers.
    Forward,
    /// Speaks a message (a closed or after-hours message), then hangs up
    /// or takes a voicemail: `announce` says which. Numbers from the API
    /// only; a configuration file cannot name it.
    #[serde(skip)]
    Announce,
}

/// A number Hotline answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberConfig {
    /// The dialled number in E.164 (`+14155550100`) or a plain SIP user
    /// part (`echo`).
    pub number: String,
    /// What the number does.
    pub mode: NumberMode,
    /// `play`: the prompt file (WAV, MP3, OGG, FLAC), relative to the data
    /// directory unless absolute. A beep when unset.
    #[serde(default)]
    pub prompt: Option<PathBuf>,
    /// Ring (180 Ringing) for this long before answering; 0 answers at
    /// once. Not for `forward`, which rings as long as its target does.
    #[serde(default)]
    pub ring_secs: u64,
    /// While ringing, answer 183 with SDP and play ringback in the audio
    /// (early media) instead of a bare 180.
    #[serde(default)]
    pub early_media: bool,
    /// `play`: stop collecting after this many digits (or `#`).
    #[serde(default = "default_max_digits")]
    pub max_digits: usize,
    /// `play`: stop collecting after this long without a digit.
    #[serde(default = "default_digit_timeout")]
    pub digit_timeout_secs: u64,
    /// Only calls arriving from this trunk reach the number; `forward`
    /// calls go out through it too.
    #[serde(default, deserialize_with = "opt_text")]
    pub trunk: Option<String>,
    /// `forward`: where calls go, an E.164 number (`+14155550123`, called
    /// through the number's trunk or the only configured one) or a `sip:`
    /// URI (called directly).
    #[serde(default, deserialize_with = "opt_text")]
    pub forward_to: Option<String>,
    /// `agent`: the stored agent (`agt_…`) of the number's organization;
    /// the server's default agent when unset. Numbers of the configuration
    /// file belong to no organization and always run the default agent.
    #[serde(skip)]
    pub agent: Option<NumberAgent>,
    /// `announce`: what is said, and whether a voicemail follows.
    #[serde(skip)]
    pub announce: Option<crate::engine::announce::Announcement>,
}

/// Whose agent a number from the database runs, and the number's own
/// settings over that agent's (its inbound configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumberAgent {
    /// The number's organization.
    pub org_id: String,
    /// Its agent; the default agent when unset.
    pub agent_id: Option<String>,
    /// Instructions replacing the agent's prompt.
    pub system_prompt: Option<String>,
    /// Said when the call is answered, replacing the agent's.
    pub first_message: Option<String>,
    /// TTS voice.
    pub voice: Option<String>,
    /// STT and TTS language (none for `auto`).
    pub language: Option<String>,
    /// Call length limit, seconds.
    pub max_duration_secs: Option<u64>,
    /// Record the call.
    pub record: Option<bool>,
    /// Where `transfer_call` sends the caller.
    pub transfer_number: Option<String>,
    /// An offline flow to run instead of the agent's brain: a built-in's
    /// name or a definition.
    pub flow: Option<serde_json::Value>,
    /// Sentences appended to the prompt at call time (the reply-language
    /// directive, the after-hours note), leaving the stored prompt as it
    /// is.
    pub instructions: Vec<String>,
    /// Where the caller's context comes from before the call; none when
    /// unset.
    pub context: Option<crate::inbound::context::ContextPlan>,
}

fn default_max_digits() -> usize {
    16
}

fn default_digit_timeout() -> u64 {
    5
}

impl NumberConfig {
    /// The demo number every fresh install answers: `sip:echo@host`.
    pub fn echo_demo() -> Self {
        NumberConfig {
            number: "echo".into(),
            mode: NumberMode::Echo,
            prompt: None,
            ring_secs: 0,
            early_media: false,
            max_digits: default_max_digits(),
            digit_timeout_secs: default_digit_timeout(),
            trunk: None,
            forward_to: None,
            agent: None,
            announce: None,
        }
    }

    /// The AI demo number every fresh install answers: `sip:agent@host`.
    pub fn agent_demo() -> Self {
        NumberConfig {
            number: "agent".into(),
            mode: NumberMode::Agent,
            ..Self::echo_demo()
        }
    }
}

/// Checks a `forward` number's target: E.164 with its `+`, or a `sip:` /
/// `sips:` URI, and never the number itself (each hop would place another
/// call to the same number until the server is full).
pub fn forward_target(number: &str, to: &str) -> Result<(), String> {
    if to.starts_with("sip:") || to.starts_with("sips:") {
        if rsip::Uri::try_from(to).is_err() || to.contains(char::is_whitespace) {
            return Err(format!("{to:?} is not a SIP URI"));
        }
        return Ok(());
    }
    let digits = to.strip_prefix('+').unwrap_or("");
    if !(8..=15).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.starts_with('0')
    {
        return Err(format!(
            "{to:?} is not an E.164 number (+ and 8 to 15 digits) or sip: URI"
        ));
    }
    if number.trim_start_matches('+') == digits {
        return Err("must not be the number itself (a forwarding loop)".into());
    }
    Ok(())
}

fn default_trunk_transport() -> SipTransport {
    SipTransport::Udp
}

fn default_codecs() -> Vec<String> {
    vec!["PCMU".into(), "PCMA".into(), "opus".into()]
}

/// The speech-to-text, language model and text-to-speech engines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvidersConfig {
    /// Speech-to-text.
    pub stt: ProviderConfig,
    /// The agent's brain: an LLM or an offline flow.
    pub llm: ProviderConfig,
    /// Text-to-speech.
    pub tts: ProviderConfig,
}

impl Default for ProvidersConfig {
    fn default() -> Self {
        ProvidersConfig {
            stt: ProviderConfig::local("whisper"),
            llm: ProviderConfig::local("auto"),
            tts: ProviderConfig::local("piper"),
        }
    }
}

/// One engine's settings. `kind` picks the implementation; the embedded
/// defaults need no key and no network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Implementation name. STT: `whisper` (embedded), `openai`,
    /// `openai-realtime`, `deepgram`. LLM: `auto` (an LLM when a key or a
    /// base URL is configured, else the offline flow engine), `flow`,
    /// `openai` (any OpenAI-compatible server). TTS: `piper` (embedded,
    /// espeak-ng when the voice is missing), `espeak`, `openai`,
    /// `elevenlabs`.
    pub kind: String,
    /// Model or voice name, where the implementation has a choice.
    #[serde(default, deserialize_with = "opt_text")]
    pub model: Option<String>,
    /// Base URL for HTTP providers (OpenAI-compatible servers included).
    #[serde(default, deserialize_with = "opt_text")]
    pub base_url: Option<String>,
    /// API key for cloud providers.
    #[serde(default, deserialize_with = "opt_text")]
    pub api_key: Option<String>,
}

impl ProviderConfig {
    fn local(kind: &str) -> Self {
        ProviderConfig {
            kind: kind.into(),
            model: None,
            base_url: None,
            api_key: None,
        }
    }
}

/// Reads an optional text value that may have arrived as a bare TOML
/// scalar, as `HOTLINE_TRUNK_PASSWORD=12345` does from the environment.
fn opt_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    Ok(Option::<Scalar>::deserialize(d)?.map(|v| match v {
        Scalar::Text(s) => s,
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Bool(b) => b.to_string(),
    }))
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The merged configuration does not parse into the schema.
    #[error("invalid configuration{}: {message}", origin.as_deref().map(|o| format!(" in {o}")).unwrap_or_default())]
    Parse {
        /// The file the error is in, if it came from one.
        origin: Option<String>,
        /// What is wrong, with the key at fault.
        message: String,
    },
    /// A value parses but is not acceptable.
    #[error("invalid configuration: {field}: {message}")]
    Invalid {
        /// The key at fault, dotted (`rtp.port_min`).
        field: String,
        /// Why it is not acceptable.
        message: String,
    },
}

impl Config {
    /// Loads defaults, then `file` if given, then `HOTLINE_*` variables from
    /// `env`, and validates the result.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table =
            toml::Table::try_from(Config::default()).expect("the default configuration serializes");
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let from_file: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                origin: Some(path.display().to_string()),
                message: e.to_string(),
            })?;
            merge(&mut table, from_file);
        }
        for (name, value) in env {
            if let Some(path) = env_key_path(&name) {
                apply_env(&mut table, &path, &value);
            }
        }
        let config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                origin: None,
                message: e.message().to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            field: field.into(),
            message,
        };
        if self.rtp.port_min == 0 || self.rtp.port_min > self.rtp.port_max {
            return Err(invalid(
                "rtp.port_min",
                format!(
                    "range {}..={} is empty or starts at 0",
                    self.rtp.port_min, self.rtp.port_max
                ),
            ));
        }
        if self.rtp.call_capacity() == 0 {
            return Err(invalid(
                "rtp.port_max",
                "the RTP range must hold at least one even/odd port pair".into(),
            ));
        }
        if let Err((field, message)) = self.api.validate() {
            return Err(invalid(&field, message));
        }
        if self.sip.listen.is_empty() {
            return Err(invalid(
                "sip.listen",
                "at least one listener is needed".into(),
            ));
        }
        if let Err((field, message)) = self.agent.check() {
            return Err(invalid(&field, message));
        }
        let trunk_names: Vec<&str> = self.trunks.iter().map(|t| t.name.as_str()).collect();
        if let Err((field, message)) = self.alerts.check(&trunk_names) {
            return Err(invalid(&field, message));
        }
        if let Err((field, message)) = self.notify.check() {
            return Err(invalid(&field, message));
        }
        if let Err((field, message)) = self.outbound.check() {
            return Err(invalid(&field, message));
        }
        use crate::agent::model::{BrainKind, SttKind, TtsKind, kind};
        let kinds = [
            (
                "providers.stt.kind",
                kind::<SttKind>(&self.providers.stt.kind).is_some(),
                "whisper, openai, openai-realtime, deepgram",
            ),
            (
                "providers.llm.kind",
                kind::<BrainKind>(&self.providers.llm.kind).is_some(),
                "auto, flow, openai",
            ),
            (
                "providers.tts.kind",
                kind::<TtsKind>(&self.providers.tts.kind).is_some(),
                "piper, espeak, openai, elevenlabs",
            ),
        ];
        for (field, known, choices) in kinds {
            if !known {
                return Err(invalid(field, format!("unknown engine; one of {choices}")));
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(invalid("log.level", e.to_string()));
        }
        let mut names = BTreeSet::new();
        for (i, trunk) in self.trunks.iter().enumerate() {
            if trunk.name.trim().is_empty() {
                return Err(invalid(
                    &format!("trunks[{i}].name"),
                    "must not be empty".into(),
                ));
            }
            if !names.insert(trunk.name.as_str()) {
                return Err(invalid(
                    &format!("trunks[{i}].name"),
                    format!("duplicate trunk name {:?}", trunk.name),
                ));
            }
            if trunk.host.trim().is_empty() {
                return Err(invalid(
                    &format!("trunks[{i}].host"),
                    "must not be empty".into(),
                ));
            }
            if trunk.username.is_some() != trunk.password.is_some() {
                return Err(invalid(
                    &format!("trunks[{i}].password"),
                    "username and password go together".into(),
                ));
            }
            if (trunk.register || trunk.inbound_auth) && trunk.username.is_none() {
                return Err(invalid(
                    &format!("trunks[{i}].username"),
                    "register and inbound_auth need credentials".into(),
                ));
            }
        }
        if let Some(cc) = &self.sip.default_country_code
            && (cc.is_empty() || cc.len() > 3 || !cc.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid(
                "sip.default_country_code",
                format!("{cc:?} is not a country calling code (1-3 digits)"),
            ));
        }
        let mut numbers = BTreeSet::new();
        for (i, n) in self.numbers.iter().enumerate() {
            let field = |k: &str| format!("numbers[{i}].{k}");
            if n.number.trim().is_empty() || n.number.contains(['@', ' ', ';']) {
                return Err(invalid(
                    &field("number"),
                    format!("{:?} is not a number or SIP user", n.number),
                ));
            }
            if !numbers.insert(n.number.as_str()) {
                return Err(invalid(
                    &field("number"),
                    format!("duplicate number {:?}", n.number),
                ));
            }
            if let Some(t) = &n.trunk
                && !names.contains(t.as_str())
            {
                return Err(invalid(&field("trunk"), format!("no trunk named {t:?}")));
            }
            if n.mode == NumberMode::Play && n.max_digits == 0 {
                return Err(invalid(&field("max_digits"), "must be at least 1".into()));
            }
            match (n.mode, &n.forward_to) {
                (NumberMode::Forward, None) => {
                    return Err(invalid(
                        &field("forward_to"),
                        "required for mode forward".into(),
                    ));
                }
                (NumberMode::Forward, Some(to)) => {
                    if let Err(message) = forward_target(&n.number, to) {
                        return Err(invalid(&field("forward_to"), message));
                    }
                }
                (_, Some(_)) => {
                    return Err(invalid(
                        &field("forward_to"),
                        "only for mode forward".into(),
                    ));
                }
                (_, None) => {}
            }
        }
        if self.sip.min_se_secs < 90 {
            return Err(invalid(
                "sip.min_se_secs",
                "RFC 4028 requires at least 90".into(),
            ));
        }
        if self.sip.session_expires_secs != 0
            && self.sip.session_expires_secs < self.sip.min_se_secs
        {
            return Err(invalid(
                "sip.session_expires_secs",
                "must be 0 (off) or at least sip.min_se_secs".into(),
            ));
        }
        Ok(())
    }

    /// The configuration as TOML with secrets replaced, for `config show`.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        let redact = |s: &mut Option<String>| {
            if s.is_some() {
                *s = Some("********".into());
            }
        };
        for trunk in &mut shown.trunks {
            redact(&mut trunk.password);
        }
        for p in [
            &mut shown.providers.stt,
            &mut shown.providers.llm,
            &mut shown.providers.tts,
        ] {
            redact(&mut p.api_key);
        }
        if let Some(email) = &mut shown.notify.email {
            redact(&mut email.password);
        }
        if let Some(url) = &mut shown.database.url {
            *url = redact_url_password(url);
        }
        toml::to_string_pretty(&shown).expect("the configuration serializes")
    }
}

fn redact_url_password(url: &str) -> String {
    // scheme://user:password@host → scheme://user:********@host
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((creds, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match creds.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:********@{host}"),
        None => url.to_owned(),
    }
}

/// Maps `HOTLINE_RTP__PORT_MIN` to `["rtp", "port_min"]`. `HOTLINE_CONFIG`
/// (the file itself) and `HOTLINE_API_KEY` (the key `hotline events` uses)
/// are not configuration keys.
fn env_key_path(name: &str) -> Option<Vec<String>> {
    let rest = name.strip_prefix(ENV_PREFIX)?;
    // Variables of the CLI itself, not configuration keys.
    if rest.is_empty() || rest == "CONFIG" || rest == "API_KEY" {
        return None;
    }
    Some(rest.split("__").map(|p| p.to_ascii_lowercase()).collect())
}

fn apply_env(table: &mut toml::Table, path: &[String], raw: &str) {
    let (last, parents) = path.split_last().expect("path is never empty");
    let mut node = table;
    for key in parents {
        let entry = node
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        node = entry.as_table_mut().expect("just made a table");
    }
    let value = match node.get(last) {
        Some(toml::Value::String(_)) => toml::Value::String(raw.to_owned()),
        _ => parse_literal(raw),
    };
    node.insert(last.clone(), value);
}

fn parse_literal(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

/// Deep-merges `over` into `base`: tables merge key by key, anything else
/// (arrays included) replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults_are_valid_and_embedded() {
        let c = Config::load(None, []).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.http.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!((c.rtp.port_min, c.rtp.port_max), (10000, 19999));
        assert_eq!(c.rtp.call_capacity(), 5000);
        assert_eq!(c.providers.stt.kind, "whisper");
        assert!(c.database.url.is_none());
    }

    #[test]
    fn file_overrides_defaults_and_env_overrides_file() {
        let f = write(
            r#"
            data_dir = "/var/lib/hotline"
            [http]
            listen = "0.0.0.0:9000"
            [rtp]
            port_min = 20000
            port_max = 20999
            [sip]
            listen = ["udp:127.0.0.1:5080"]
            public_ip = "203.0.113.7"
            [[trunks]]
            name = "carrier"
            host = "sip.example.net:5060"
            username = "acct"
            password = "secret"
            register = true
            [providers.llm]
            kind = "openai"
            model = "gpt-4o-mini"
            "#,
        );
        let c = Config::load(
            Some(f.path()),
            env(&[
                ("HOTLINE_RTP__PORT_MAX", "20499"),
                ("HOTLINE_HTTP__LISTEN", "127.0.0.1:9100"),
                ("HOTLINE_PROVIDERS__LLM__API_KEY", "12345"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/hotline"));
        assert_eq!(c.http.listen, "127.0.0.1:9100".parse().unwrap());
        assert_eq!((c.rtp.port_min, c.rtp.port_max), (20000, 20499));
        assert_eq!(
            c.sip.listen,
            vec![SipListen::new(
                SipTransport::Udp,
                "127.0.0.1:5080".parse().unwrap()
            )]
        );
        assert_eq!(c.sip.public_ip, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(c.trunks[0].codecs, default_codecs());
        assert_eq!(c.providers.llm.model.as_deref(), Some("gpt-4o-mini"));
        // A key with no default that looks numeric still arrives as text.
        assert_eq!(c.providers.llm.api_key.as_deref(), Some("12345"));
    }

    #[test]
    fn env_values_take_the_type_of_the_key_they_replace() {
        let c = Config::load(
            None,
            env(&[
                ("HOTLINE_DATA_DIR", "12345"),
                ("HOTLINE_LOG__FORMAT", "json"),
                ("HOTLINE_SIP__LISTEN", r#"["tcp:127.0.0.1:5070"]"#),
                ("HOTLINE_PROVIDERS__TTS__MODEL", "en_US-joe-medium"),
            ]),
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("12345"));
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.sip.listen[0].transport, SipTransport::Tcp);
        assert_eq!(c.providers.tts.model.as_deref(), Some("en_US-joe-medium"));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_field() {
        let f = write("[http]\nlisten = \"127.0.0.1:8080\"\nlissten = 1\n");
        let e = Config::load(Some(f.path()), []).unwrap_err().to_string();
        assert!(e.contains("lissten"), "{e}");

        let e = Config::load(None, env(&[("HOTLINE_RTP__PORT_MIN", "30000")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("rtp.port_min"), "{e}");

        let e = Config::load(
            None,
            env(&[("HOTLINE_SIP__LISTEN", r#"["sctp:1.2.3.4:5"]"#)]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sctp"), "{e}");

        let e = Config::load(None, env(&[("HOTLINE_LOG__LEVEL", "hotline=loud")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.level"), "{e}");
    }

    #[test]
    fn api_limits_are_read_and_checked() {
        let f = write(
            "[api]\nrate_per_sec = 2.5\nburst = 3\norg_rate_per_sec = 10\norg_burst = 4\n\
             deny_prefixes = [\"+1900\", \"+44\"]\nmax_body_bytes = 65536\n",
        );
        let c = Config::load(Some(f.path()), env(&[("HOTLINE_API__BURST", "7")])).unwrap();
        assert_eq!(c.api.rate_per_sec, 2.5);
        assert_eq!(c.api.burst, 7);
        assert_eq!(c.api.org_rate_per_sec, 10.0);
        assert_eq!(c.api.org_burst, 4);
        assert_eq!(
            c.api.deny_prefixes.as_deref(),
            Some(&["+1900".to_string(), "+44".to_string()][..])
        );
        assert_eq!(c.api.max_body_bytes, 65536);
        assert_eq!(Config::default().api.deny_prefixes, None);
        assert_eq!(Config::default().api.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        for (text, field) in [
            ("[api]\nrate_per_sec = 0\n", "api.rate_per_sec"),
            ("[api]\norg_rate_per_sec = -1\n", "api.org_rate_per_sec"),
            ("[api]\nburst = 0\n", "api.burst"),
            ("[api]\norg_burst = 0\n", "api.org_burst"),
            ("[api]\nmax_body_bytes = 100\n", "api.max_body_bytes"),
            (
                "[api]\ndeny_prefixes = [\"+1900\", \"1911\"]\n",
                "api.deny_prefixes[1]",
            ),
            ("[api]\ndeny_prefixes = [\"+\"]\n", "api.deny_prefixes[0]"),
        ] {
            let f = write(text);
            let e = Config::load(Some(f.path()), []).unwrap_err().to_string();
            assert!(e.contains(field), "{text}: {e}");
        }
    }

    #[test]
    fn trunks_are_checked() {
        let f = write(
            "[[trunks]]\nname = \"a\"\nhost = \"h\"\n[[trunks]]\nname = \"a\"\nhost = \"h2\"\n",
        );
        let e = Config::load(Some(f.path()), []).unwrap_err().to_string();
        assert!(e.contains("trunks[1].name"), "{e}");

        let f = write("[[trunks]]\nname = \"a\"\nhost = \"h\"\nregister = true\n");
        let e = Config::load(Some(f.path()), []).unwrap_err().to_string();
        assert!(e.contains("trunks[0].username"), "{e}");
    }

    #[test]
    fn numbers_default_to_the_echo_and_agent_demos_and_are_checked() {
        let c = Config::default();
        assert_eq!(
            c.numbers,
            vec![NumberConfig::echo_demo(), NumberConfig::agent_demo()]
        );
        assert_eq!(c.numbers[1].number, "agent");
        assert!(
            c.sip
                .local_networks
                .iter()
                .any(|n| n.contains("127.0.0.1".parse().unwrap()))
        );

        let f = write(
            "[[trunks]]\nname = \"carrier\"\nhost = \"sip.example.net\"\ninbound_ips = [\"198.51.100.0/24\"]\n\
             [[numbers]]\nnumber = \"+14155550100\"\nmode = \"play\"\nprompt = \"welcome.wav\"\ntrunk = \"carrier\"\n\
             [[numbers]]\nnumber = \"echo\"\nmode = \"echo\"\n",
        );
        let c = Config::load(Some(f.path()), []).unwrap();
        assert_eq!(c.numbers.len(), 2);
        assert_eq!(c.numbers[0].mode, NumberMode::Play);
        assert_eq!(c.numbers[0].max_digits, 16);
        assert!(c.trunks[0].inbound_ips[0].contains("198.51.100.9".parse().unwrap()));

        for (text, field) in [
            (
                "[[numbers]]\nnumber = \"a\"\nmode = \"echo\"\n[[numbers]]\nnumber = \"a\"\nmode = \"echo\"\n",
                "numbers[1].number",
            ),
            (
                "[[numbers]]\nnumber = \"x@y\"\nmode = \"echo\"\n",
                "numbers[0].number",
            ),
            (
                "[[numbers]]\nnumber = \"1\"\nmode = \"play\"\ntrunk = \"nope\"\n",
                "numbers[0].trunk",
            ),
            (
                "[[trunks]]\nname = \"t\"\nhost = \"h\"\ninbound_ips = [\"10.0.0.0/33\"]\n",
                "/33",
            ),
            ("[sip]\nmin_se_secs = 30\n", "sip.min_se_secs"),
            (
                "[sip]\ndefault_country_code = \"+1\"\n",
                "sip.default_country_code",
            ),
        ] {
            let f = write(text);
            let e = Config::load(Some(f.path()), []).unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn forward_numbers_need_a_callable_target_that_is_not_themselves() {
        let f = write(
            "[[numbers]]\nnumber = \"+14155550100\"\nmode = \"forward\"\nforward_to = \"+14155550123\"\n\
             [[numbers]]\nnumber = \"desk\"\nmode = \"forward\"\nforward_to = \"sip:alice@pbx.example.net:5070\"\n",
        );
        let c = Config::load(Some(f.path()), []).unwrap();
        assert_eq!(c.numbers[0].mode, NumberMode::Forward);
        assert_eq!(c.numbers[0].forward_to.as_deref(), Some("+14155550123"));
        assert_eq!(
            c.numbers[1].forward_to.as_deref(),
            Some("sip:alice@pbx.example.net:5070")
        );
        for (text, message) in [
            (
                "[[numbers]]\nnumber = \"+14155550100\"\nmode = \"forward\"\n",
                "required for mode forward",
            ),
            (
                "[[numbers]]\nnumber = \"+14155550100\"\nmode = \"forward\"\nforward_to = \"+14155550100\"\n",
                "must not be the number itself",
            ),
            // The same number written without its +.
            (
                "[[numbers]]\nnumber = \"14155550100\"\nmode = \"forward\"\nforward_to = \"+14155550100\"\n",
                "must not be the number itself",
            ),
            (
                "[[numbers]]\nnumber = \"a\"\nmode = \"forward\"\nforward_to = \"4155550123\"\n",
                "not an E.164 number",
            ),
            (
                "[[numbers]]\nnumber = \"a\"\nmode = \"forward\"\nforward_to = \"+1415555x123\"\n",
                "not an E.164 number",
            ),
            (
                "[[numbers]]\nnumber = \"a\"\nmode = \"forward\"\nforward_to = \"sip:a b@c\"\n",
                "not a SIP URI",
            ),
            (
                "[[numbers]]\nnumber = \"a\"\nmode = \"echo\"\nforward_to = \"+14155550123\"\n",
                "only for mode forward",
            ),
        ] {
            let f = write(text);
            let e = Config::load(Some(f.path()), []).unwrap_err().to_string();
            assert!(
                e.contains("numbers[0].forward_to") && e.contains(message),
                "{message}: {e}"
            );
        }
    }

    #[test]
    fn redaction_hides_secrets() {
        let mut c = Config::default();
        c.trunks.push(TrunkConfig {
            name: "t".into(),
            host: "h".into(),
            transport: SipTransport::Udp,
            username: Some("u".into()),
            password: Some("hunter2".into()),
            realm: None,
            register: false,
            inbound_ips: vec![],
            inbound_auth: false,
            codecs: default_codecs(),
            caller_id: None,
            outbound_proxy: None,
            register_expires_secs: 3600,
        });
        c.providers.llm.api_key = Some("sk-abc".into());
        c.database.url = Some("postgres://hl:pw@localhost/hl".into());
        let shown = c.to_redacted_toml();
        assert!(!shown.contains("hunter2") && !shown.contains("sk-abc") && !shown.contains(":pw@"));
        assert!(shown.contains("postgres://hl:********@localhost/hl"));
        // The redacted text is itself a valid configuration.
        let back: Config = toml::from_str(&shown).unwrap();
        assert_eq!(back.trunks[0].name, "t");
    }

    #[test]
    fn rtp_capacity_counts_even_ports() {
        let mut r = RtpConfig {
            port_min: 10001,
            port_max: 10004,
            ..RtpConfig::default()
        };
        assert_eq!(r.call_capacity(), 2); // 10002, 10004
        r.port_min = 10004;
        assert_eq!(r.call_capacity(), 0);
    }
}
