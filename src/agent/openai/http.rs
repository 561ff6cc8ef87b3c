//! What every OpenAI-compatible provider shares: the HTTP client, the API
//! key, turning failures into [`ProviderError`]s, and when to try again.
//!
//! The retry rule is the same everywhere: only a rate limit (429, unless
//! the account is out of quota), a server error (5xx) or a connection that
//! failed, and only before anything has reached the caller. A call cannot
//! wait long, so a `Retry-After` longer than the configured ceiling ends
//! the attempt instead of stalling the conversation.

use std::sync::Once;
use std::time::Duration;

use reqwest::header::HeaderMap;
use tokio::time::Instant;

use crate::agent::provider::ProviderError;

/// The OpenAI API; Ollama (`http://localhost:11434/v1`), vLLM
/// (`http://host:8000/v1`) and llama.cpp's server (`http://host:8080/v1`)
/// serve the same paths under their own base.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// Environment variable read when a config has no `api_key`.
pub const API_KEY_ENV: &str = "OPENAI_API_KEY";

/// Longest error body quoted in a [`ProviderError`]: enough for the
/// provider's explanation, not a whole HTML error page.
const MAX_QUOTED: usize = 300;

/// The key from the config, else from [`API_KEY_ENV`]; `None` when
/// neither is set (self-hosted servers usually need none).
pub(crate) fn resolve_api_key(configured: Option<&str>) -> Option<String> {
    resolve_key(configured, API_KEY_ENV)
}

/// The key from the config, else from the environment variable `env`.
pub(crate) fn resolve_key(configured: Option<&str>, env: &str) -> Option<String> {
    let configured = configured.map(str::trim).filter(|k| !k.is_empty());
    match configured {
        Some(k) => Some(k.to_owned()),
        None => std::env::var(env)
            .ok()
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty()),
    }
}

/// `base_url` without the trailing slash that would double the one every
/// endpoint path starts with.
pub(crate) fn normalize_base(base_url: &str) -> String {
    base_url.trim().trim_end_matches('/').to_owned()
}

fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // One rustls provider for the process; an error means another part
        // of the server installed one first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An HTTP client for one provider. Only the connect timeout lives here:
/// the others depend on how far a reply has got and are enforced by the
/// callers.
pub(crate) fn http_client(
    provider: &str,
    connect_timeout: Duration,
) -> Result<reqwest::Client, ProviderError> {
    install_crypto();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .user_agent(concat!("hotline/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ProviderError::new(provider, format!("HTTP client: {e}"), false))
}

/// Makes sure the rustls provider is installed before a WebSocket client
/// builds its TLS configuration.
pub(crate) fn prepare_tls() {
    install_crypto();
}

/// A failed attempt: the error to report, and what the retry rule needs.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// What the pipeline sees if no retry follows.
    pub error: ProviderError,
    /// A 429, a 5xx or a broken connection: the kinds retried
    /// automatically while nothing has been forwarded.
    pub auto_retry: bool,
    /// What the server asked for (`Retry-After`, `retry-after-ms`).
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure that is reported as is, never retried here.
    pub fn fatal(error: ProviderError) -> Self {
        Failure {
            error,
            auto_retry: false,
            retry_after: None,
        }
    }
}

/// The wait the server asked for: OpenAI's `retry-after-ms`, else
/// `Retry-After` in (possibly fractional) seconds. An HTTP-date is ignored
/// and the backoff applies.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    let d = get("retry-after-ms")
        .map(|ms| ms / 1000.0)
        .or_else(|| get("retry-after"))?;
    (d.is_finite() && d >= 0.0).then(|| Duration::from_secs_f64(d.min(86_400.0)))
}

/// The provider's own explanation from an error body: OpenAI's
/// `{"error":{"message"}}`, Ollama's `{"error":"…"}`, FastAPI's
/// `{"detail":…}`, Deepgram's `{"err_msg":…}`, or the text itself,
/// shortened.
pub(crate) fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let found = v
            .pointer("/error/message")
            .or_else(|| v.get("error"))
            .or_else(|| v.get("detail"))
            .or_else(|| v.get("err_msg"))
            .or_else(|| v.get("message"));
        if let Some(m) = found {
            return shorten(&match m {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
    }
    shorten(String::from_utf8_lossy(body).trim())
}

/// The OpenAI error `code` or `type` (`insufficient_quota`, …), if any.
pub(crate) fn error_code(body: &[u8]) -> Option<String> {
    let v = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    ["/error/code", "/error/type"]
        .iter()
        .find_map(|p| v.pointer(p)?.as_str().map(str::to_owned))
}

pub(crate) fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_QUOTED {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_QUOTED).collect();
    out.push('…');
    out
}

/// A non-success HTTP status as a failure.
pub(crate) fn status_failure(
    provider: &str,
    status: u16,
    message: &str,
    code: Option<&str>,
    retry_after: Option<Duration>,
) -> Failure {
    let quota = matches!(code, Some("insufficient_quota"));
    let (what, retryable, auto_retry) = match status {
        401 | 403 => ("authentication failed (check the API key)", false, false),
        404 => ("not found (check base_url and model)", false, false),
        408 => ("request timed out at the server", true, true),
        429 if quota => ("out of quota", false, false),
        429 => ("rate limited", true, true),
        500..=599 => ("server error", true, true),
        _ => ("request rejected", false, false),
    };
    let message = if message.is_empty() {
        format!("{what} (HTTP {status})")
    } else {
        format!("{what} (HTTP {status}): {message}")
    };
    Failure {
        error: ProviderError::new(provider, message, retryable),
        auto_retry,
        retry_after,
    }
}

