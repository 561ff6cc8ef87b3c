//! A scripted HTTP + WebSocket server on 127.0.0.1: an OpenAI-compatible
//! (or any) provider whose replies the test lines up in order
//! (`tests/agent_openai.rs`, `tests/call_reports.rs`).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

/// Generous bound for a streamed response's client to leave.
const PATIENCE: Duration = Duration::from_secs(20);

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the next request gets.
pub enum Reply {
    /// 200 with `pieces` written one by one, `gap` apart; with `stall`
    /// the body then stays open and silent until the client leaves.
    Stream {
        content_type: &'static str,
        pieces: Vec<Vec<u8>>,
        gap: Duration,
        stall: bool,
    },
    /// A complete response.
    Status {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
}

impl Reply {
    pub fn json(body: serde_json::Value) -> Reply {
        Reply::Status {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
        }
    }

    pub fn error(status: u16, body: serde_json::Value) -> Reply {
        Reply::Status {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
        }
    }
}

#[derive(Clone)]
struct Shared {
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    closed: mpsc::UnboundedSender<()>,
}

pub struct Server {
    pub addr: SocketAddr,
    shared: Shared,
    closed: tokio::sync::Mutex<mpsc::UnboundedReceiver<()>>,
}

impl Server {
    /// Serves scripted replies on every path, plus whatever `extra`
    /// routes (tried first).
    pub async fn start_with(extra: Router) -> Server {
        let (closed_tx, closed_rx) = mpsc::unbounded_channel();
        let shared = Shared {
            requests: Arc::default(),
            script: Arc::default(),
            closed: closed_tx,
        };
        let app = extra.merge(Router::new().fallback(handle).with_state(shared.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server {
            addr,
            shared,
            closed: tokio::sync::Mutex::new(closed_rx),
        }
    }

    pub async fn start() -> Server {
        Server::start_with(Router::new()).await
    }

    /// The API base to configure (`http://127.0.0.1:port/v1`).
    pub fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn push(&self, reply: Reply) {
        self.shared.script.lock().unwrap().push_back(reply);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Waits until a streamed response's client went away.
    pub async fn wait_closed(&self) {
        tokio::time::timeout(PATIENCE, self.closed.lock().await.recv())
            .await
            .expect("the client never closed the streamed response")
            .unwrap();
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    shared.requests.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body,
    });
    let reply = shared.script.lock().unwrap().pop_front();
    match reply {
        None => (StatusCode::INTERNAL_SERVER_ERROR, "script ran out").into_response(),
        Some(Reply::Status {
            status,
            headers,
            body,
        }) => {
            let mut response = Response::builder().status(status);
            for (k, v) in headers {
                response = response.header(k, v);
            }
            response.body(Body::from(body)).unwrap()
        }
        Some(Reply::Stream {
            content_type,
            pieces,
            gap,
            stall,
        }) => {
            let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
            let closed = shared.closed.clone();
            tokio::spawn(async move {
                for piece in pieces {
                    tokio::time::sleep(gap).await;
                    if tx.send(Ok(Bytes::from(piece))).await.is_err() {
                        let _ = closed.send(());
                        return;
                    }
                }
                if stall {
                    tx.closed().await;
                    let _ = closed.send(());
                }
            });
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            Response::builder()
                .status(200)
                .header("content-type", content_type)
                .body(Body::from_stream(stream))
                .unwrap()
        }
    }
}
