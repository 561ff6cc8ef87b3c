//! Pre-call context: what an inbound AI call's prompt learns about the
//! caller before the first word, from Hotline's memory of them, from the
//! business's own systems, or both (a number's `context_source`).
//!
//! | `context_source` | appended to the prompt                                  |
//! |------------------|---------------------------------------------------------|
//! | `none`           | nothing                                                 |
//! | `memory`         | the contact's next-call context (the default)           |
//! | `webhook`        | the pre-call webhook's `context_block`                  |
//! | `merge`          | both, memory first                                      |
//!
//! The pre-call webhook is a `POST` of [`ContextRequest`] to the number's
//! `context_webhook_url`, signed like Hotline's webhooks
//! (`X-Hotline-Timestamp`, `X-Hotline-Signature`) with the number's
//! `context_webhook_secret`. The reply is JSON with an optional
//! `context_block` string. The whole exchange gets
//! `context_webhook_timeout_ms` (1200 by default); whatever goes wrong
//! (slow, down, not 2xx, not JSON), the call goes on with the prompt it
//! has: the context is a help, never a reason to leave a caller waiting.
//!
//! Both are fetched while the agent is being prepared, so they add to the
//! time before the greeting only what they take beyond it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};
use utoipa::ToSchema;

use crate::agent::tools::run;
use crate::api::signing;
use crate::store::{Contact, Store, StoreError};

/// The pre-call webhook's time unless the number sets one.
pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u32 = 1200;
/// The range `context_webhook_timeout_ms` may take.
pub const WEBHOOK_TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 100..=5000;
/// The longest `context_block` taken, in characters (the rest is cut):
/// it is read by the model on every turn of the call.
pub const MAX_CONTEXT_BLOCK: usize = 4000;
/// The longest reply read.
const MAX_REPLY_BYTES: usize = 64 * 1024;
/// The event name in the webhook's body.
pub const CONTEXT_EVENT: &str = "call.context_request";

/// Where an inbound AI call's caller context comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContextSource {
    /// No context: every call starts from the prompt alone.
    None,
    /// What Hotline remembers of the caller (their next-call context).
    #[default]
    Memory,
    /// The pre-call webhook's `context_block`.
    Webhook,
    /// Both, memory first.
    Merge,
}

impl ContextSource {
    /// Whether the memory is read.
    pub fn memory(self) -> bool {
        matches!(self, ContextSource::Memory | ContextSource::Merge)
    }

    /// Whether the webhook is called.
    pub fn webhook(self) -> bool {
        matches!(self, ContextSource::Webhook | ContextSource::Merge)
    }
}

/// The pre-call webhook of a number.
#[derive(Clone, PartialEq, Eq)]
pub struct ContextWebhook {
    /// Where the request goes.
    pub url: String,
    /// The HMAC key the request is signed with.
    pub secret: String,
    /// For the whole exchange.
    pub timeout: Duration,
}

impl std::fmt::Debug for ContextWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("ContextWebhook")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// How a number's calls get their caller context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextPlan {
    /// From where.
    pub source: ContextSource,
    /// The webhook (`webhook`, `merge`); the source's webhook part is
    /// skipped without one.
    pub webhook: Option<ContextWebhook>,
    /// The number called (`num_…`).
    pub number_id: String,
    /// The number called, E.164.
    pub number: String,
}

/// The call whose context is wanted.
#[derive(Debug, Clone)]
pub struct ContextCall<'a> {
    /// The call (`call_…`).
    pub call_id: &'a str,
    /// The number's organization.
    pub org_id: &'a str,
    /// The caller ID as received.
    pub from: &'a str,
    /// The caller's number in E.164; `None` for anonymous callers, who
    /// have no memory.
    pub caller: Option<String>,
    /// When the call arrived.
    pub started: SystemTime,
}