/// A transport failure from reqwest. Connection failures and broken
/// bodies are retried automatically (before anything is forwarded).
pub(crate) fn transport_failure(provider: &str, what: &str, e: &reqwest::Error) -> Failure {
    let kind = if e.is_connect() {
        "could not connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "connection broke while reading the response"
    } else {
        "request failed"
    };
    // reqwest's Display names the URL, never headers, so the key stays out.
    Failure {
        error: ProviderError::new(provider, format!("{what}: {kind}: {e}"), true),
        auto_retry: !e.is_timeout(),
        retry_after: None,
    }
}

/// A deadline passed.
pub(crate) fn timeout_failure(provider: &str, what: &str, after: Duration) -> Failure {
    Failure::fatal(ProviderError::new(
        provider,
        format!("{what} timed out after {} ms", after.as_millis()),
        true,
    ))
}

/// Retry settings shared by all providers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Attempts after the first.
    pub max_retries: u32,
    /// Longest wait accepted, whether asked for by the server or from the
    /// backoff.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retries_done + 1`, or `None` when the
    /// failure is not retried: not a retried kind, retries used up, a
    /// server asking for more than `max_delay`, or no time left before
    /// `deadline`.
    pub fn delay(
        &self,
        failure: &Failure,
        retries_done: u32,
        deadline: Instant,
    ) -> Option<Duration> {
        if !failure.auto_retry || retries_done >= self.max_retries {
            return None;
        }
        let d = failure.retry_after.unwrap_or_else(|| backoff(retries_done));
        if d > self.max_delay || Instant::now() + d >= deadline {
            return None;
        }
        Some(d)
    }
}

/// 200 ms, 400 ms, 800 ms, … with ±20 % jitter so that calls rate-limited
/// together do not retry together.
fn backoff(retries_done: u32) -> Duration {
    let base = 200.0 * f64::from(1u32 << retries_done.min(8));
    Duration::from_millis((base * rand::random_range(0.8..1.2)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_ms_then_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut date = HeaderMap::new();
        date.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&date), None);
    }

    #[test]
    fn error_bodies_of_each_server_family() {
        let openai = br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
        assert_eq!(error_message(openai), "Rate limit reached");
        assert_eq!(error_code(openai).as_deref(), Some("rate_limit_exceeded"));
        assert_eq!(
            error_message(br#"{"error":"model 'x' not found"}"#),
            "model 'x' not found"
        );
        assert_eq!(error_message(br#"{"detail":"bad"}"#), "bad");
        assert_eq!(error_message(b"  upstream down \n"), "upstream down");
        let long = "x".repeat(1000);
        assert_eq!(
            error_message(long.as_bytes()).chars().count(),
            MAX_QUOTED + 1
        );
    }

    #[test]
    fn statuses_are_classified() {
        let f = status_failure("p", 401, "bad key", None, None);
        assert!(!f.error.retryable && !f.auto_retry);
        assert!(f.error.message.contains("authentication"));
        let f = status_failure("p", 429, "slow down", Some("rate_limit_exceeded"), None);
        assert!(f.error.retryable && f.auto_retry);
        let f = status_failure("p", 429, "pay up", Some("insufficient_quota"), None);
        assert!(!f.error.retryable && !f.auto_retry);
        let f = status_failure("p", 503, "", None, None);
        assert!(f.error.retryable && f.auto_retry);
        assert_eq!(f.error.message, "server error (HTTP 503)");
        assert!(!status_failure("p", 400, "bad", None, None).error.retryable);
    }

    #[tokio::test]
    async fn retry_policy_respects_kind_count_ceiling_and_deadline() {
        let policy = RetryPolicy {
            max_retries: 2,
            max_delay: Duration::from_secs(2),
        };
        let far = Instant::now() + Duration::from_secs(60);
        let mut f = status_failure("p", 500, "", None, None);
        assert!(policy.delay(&f, 0, far).unwrap() <= Duration::from_millis(240));
        assert!(policy.delay(&f, 2, far).is_none());
        f.retry_after = Some(Duration::from_secs(1));
        assert_eq!(policy.delay(&f, 1, far), Some(Duration::from_secs(1)));
        f.retry_after = Some(Duration::from_secs(30));
        assert!(policy.delay(&f, 0, far).is_none());
        f.retry_after = Some(Duration::from_secs(1));
        assert!(
            policy
                .delay(&f, 0, Instant::now() + Duration::from_millis(500))
                .is_none()
        );
        let bad = status_failure("p", 400, "", None, None);
        assert!(policy.delay(&bad, 0, far).is_none());
    }

    #[test]
    fn key_from_config_wins_and_blank_counts_as_unset() {
        assert_eq!(resolve_api_key(Some(" sk-x ")).as_deref(), Some("sk-x"));
        // Blank falls through to the environment, whatever it holds.
        assert_eq!(resolve_api_key(Some("  ")), resolve_api_key(None));
    }
}
