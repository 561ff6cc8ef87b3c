//! `GET /v1/ws`: live events over a WebSocket.
//!
//! Authenticated like every request (`Authorization`, `X-API-Key`, or
//! `?token=` for browsers), filtered with `?call_id=` or `?number_id=`
//! (which must be the organization's: 404 otherwise). Each event is one
//! text message, the JSON of a [`LiveEvent`](crate::api::live::LiveEvent).
//!
//! The connection closes with [`SLOW_CONSUMER_CLOSE`] when the client falls
//! [`SUBSCRIBER_BUFFER`](crate::api::live::SUBSCRIBER_BUFFER) events
//! behind, with 1001 (going away) when the server shuts down, and when the
//! client stops answering pings.

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::error::ApiError;
use crate::api::live::{Filter, SLOW_CONSUMER_CLOSE, Subscription};
use crate::api::{AppState, Caller};
use crate::store::StoreError;

/// A ping goes out this often; a client that misses two in a row is gone.
pub const PING_EVERY: Duration = Duration::from_secs(20);
/// A send that takes longer than this means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// WebSocket close code when the server shuts down (RFC 6455 §7.4.1).
pub const GOING_AWAY: u16 = 1001;

/// Filters of `GET /v1/ws`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WsQuery {
    /// Only this call's events.
    pub call_id: Option<String>,
    /// Only events of calls on this number.
    pub number_id: Option<String>,
    /// Only events of this batch and its calls.
    pub batch_id: Option<String>,
}

/// Upgrades to the event stream. The subscription starts before the
/// upgrade completes, so no event after the 101 answer is missed.
pub async fn upgrade(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<WsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let missing = |what| {
        move |e| match e {
            StoreError::NotFound => ApiError::NotFound(what),
            other => other.into(),
        }
    };
    if let Some(id) = &q.call_id {
        state
            .store
            .get_call(&caller.org_id, id)
            .await
            .map_err(missing("call"))?;
    }
    if let Some(id) = &q.number_id {
        state
            .store
            .get_number(&caller.org_id, id)
            .await
            .map_err(missing("number"))?;
    }
    if let Some(id) = &q.batch_id {
        state
            .store
            .get_batch(&caller.org_id, id)
            .await
            .map_err(missing("batch"))?;
    }
    // Checked after the filters, so that a request for another
    // organization's call is 404 whatever its headers.
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let sub = state.hub.subscribe(
        &caller.org_id,
        Filter {
            call_id: q.call_id,
            number_id: q.number_id,
            batch_id: q.batch_id,
        },
    );
    Ok(ws.on_upgrade(move |socket| run(socket, sub)))
}

async fn send(socket: &mut WebSocket, msg: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(msg)).await,
        Ok(Ok(()))
    )
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = send(socket, Message::Close(Some(frame))).await;
}

async fn run(mut socket: WebSocket, mut sub: Subscription) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut unanswered = 0u32;
    loop {
        tokio::select! {
            event = sub.events.recv() => match event {
                Some(e) => {
                    let text = match serde_json::to_string(&*e) {
                        Ok(t) => t,
                        Err(_) => continue,
                    };
                    if !send(&mut socket, Message::Text(text.into())).await {
                        return;
                    }
                }
                None => {
                    if sub.was_too_slow() {
                        close(&mut socket, SLOW_CONSUMER_CLOSE, "too slow: events were dropped").await;
                    } else {
                        close(&mut socket, GOING_AWAY, "server shutting down").await;
                    }
                    return;
                }
            },
            _ = ping.tick() => {
                if unanswered >= 2 {
                    close(&mut socket, GOING_AWAY, "no pong").await;
                    return;
                }
                unanswered += 1;
                if !send(&mut socket, Message::Ping(Vec::new().into())).await {
                    return;
                }
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                // Any sign of life counts: pongs, and pings (answered by
                // the library), and messages, which are otherwise ignored.
                Some(Ok(_)) => unanswered = 0,
            },
        }
    }
}
