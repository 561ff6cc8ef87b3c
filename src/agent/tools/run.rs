//! Running an HTTP tool: a POST of `{"call_id", "tool", "arguments"}`,
//! signed like Hotline's webhooks (`X-Hotline-Timestamp`,
//! `X-Hotline-Signature`), within the tool's timeout, with a bounded
//! answer. Whatever happens, the brain gets text back: the answer's body,
//! or `{"error": "…"}` saying what went wrong, so it can tell the caller.

use std::sync::{Once, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::HttpTool;
use crate::agent::provider::ToolCall;
use crate::api::signing;

/// The largest answer a tool may give: it goes into the model's context
/// on every later turn.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What a tool call produced, as fed back to the brain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    /// The answer's body, or a JSON `{"error": "…"}`.
    pub content: String,
    /// False when `content` describes a failure.
    pub ok: bool,
}

impl ToolResult {
    /// A failure, as the JSON the brain reads.
    pub fn error(message: impl AsRef<str>) -> Self {
        ToolResult {
            content: json!({ "error": message.as_ref() }).to_string(),
            ok: false,
        }
    }
}

/// The HTTP client for requests an organization's settings point at
/// (tools, pre-call webhooks): one per process, never following
/// redirects, since a signed request must go only where it was declared.
pub(crate) fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            static CRYPTO: Once = Once::new();
            CRYPTO.call_once(|| {
                // One rustls provider for the process; an error means another
                // part of the server installed one first, which serves as well.
                let _ = rustls::crypto::ring::default_provider().install_default();
            });
            reqwest::Client::builder()
                // A tool that redirects could send the signed request
                // anywhere; its URL is the one that was declared.
                .redirect(reqwest::redirect::Policy::none())
                .tcp_nodelay(true)
                .user_agent(concat!("hotline-tools/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("HTTP client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Calls `tool` for `tool_call` on call `call_id`. The whole exchange,
/// from connecting to the answer's last byte, gets the tool's timeout.
/// Dropping the future abandons the request.
pub async fn call_tool(tool: &HttpTool, call_id: &str, tool_call: &ToolCall) -> ToolResult {
    let body = json!({
        "call_id": call_id,
        "tool": tool.spec.name,
        "arguments": tool_call.arguments,
    })
    .to_string()
    .into_bytes();
    let client = match client() {
        Ok(c) => c,
        Err(e) => return ToolResult::error(e),
    };
    let mut request = client
        .post(tool.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some(secret) = tool.secret() {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        request = request
            .header(signing::TIMESTAMP_HEADER, ts.to_string())
            .header(signing::SIGNATURE_HEADER, signing::sign(secret, ts, &body));
    }
    let exchange = async {
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e, "the tool"))?;
        let status = response.status();
        let text = read_bounded(response, MAX_RESPONSE_BYTES, "the tool").await?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("the tool answered HTTP {}", status.as_u16()))
        }
    };
    match tokio::time::timeout(tool.timeout, exchange).await {
        Ok(Ok(text)) if text.trim().is_empty() => ToolResult {
            content: "{}".into(),
            ok: true,
        },
        Ok(Ok(text)) => ToolResult {
            content: text,
            ok: true,
        },
        Ok(Err(e)) => ToolResult::error(e),
        Err(_) => ToolResult::error(format!(
            "the tool did not answer within {} ms",
            tool.timeout.as_millis()
        )),
    }
}

/// The body as text, refused beyond `max` bytes (checked on the declared
/// length first, then while reading). `who` names the far end in errors
/// ("the tool").
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
    max: usize,
    who: &str,
) -> Result<String, String> {
    let too_large = || format!("{who}'s answer is over {max} bytes");
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e, who))? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The kind of failure, naming the far end `who` ("the tool").
pub(crate) fn describe(e: &reqwest::Error, who: &str) -> String {
    // reqwest's messages name the URL and never headers, so the signature
    // stays out; the brain only needs the kind of failure.
    if e.is_connect() {
        format!("cannot connect to {who}")
    } else if e.is_timeout() {
        format!("{who} timed out")
    } else if e.is_body() || e.is_decode() {
        format!("{who}'s answer was cut off")
    } else {
        format!("the request to {who} failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::tools::parse_tools;
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::{Arc, Mutex};

    /// A server whose `/ok` echoes a short answer, `/fail` answers 503,
    /// `/big` answers more than the limit; it keeps the signature headers.
    async fn server() -> (String, Arc<Mutex<Vec<Option<String>>>>) {
        let headers_seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let seen = headers_seen.clone();
        let app = axum::Router::new()
            .route(
                "/ok",
                axum::routing::post(move |h: HeaderMap| {
                    let seen = seen.clone();
                    async move {
                        let sig = h
                            .get(signing::SIGNATURE_HEADER)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        seen.lock().unwrap().push(sig);
                        "fine"
                    }
                }),
            )
            .route(
                "/fail",
                axum::routing::post(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
            )
            .route(
                "/big",
                axum::routing::post(|| async { "x".repeat(MAX_RESPONSE_BYTES + 1) }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), headers_seen)
    }

    fn tool(base: &str, path: &str, secret: Option<&str>) -> HttpTool {
        let declared = json!([{
            "type": "http", "name": "t", "description": "A test tool.",
            "url": format!("{base}{path}"), "timeout_ms": 2000
        }]);
        parse_tools(&declared, secret).unwrap().remove(0)
    }

    fn tc() -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: "t".into(),
            arguments: json!({}),
        }
    }

    #[tokio::test]
    async fn answers_failures_and_limits() {
        let (base, seen) = server().await;
        let ok = call_tool(&tool(&base, "/ok", Some("k")), "call_1", &tc()).await;
        assert_eq!(
            ok,
            ToolResult {
                content: "fine".into(),
                ok: true
            }
        );
        // Unsigned when there is no secret at all.
        call_tool(&tool(&base, "/ok", None), "call_1", &tc()).await;
        let seen = seen.lock().unwrap().clone();
        assert!(seen[0].as_deref().is_some_and(|s| s.starts_with("v1=")));
        assert_eq!(seen[1], None);
        let fail = call_tool(&tool(&base, "/fail", None), "call_1", &tc()).await;
        assert!(!fail.ok);
        assert!(fail.content.contains("HTTP 503"), "{}", fail.content);
        let big = call_tool(&tool(&base, "/big", None), "call_1", &tc()).await;
        assert!(!big.ok);
        assert!(big.content.contains("over 65536 bytes"), "{}", big.content);
        // Nobody listening.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let down = call_tool(&tool(&format!("http://{closed}"), "/", None), "c", &tc()).await;
        assert!(!down.ok);
        let err: serde_json::Value = serde_json::from_str(&down.content).unwrap();
        assert!(err["error"].is_string());
    }
}
