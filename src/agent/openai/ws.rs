//! WebSocket plumbing the streaming STT providers share: opening the
//! connection with retries, and keeping the caller's audio while it opens.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, handshake::client::Request};

use super::http::{
    self, Failure, RetryPolicy, error_code, error_message, status_failure, timeout_failure,
};
use crate::agent::provider::{ProviderError, SttEvent};

/// A client connection, plain or TLS.
pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `request`'s connection, trying again on a refused or failed
/// handshake of the retried kinds until `deadline`.
pub(crate) async fn connect(
    provider: &str,
    request: &Request,
    timeout: Duration,
    policy: RetryPolicy,
    deadline: Instant,
) -> Result<Ws, Failure> {
    http::prepare_tls();
    let mut retries = 0;
    loop {
        let failure = match connect_once(provider, request.clone(), timeout).await {
            Ok(ws) => return Ok(ws),
            Err(f) => f,
        };
        match policy.delay(&failure, retries, deadline) {
            Some(wait) => {
                tracing::debug!(provider, error = %failure.error, "retrying WebSocket connection");
                tokio::time::sleep(wait).await;
                retries += 1;
            }
            None => return Err(failure),
        }
    }
}

async fn connect_once(provider: &str, request: Request, timeout: Duration) -> Result<Ws, Failure> {
    match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(request)).await {
        Err(_) => Err(Failure {
            auto_retry: true,
            ..timeout_failure(provider, "WebSocket connection", timeout)
        }),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(response))) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().unwrap_or_default();
            let retry_after = http::retry_after(response.headers());
            let code = error_code(body);
            Err(status_failure(
                provider,
                status,
                &error_message(body),
                code.as_deref(),
                retry_after,
            ))
        }
        Ok(Err(tungstenite::Error::Io(e))) => Err(Failure {
            error: ProviderError::new(provider, format!("WebSocket: could not connect: {e}"), true),
            auto_retry: true,
            retry_after: None,
        }),
        Ok(Err(e)) => Err(Failure::fatal(ProviderError::new(
            provider,
            format!("WebSocket handshake failed: {e}"),
            true,
        ))),
    }
}

/// What arrived while the connection opened.
pub(crate) struct Opened {
    pub ws: Ws,
    /// Audio received meanwhile.
    pub pending: Vec<i16>,
    /// The utterance already ended.
    pub audio_done: bool,
}

/// Runs `connect` while keeping the audio that arrives (at most `max`
/// samples), so the pipeline's sender never waits on the network. `None`:
/// the stream is over (cancelled, or an error was sent on `tx`).
pub(crate) async fn open_while_buffering(
    connect: impl Future<Output = Result<Ws, Failure>>,
    audio_rx: &mut mpsc::Receiver<Vec<i16>>,
    tx: &mpsc::Sender<SttEvent>,
    max: usize,
    too_long: impl Fn() -> ProviderError,
) -> Option<Opened> {
    let mut pending: Vec<i16> = Vec::new();
    let mut audio_done = false;
    tokio::pin!(connect);
    let ws = loop {
        tokio::select! {
            _ = tx.closed() => return None,
            ws = &mut connect => break ws,
            frame = audio_rx.recv(), if !audio_done => match frame {
                Some(f) if pending.len() + f.len() > max => {
                    let _ = tx.send(SttEvent::Error(too_long())).await;
                    return None;
                }
                Some(f) => pending.extend_from_slice(&f),
                None => audio_done = true,
            },
        }
    };
    match ws {
        Ok(ws) => Some(Opened {
            ws,
            pending,
            audio_done,
        }),
        Err(f) => {
            let _ = tx.send(SttEvent::Error(f.error)).await;
            None
        }
    }
}

/// A close frame's code and reason, for an error message.
pub(crate) fn close_reason(frame: Option<tungstenite::protocol::CloseFrame>) -> String {
    frame
        .map(|f| format!(" ({} {})", u16::from(f.code), f.reason))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    use super::*;

    /// `wss://` goes through rustls (the build has TLS for WebSockets):
    /// against a server that hangs up, the failure is a connection one,
    /// never "TLS support not compiled in".
    #[tokio::test]
    async fn wss_urls_use_the_tls_stack() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        });
        let request = format!("wss://127.0.0.1:{port}/v1/realtime")
            .into_client_request()
            .unwrap();
        let policy = RetryPolicy {
            max_retries: 0,
            max_delay: Duration::ZERO,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let Err(err) = connect("p", &request, Duration::from_secs(5), policy, deadline).await
        else {
            panic!("a hung-up handshake cannot succeed");
        };
        assert!(err.error.retryable, "{}", err.error);
        assert!(!err.error.message.contains("not compiled"), "{}", err.error);
    }
}