/// The body of the pre-call webhook.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContextRequest {
    /// Always `call.context_request`.
    pub event: &'static str,
    /// The call (`call_…`).
    pub call_id: String,
    /// The number called (`num_…`).
    pub number_id: String,
    /// The number called, E.164.
    pub to: String,
    /// The caller ID as received.
    pub from: String,
    /// The caller's number in E.164, when the caller ID is one.
    pub caller: Option<String>,
    /// What Hotline knows of the caller, if it knows them.
    pub contact: Option<ContactBrief>,
    /// Unix seconds (also in `X-Hotline-Timestamp`).
    pub timestamp: i64,
}

/// A known caller, as the pre-call webhook is told of them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactBrief {
    /// The contact (`ctc_…`).
    pub id: String,
    /// The owner's name for them.
    pub display_name: Option<String>,
    /// The owner's tags.
    pub tags: Vec<String>,
    /// Calls with them so far.
    pub call_count: i64,
}

/// The reply the pre-call webhook gives.
#[derive(Debug, Clone, Default, Deserialize)]
struct ContextReply {
    #[serde(default)]
    context_block: Option<String>,
}

/// How memory context is introduced in the prompt.
const MEMORY_HEADING: &str = "What you remember about this caller from earlier calls (use it \
     naturally: greet them by name if you know it and pick up anything still open; do not read \
     this note out):";
/// How the webhook's context is introduced in the prompt.
const WEBHOOK_HEADING: &str = "Context about this caller from the business's own systems:";

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The instructions to append to the call's prompt, in order: none when
/// there is nothing to say or nothing could be had in time.
pub async fn resolve(
    plan: &ContextPlan,
    store: Option<&Store>,
    call: &ContextCall<'_>,
) -> Vec<String> {
    if plan.source == ContextSource::None {
        return Vec::new();
    }
    let contact = match (store, &call.caller) {
        (Some(store), Some(e164)) => match store.get_contact_by_phone(call.org_id, e164).await {
            Ok(c) => Some(c),
            // A first-time caller: the control plane may be creating the
            // contact right now, with nothing in it yet.
            Err(StoreError::NotFound) => None,
            Err(e) => {
                warn!(call = call.call_id, error = %e, "context: cannot read the caller's contact");
                None
            }
        },
        _ => None,
    };
    let memory = async {
        match (store, &contact) {
            (Some(store), Some(c)) if plan.source.memory() => {
                let during = Some(unix_ms(call.started));
                match crate::memory::context::load(store, call.org_id, &c.id, during).await {
                    Ok(text) => text,
                    Err(e) => {
                        warn!(call = call.call_id, error = %e, "context: cannot read the caller's memory");
                        String::new()
                    }
                }
            }
            _ => String::new(),
        }
    };
    let webhook = async {
        match &plan.webhook {
            Some(hook) if plan.source.webhook() => {
                ask_webhook(hook, &request_for(plan, call, contact.as_ref())).await
            }
            _ => String::new(),
        }
    };
    let (memory, block) = tokio::join!(memory, webhook);
    info!(
        call = call.call_id,
        memory_chars = memory.len(),
        webhook_chars = block.len(),
        "context: caller context for the prompt"
    );
    let mut out = Vec::new();
    if !memory.trim().is_empty() {
        out.push(format!("{MEMORY_HEADING}\n{}", memory.trim()));
    }
    if !block.trim().is_empty() {
        out.push(format!("{WEBHOOK_HEADING}\n{}", block.trim()));
    }
    out
}

fn request_for(
    plan: &ContextPlan,
    call: &ContextCall<'_>,
    contact: Option<&Contact>,
) -> ContextRequest {
    ContextRequest {
        event: CONTEXT_EVENT,
        call_id: call.call_id.to_owned(),
        number_id: plan.number_id.clone(),
        to: plan.number.clone(),
        from: call.from.to_owned(),
        caller: call.caller.clone(),
        contact: contact.map(|c| ContactBrief {
            id: c.id.clone(),
            display_name: c.display_name.clone(),
            tags: c.tags.clone(),
            call_count: c.call_count,
        }),
        timestamp: unix_ms(SystemTime::now()) / 1000,
    }
}

