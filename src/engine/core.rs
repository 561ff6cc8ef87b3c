//! The engine task: the only owner of the transaction layer. Everything
//! it does is quick and synchronous; the only waits are the transport's
//! UDP sends.

use rsip::headers::UntypedHeader;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotline_sip::message;
use hotline_sip::transaction::{
    Destination, LayerEvent, TransactionEvent, TransactionKey, TransactionLayer,
};
use hotline_sip::transport::{Incoming, Transport};
use rsip::{Method, Request, SipMessage};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use super::admit::Admission;
use super::net::{outgoing, source_of};
use super::{Ctx, ToEngine, ToLeg};

/// Methods Hotline answers, for `Allow` (RFC 3261 §20.5).
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY";
/// Extensions Hotline supports, for `Supported`.
pub(crate) const SUPPORTED: &str = "timer, replaces, norefersub";
/// Live server transactions before new requests get a stateless 503. Over
/// UDP every answered call leaves two behind for 64*T1 = 32 s after they
/// complete: its INVITE's in Accepted (Timer L, RFC 6026) and its BYE's in
/// Completed (Timer J). The table therefore holds about 64 x the call rate,
/// and the transaction layer's default of 10,000 capped a steady load near
/// 156 calls/s (the SIP load bench saw BYEs refused with 503 at 300 calls/s).
/// 100,000 sustains about 1,500 calls/s.
const MAX_SERVER_TRANSACTIONS: usize = 100_000;
/// The same reasoning for outbound calls: an INVITE client transaction
/// lingers 32 s after a 2xx (Timer M) and a BYE's for Timer K.
const MAX_CLIENT_TRANSACTIONS: usize = 100_000;

pub(crate) struct Core {
    ctx: Arc<Ctx>,
    layer: TransactionLayer,
    /// Call-ID → the call that owns the dialog.
    legs: HashMap<String, mpsc::Sender<ToLeg>>,
    /// Transactions that belong to a call, by Call-ID.
    owners: HashMap<TransactionKey, String>,
    admission: Admission,
    rx: mpsc::Receiver<ToEngine>,
    incoming: mpsc::Receiver<Incoming>,
}