/// The webhook's `context_block`, or empty (with a warning) when it did
/// not give one in time.
async fn ask_webhook(hook: &ContextWebhook, request: &ContextRequest) -> String {
    let call = request.call_id.as_str();
    match tokio::time::timeout(hook.timeout, exchange(hook, request)).await {
        Ok(Ok(block)) => cut(block, call),
        Ok(Err(e)) => {
            warn!(call, url = %hook.url, error = %e, "context: pre-call webhook failed; going on without it");
            String::new()
        }
        Err(_) => {
            warn!(call, url = %hook.url, timeout_ms = hook.timeout.as_millis() as u64,
                "context: pre-call webhook too slow; going on without it");
            String::new()
        }
    }
}

async fn exchange(hook: &ContextWebhook, request: &ContextRequest) -> Result<String, String> {
    let client = run::client()?;
    let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let response = client
        .post(hook.url.as_str())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(signing::TIMESTAMP_HEADER, request.timestamp.to_string())
        .header(
            signing::SIGNATURE_HEADER,
            signing::sign(&hook.secret, request.timestamp, &body),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| run::describe(&e, "the webhook"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    let text = run::read_bounded(response, MAX_REPLY_BYTES, "the webhook").await?;
    if text.trim().is_empty() {
        return Ok(String::new());
    }
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("reply is not JSON: {e}"))?;
    let reply: ContextReply = serde_json::from_value(value)
        .map_err(|e| format!("reply's context_block is not a string: {e}"))?;
    Ok(reply.context_block.unwrap_or_default())
}

/// At most [`MAX_CONTEXT_BLOCK`] characters.
fn cut(block: String, call: &str) -> String {
    match block.char_indices().nth(MAX_CONTEXT_BLOCK) {
        Some((at, _)) => {
            warn!(
                call,
                limit = MAX_CONTEXT_BLOCK,
                "context: context_block cut to the limit"
            );
            block[..at].to_owned()
        }
        None => block,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use std::sync::{Arc, Mutex};

    const SECRET: &str = "whsec_0123456789abcdef";

    /// What the receiver was sent: signature, timestamp, body.
    type Seen = Arc<Mutex<Vec<(String, i64, Vec<u8>)>>>;

    /// A receiver on 127.0.0.1: `/ok` answers a context block, `/slow`
    /// answers after two seconds, `/fail` 503, `/text` not JSON, `/long`
    /// a block over the limit, `/empty` an empty body.
    async fn receiver() -> (String, Seen) {
        let seen: Seen = Arc::default();
        let keep = |seen: &Seen| {
            let seen = seen.clone();
            move |h: HeaderMap, body: axum::body::Bytes| {
                let header = |n: &str| {
                    h.get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                seen.lock().unwrap().push((
                    header(signing::SIGNATURE_HEADER),
                    header(signing::TIMESTAMP_HEADER).parse().unwrap_or(0),
                    body.to_vec(),
                ));
            }
        };
        let ok = keep(&seen);
        let slow = keep(&seen);
        let app = axum::Router::new()
            .route(
                "/ok",
                post(move |h: HeaderMap, b: axum::body::Bytes| async move {
                    ok(h, b);
                    axum::Json(serde_json::json!({"context_block": "Gold plan customer."}))
                }),
            )
            .route(
                "/slow",
                post(move |h: HeaderMap, b: axum::body::Bytes| async move {
                    slow(h, b);
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    axum::Json(serde_json::json!({"context_block": "Too late."}))
                }),
            )
            .route(
                "/fail",
                post(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
            )
            .route("/text", post(|| async { "not json" }))
            .route("/empty", post(|| async { "" }))
            .route(
                "/long",
                post(|| async {
                    axum::Json(
                        serde_json::json!({"context_block": "é".repeat(MAX_CONTEXT_BLOCK + 10)}),
                    )
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), seen)
    }

    fn plan(source: ContextSource, url: Option<String>, timeout_ms: u64) -> ContextPlan {
        ContextPlan {
            source,
            webhook: url.map(|url| ContextWebhook {
                url,
                secret: SECRET.into(),
                timeout: Duration::from_millis(timeout_ms),
            }),
            number_id: "num_1".into(),
            number: "+14155550100".into(),
        }
    }

    fn call() -> ContextCall<'static> {
        ContextCall {
            call_id: "call_1",
            org_id: "org_1",
            from: "+14155550123",
            caller: Some("+14155550123".into()),
            started: SystemTime::now(),
        }
    }

    #[test]
    fn sources_say_what_they_read() {
        use ContextSource::*;
        let flags: Vec<(bool, bool)> = [None, Memory, Webhook, Merge]
            .iter()
            .map(|s| (s.memory(), s.webhook()))
            .collect();
        assert_eq!(
            flags,
            [(false, false), (true, false), (false, true), (true, true)]
        );
        assert_eq!(ContextSource::default(), Memory);
        let parsed: ContextSource = serde_json::from_str("\"merge\"").unwrap();
        assert_eq!(parsed, Merge);
        let secretless = format!("{:?}", plan(Webhook, Some("http://x".into()), 10));
        assert!(!secretless.contains(SECRET), "{secretless}");
    }

    #[tokio::test]
    async fn a_webhook_that_answers_is_signed_and_its_block_appended() {
        let (base, seen) = receiver().await;
        let p = plan(ContextSource::Webhook, Some(format!("{base}/ok")), 2000);
        let got = resolve(&p, None, &call()).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with(WEBHOOK_HEADING), "{got:?}");
        assert!(got[0].ends_with("\nGold plan customer."), "{got:?}");
        let (sig, ts, body) = seen.lock().unwrap()[0].clone();
        let now = unix_ms(SystemTime::now()) / 1000;
        assert!(signing::verify(SECRET, &sig, ts, &body, now, 300), "{sig}");
        let sent: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(sent["event"], CONTEXT_EVENT);
        assert_eq!(sent["call_id"], "call_1");
        assert_eq!(sent["number_id"], "num_1");
        assert_eq!(sent["to"], "+14155550100");
        assert_eq!(sent["caller"], "+14155550123");
        assert_eq!(sent["timestamp"], ts);
        // No store: nobody is known.
        assert_eq!(sent["contact"], Value::Null);
    }

    #[tokio::test]
    async fn a_webhook_that_is_slow_down_or_wrong_is_skipped() {
        let (base, seen) = receiver().await;
        for path in ["/slow", "/fail", "/text", "/empty", "/nowhere"] {
            let p = plan(ContextSource::Merge, Some(format!("{base}{path}")), 300);
            assert!(resolve(&p, None, &call()).await.is_empty(), "{path}");
        }
        // Nothing listens there.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let p = plan(
            ContextSource::Webhook,
            Some(format!("http://{closed}/")),
            300,
        );
        assert!(resolve(&p, None, &call()).await.is_empty());
        // The slow one was asked, and given up on.
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_long_block_is_cut_and_none_asks_nothing() {
        let (base, seen) = receiver().await;
        let p = plan(ContextSource::Webhook, Some(format!("{base}/long")), 2000);
        let got = resolve(&p, None, &call()).await;
        let block = got[0].strip_prefix(WEBHOOK_HEADING).unwrap().trim();
        assert_eq!(block.chars().count(), MAX_CONTEXT_BLOCK);
        let p = plan(ContextSource::None, Some(format!("{base}/ok")), 2000);
        assert!(resolve(&p, None, &call()).await.is_empty());
        // A memory-only source never calls the webhook.
        let p = plan(ContextSource::Memory, Some(format!("{base}/ok")), 2000);
        assert!(resolve(&p, None, &call()).await.is_empty());
        assert!(seen.lock().unwrap().is_empty());
    }
}