impl Core {
    pub fn new(
        ctx: Arc<Ctx>,
        rx: mpsc::Receiver<ToEngine>,
        incoming: mpsc::Receiver<Incoming>,
    ) -> Core {
        Core {
            admission: Admission::new(&ctx, Instant::now()),
            ctx,
            // 100 Trying at once: carriers start their own timers on it.
            layer: TransactionLayer::new(hotline_sip::transaction::Config {
                trying: hotline_sip::transaction::TryingPolicy::Immediately,
                max_server_transactions: MAX_SERVER_TRANSACTIONS,
                max_client_transactions: MAX_CLIENT_TRANSACTIONS,
                ..Default::default()
            }),
            legs: HashMap::new(),
            owners: HashMap::new(),
            rx,
            incoming,
        }
    }

    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            let wake = self
                .layer
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd, Instant::now()),
                    None => break,
                },
                msg = self.incoming.recv() => match msg {
                    Some(msg) => self.receive(msg, Instant::now()),
                    None => break,
                },
                () = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    self.layer.handle_timeout(now);
                    self.events(None, now);
                }
            }
            self.flush().await;
        }
        debug!("SIP engine stopped");
    }

    /// Sends what the layer queued.
    async fn flush(&mut self) {
        while let Some(t) = self.layer.poll_transmit() {
            let bytes = Bytes::from(t.message.to_string());
            let out = outgoing(&t, bytes);
            if out.transport == Transport::Udp {
                if let Err(e) = self.ctx.transport.send(out).await {
                    debug!(error = %e, to = %t.destination.addr, "SIP send failed");
                }
            } else {
                // A stream send may have to connect first; never make the
                // whole engine wait for one peer's TCP handshake. But a
                // send on an open connection completes on its first poll,
                // and must happen here, in order: spawned tasks run in any
                // order, and a 200 OK that overtakes its 100 Trying on a
                // stream breaks the peer's transaction. Only a send still
                // connecting moves to a task of its own.
                let transport = self.ctx.transport.clone();
                let to = t.destination.addr;
                let mut send = Box::pin(async move {
                    if let Err(e) = transport.send(out).await {
                        debug!(error = %e, %to, "SIP send failed");
                    }
                });
                let first =
                    std::future::poll_fn(|cx| std::task::Poll::Ready(send.as_mut().poll(cx))).await;
                if first.is_pending() {
                    tokio::spawn(send);
                }
            }
        }
    }

    fn receive(&mut self, incoming: Incoming, now: Instant) {
        let source = source_of(&incoming);
        match message::parse(&incoming.bytes) {
            Ok(SipMessage::Request(mut request)) => {
                message::apply_received(&mut request, incoming.source);
                self.layer
                    .handle_incoming(SipMessage::Request(request), source, now);
            }
            Ok(response) => self.layer.handle_incoming(response, source, now),
            Err(e) => {
                debug!(from = %incoming.source, error = %e, "malformed SIP message");
                if let Some(answer) =
                    message::reject(&incoming.bytes, e.status_code(), &e.to_string())
                {
                    let out = hotline_sip::transport::Outgoing {
                        bytes: answer,
                        destination: incoming.source,
                        transport: incoming.transport,
                        connection: incoming.connection,
                    };
                    let transport = self.ctx.transport.clone();
                    tokio::spawn(async move {
                        let _ = transport.send(out).await;
                    });
                }
                return;
            }
        }
        self.events(Some(source), now);
    }

    fn command(&mut self, cmd: ToEngine, now: Instant) {
        match cmd {
            ToEngine::Respond { key, response } => {
                if let Err(e) = self.layer.respond(&key, response, now) {
                    debug!(error = %e, "response for a finished transaction dropped");
                }
            }
            ToEngine::Send {
                owner,
                request,
                destination,
            } => {
                let key = TransactionKey::client(&SipMessage::Request(request.clone()));
                match self.layer.send_request(request, destination, now) {
                    Ok(key) => {
                        self.owners.insert(key, owner);
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot start client transaction");
                        // The call learns of it rather than waiting forever
                        // for an answer.
                        if let Ok(key) = key {
                            self.deliver(&owner, ToLeg::TransportError { key });
                        }
                    }
                }
            }
            ToEngine::Stateless {
                message,
                destination,
            } => self.layer.send_stateless(message, destination),
            ToEngine::Cancel { key } => {
                if let Err(e) = self.layer.cancel(&key, now) {
                    debug!(error = %e, "CANCEL not sent");
                }
            }
            ToEngine::Attach { call_id, tx } => {
                self.legs.insert(call_id, tx);
            }
            ToEngine::Detach { call_id } => {
                self.legs.remove(&call_id);
                self.owners.retain(|_, owner| *owner != call_id);
            }
        }
        self.events(None, now);
    }

    /// Routes what the layer reported. `source` is where the message that
    /// caused the events came from, when one did.
    fn events(&mut self, source: Option<Destination>, now: Instant) {
        while let Some(event) = self.layer.poll_event() {
            match event {
                LayerEvent::Transaction { key, event } => {
                    self.transaction_event(key, event, source, now)
                }
                LayerEvent::Cancelled { invite, cancel } => {
                    let call_id = message::call_id(&cancel).unwrap_or("").trim().to_owned();
                    if !self.deliver(&call_id, ToLeg::Cancelled) {
                        let r = message::response(&cancel, 487, None, None);
                        let _ = self.layer.respond(&invite, r, now);
                    }
                }
                LayerEvent::Ack { request, .. } => {
                    let call_id = message::call_id(&request).unwrap_or("").trim().to_owned();
                    self.deliver(&call_id, ToLeg::Ack(request));
                }
                LayerEvent::StrayResponse { response, .. } => {
                    let call_id = message::call_id(&response).unwrap_or("").trim().to_owned();
                    self.deliver(&call_id, ToLeg::Stray(response));
                }
                LayerEvent::Rejected { request, status } => {
                    debug!(method = %request.method, status, "request rejected by the transaction layer");
                }
            }
        }
    }

    fn transaction_event(
        &mut self,
        key: TransactionKey,
        event: TransactionEvent,
        source: Option<Destination>,
        now: Instant,
    ) {
        match event {
            TransactionEvent::Request(request) => {
                let Some(source) = source else { return };
                self.request(key, request, source, now);
            }
            TransactionEvent::Response(response) | TransactionEvent::Timeout(response) => {
                if let Some(owner) = self.owners.get(&key).cloned() {
                    self.deliver(&owner, ToLeg::Response { key, response });
                }
            }
            TransactionEvent::AckFor2xx(request) => {
                let call_id = message::call_id(&request).unwrap_or("").trim().to_owned();
                self.deliver(&call_id, ToLeg::Ack(request));
            }
            TransactionEvent::TransportError => {
                if let Some(owner) = self.owners.get(&key).cloned() {
                    self.deliver(&owner, ToLeg::TransportError { key });
                }
            }
            TransactionEvent::AckTimeout => {
                if let Some(owner) = self.owners.get(&key).cloned() {
                    self.deliver(&owner, ToLeg::AckTimeout);
                }
            }
            TransactionEvent::Terminated => {
                self.owners.remove(&key);
            }
        }
    }

    /// A new server transaction.
    fn request(
        &mut self,
        key: TransactionKey,
        request: Request,
        source: Destination,
        now: Instant,
    ) {
        let call_id = message::call_id(&request).unwrap_or("").trim().to_owned();
        if let Some(tx) = self.legs.get(&call_id) {
            self.owners.insert(key.clone(), call_id.clone());
            let msg = ToLeg::Request {
                key: key.clone(),
                request,
                source,
            };
            if let Err(e) = tx.try_send(msg) {
                let full = matches!(e, mpsc::error::TrySendError::Full(_));
                let ToLeg::Request { request, .. } = e.into_inner() else {
                    return;
                };
                if full {
                    // §21.5.4: busy, come back shortly.
                    let mut r = message::response(&request, 503, None, Some(&message::new_tag()));
                    r.headers.push(rsip::headers::RetryAfter::new("1").into());
                    let _ = self.layer.respond(&key, r, now);
                } else {
                    // The call ended a moment ago.
                    self.legs.remove(&call_id);
                    self.answer_outside_dialog(key, &request, now);
                }
            }
            return;
        }
        self.answer_outside_dialog_or_admit(key, request, source, now);
    }

    fn answer_outside_dialog_or_admit(
        &mut self,
        key: TransactionKey,
        request: Request,
        source: Destination,
        now: Instant,
    ) {
        let has_to_tag = message::to_tag(&request).is_some();
        if request.method == Method::Invite && !has_to_tag {
            let call_id = message::call_id(&request).unwrap_or("").trim().to_owned();
            match self
                .admission
                .invite(&self.ctx, &key, &request, source, now)
            {
                Ok(tx) => {
                    self.owners.insert(key, call_id.clone());
                    self.legs.insert(call_id, tx);
                }
                Err(response) => {
                    let _ = self.layer.respond(&key, *response, now);
                }
            }
            return;
        }
        self.answer_outside_dialog(key, &request, now);
    }

    /// Requests that belong to no call we know.
    fn answer_outside_dialog(&mut self, key: TransactionKey, request: &Request, now: Instant) {
        let tag = message::new_tag();
        let in_dialog = message::to_tag(request).is_some();
        let r = match request.method {
            Method::Options => {
                let mut r = message::response(request, 200, None, Some(&tag));
                r.headers.push(rsip::headers::Allow::new(ALLOW).into());
                r.headers.push(rsip::Header::Other(
                    "Accept".into(),
                    "application/sdp".into(),
                ));
                r.headers
                    .push(rsip::headers::Supported::new(SUPPORTED).into());
                r
            }
            // §12.2.2: a request for a dialog that does not exist.
            _ if in_dialog => message::response(request, 481, None, Some(&tag)),
            Method::Bye | Method::Info | Method::Update | Method::Notify | Method::PRack => {
                message::response(request, 481, None, Some(&tag))
            }
            Method::Register
            | Method::Subscribe
            | Method::Publish
            | Method::Message
            | Method::Refer => {
                let mut r = message::response(request, 405, None, Some(&tag));
                r.headers.push(rsip::headers::Allow::new(ALLOW).into());
                r
            }
            _ => message::response(request, 501, None, Some(&tag)),
        };
        let _ = self.layer.respond(&key, r, now);
    }

    /// Hands a message to a call; false when no call has that Call-ID.
    fn deliver(&mut self, call_id: &str, msg: ToLeg) -> bool {
        match self.legs.get(call_id) {
            Some(tx) => {
                if tx.try_send(msg).is_err() {
                    debug!(
                        call_id,
                        "call's signalling queue full or closed; message dropped"
                    );
                }
                true
            }
            None => false,
        }
    }
}
