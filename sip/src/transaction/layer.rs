//! The transaction layer: the table of transactions, message matching,
//! CANCEL handling, merged-request detection and timer multiplexing.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::time::Instant;

use rsip::headers::{Header, UntypedHeader};
use rsip::param::{Branch, Param};
use rsip::prelude::*;
use rsip::{Method, Request, Response, SipMessage};

use super::build::build_cancel;
use super::{
    ClientInvite, ClientInviteState, ClientNonInvite, Config, Destination, Error, Input, Role,
    ServerInvite, ServerInviteState, ServerNonInvite, TransactionEvent, TransactionKey, Transmit,
};
use crate::message::{self, new_branch, new_tag};

/// What the transaction layer reports to the TU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerEvent {
    /// An event of one transaction.
    Transaction {
        /// Which transaction.
        key: TransactionKey,
        /// What happened.
        event: TransactionEvent,
    },
    /// A CANCEL matched a server INVITE transaction still in Proceeding. The
    /// layer has answered the CANCEL with 200; the TU should now answer the
    /// INVITE with 487 Request Terminated (§9.2).
    Cancelled {
        /// The INVITE transaction to answer with 487.
        invite: TransactionKey,
        /// The CANCEL request.
        cancel: Request,
    },
    /// An ACK that matched no INVITE server transaction: the ACK for a 2xx,
    /// which belongs to the dialog layer (§17.2.3, §13.3.1.4).
    Ack {
        /// The ACK.
        request: Request,
        /// Where it came from.
        source: Destination,
    },
    /// A response that matched no client transaction (§18.1.2), e.g. a 2xx
    /// retransmission after Timer M; the dialog layer may still want it.
    StrayResponse {
        /// The response.
        response: Response,
        /// Where it came from.
        source: Destination,
    },
    /// The layer answered a request itself without involving the TU: 482 for
    /// a merged request (§8.2.2.2) or 503 when the table is full.
    Rejected {
        /// The request.
        request: Request,
        /// The status sent.
        status: u16,
    },
}

#[derive(Debug)]
enum Tx {
    InviteClient(ClientInvite),
    NonInviteClient(ClientNonInvite),
    InviteServer(ServerInvite),
    NonInviteServer(ServerNonInvite),
}

impl Tx {
    fn handle(&mut self, input: Input, now: Instant) {
        match self {
            Tx::InviteClient(t) => t.handle(input, now),
            Tx::NonInviteClient(t) => t.handle(input, now),
            Tx::InviteServer(t) => t.handle(input, now),
            Tx::NonInviteServer(t) => t.handle(input, now),
        }
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        match self {
            Tx::InviteClient(t) => t.poll_transmit(),
            Tx::NonInviteClient(t) => t.poll_transmit(),
            Tx::InviteServer(t) => t.poll_transmit(),
            Tx::NonInviteServer(t) => t.poll_transmit(),
        }
    }
    fn poll_event(&mut self) -> Option<TransactionEvent> {
        match self {
            Tx::InviteClient(t) => t.poll_event(),
            Tx::NonInviteClient(t) => t.poll_event(),
            Tx::InviteServer(t) => t.poll_event(),
            Tx::NonInviteServer(t) => t.poll_event(),
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Tx::InviteClient(t) => t.poll_timeout(),
            Tx::NonInviteClient(t) => t.poll_timeout(),
            Tx::InviteServer(t) => t.poll_timeout(),
            Tx::NonInviteServer(t) => t.poll_timeout(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    id: u64,
    tx: Tx,
    /// The deadline last pushed to the heap, so a message that leaves the
    /// timers alone (a retransmission) doesn't push a duplicate.
    scheduled: Option<Instant>,
}

/// §8.2.2.2's identity of a request: From tag, Call-ID, CSeq.
type MergeKey = (String, String, u32, String);

/// The RFC 3261 §17 transaction layer of one endpoint, sans-IO.
///
/// Feed it received messages ([`handle_incoming`](Self::handle_incoming)),
/// TU requests ([`send_request`](Self::send_request),
/// [`respond`](Self::respond), [`cancel`](Self::cancel)) and timer expiry
/// ([`handle_timeout`](Self::handle_timeout)); drain
/// [`poll_transmit`](Self::poll_transmit) and [`poll_event`](Self::poll_event)
/// and sleep until [`poll_timeout`](Self::poll_timeout).
#[derive(Debug)]
pub struct TransactionLayer {
    config: Config,
    table: HashMap<TransactionKey, Entry>,
    ids: HashMap<u64, TransactionKey>,
    next_id: u64,
    /// Deadlines, lazily invalidated: an entry is live only while its
    /// transaction still exists and still reports that deadline.
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    merge_index: HashMap<MergeKey, TransactionKey>,
    pending_cancels: HashSet<TransactionKey>,
    server_count: usize,
    transmits: VecDeque<Transmit>,
    events: VecDeque<LayerEvent>,
}

impl TransactionLayer {
    /// An empty layer.
    pub fn new(config: Config) -> Self {
        TransactionLayer {
            config,
            table: HashMap::new(),
            ids: HashMap::new(),
            next_id: 0,
            deadlines: BinaryHeap::new(),
            merge_index: HashMap::new(),
            pending_cancels: HashSet::new(),
            server_count: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of live transactions (client and server).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Whether the transaction is live.
    pub fn contains(&self, key: &TransactionKey) -> bool {
        self.table.contains_key(key)
    }

    /// State of a live client INVITE transaction.
    pub fn client_invite_state(&self, key: &TransactionKey) -> Option<ClientInviteState> {
        match self.table.get(key).map(|e| &e.tx) {
            Some(Tx::InviteClient(t)) => Some(t.state()),
            _ => None,
        }
    }

    /// State of a live server INVITE transaction.
    pub fn server_invite_state(&self, key: &TransactionKey) -> Option<ServerInviteState> {
        match self.table.get(key).map(|e| &e.tx) {
            Some(Tx::InviteServer(t)) => Some(t.state()),
            _ => None,
        }
    }

    /// Starts a client transaction for `request` (INVITE or non-INVITE; not
    /// ACK, which goes through [`send_stateless`](Self::send_stateless)).
    /// The top Via must be present; a branch with the magic cookie is added
    /// if it has none.
    pub fn send_request(
        &mut self,
        mut request: Request,
        destination: Destination,
        now: Instant,
    ) -> Result<TransactionKey, Error> {
        if request.method == Method::Ack {
            return Err(Error::InvalidState("ACK is sent without a transaction"));
        }
        let clients = self.table.len() - self.server_count;
        if clients >= self.config.max_client_transactions {
            return Err(Error::TooManyTransactions);
        }
        ensure_branch(&mut request)?;
        let key = TransactionKey::client(&SipMessage::Request(request.clone()))?;
        if self.table.contains_key(&key) {
            return Err(Error::InvalidState("branch already in use"));
        }
        let timers = self.config.timers;
        let tx = if request.method == Method::Invite {
            Tx::InviteClient(ClientInvite::new(request, destination, timers, now))
        } else {
            Tx::NonInviteClient(ClientNonInvite::new(request, destination, timers, now))
        };
        self.insert(key.clone(), tx);
        Ok(key)
    }

    /// Queues a message outside any transaction: the ACK for a 2xx
    /// (§13.2.2.4), which the dialog layer owns.
    pub fn send_stateless(&mut self, message: SipMessage, destination: Destination) {
        self.transmits.push_back(Transmit {
            message,
            destination,
        });
    }

    /// Sends `response` through the server transaction `key`.
    pub fn respond(
        &mut self,
        key: &TransactionKey,
        response: Response,
        now: Instant,
    ) -> Result<(), Error> {
        if key.role != Role::Server {
            return Err(Error::InvalidState("not a server transaction"));
        }
        if !self.table.contains_key(key) {
            return Err(Error::NoTransaction);
        }
        self.dispatch(key, Input::Respond(response), now);
        Ok(())
    }

    /// Cancels the client INVITE transaction `invite` (§9.1). Returns the key
    /// of the CANCEL's own client transaction, or `None` when no provisional
    /// response has arrived yet: the CANCEL then goes out as soon as one
    /// does, as §9.1 requires.
    pub fn cancel(
        &mut self,
        invite: &TransactionKey,
        now: Instant,
    ) -> Result<Option<TransactionKey>, Error> {
        let (state, request, destination) = match self.table.get(invite).map(|e| &e.tx) {
            Some(Tx::InviteClient(t)) => (t.state(), t.request().clone(), t.destination()),
            Some(_) => return Err(Error::InvalidState("not a client INVITE transaction")),
            None => return Err(Error::NoTransaction),
        };
        match state {
            ClientInviteState::Calling => {
                self.pending_cancels.insert(invite.clone());
                Ok(None)
            }
            ClientInviteState::Proceeding => {
                let cancel = build_cancel(&request)?;
                let key = self.send_request(cancel, destination, now)?;
                if let Some(Entry {
                    tx: Tx::InviteClient(t),
                    ..
                }) = self.table.get_mut(invite)
                {
                    t.cancel_sent(now);
                }
                self.drain(invite);
                Ok(Some(key))
            }
            _ => Err(Error::InvalidState("final response already received")),
        }
    }

    /// Tells the transaction its message could not be delivered.
    pub fn transport_error(&mut self, key: &TransactionKey, now: Instant) {
        if self.table.contains_key(key) {
            self.dispatch(key, Input::TransportError, now);
        }
    }

    /// Processes a message received from `source`.
    pub fn handle_incoming(&mut self, message: SipMessage, source: Destination, now: Instant) {
        match message {
            SipMessage::Response(response) => self.incoming_response(response, source, now),
            SipMessage::Request(request) => self.incoming_request(request, source, now),
        }
        self.prune_deadlines();
    }

    /// Fires every timer due at `now`. Timers that come due again because
    /// `now` is far behind are handled by the next call (poll_timeout will
    /// already be due), which bounds the work per call.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if let Some(key) = self.ids.get(&id) {
                due.push((at, key.clone()));
            }
        }
        for (at, key) in due {
            let live = match self.table.get_mut(&key) {
                Some(e) if e.tx.poll_timeout() == Some(at) => {
                    // Its heap entry is gone: whatever deadline follows must
                    // be pushed again.
                    e.scheduled = None;
                    true
                }
                _ => false,
            };
            if live {
                self.dispatch(&key, Input::Timeout, now);
            }
        }
        self.prune_deadlines();
    }

    /// The earliest timer of all transactions.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Next message for the transport.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event for the TU.
    pub fn poll_event(&mut self) -> Option<LayerEvent> {
        self.events.pop_front()
    }

    fn incoming_response(&mut self, response: Response, source: Destination, now: Instant) {
        let Ok(key) = TransactionKey::client(&SipMessage::Response(response.clone())) else {
            tracing::debug!("response without usable Via/CSeq dropped");
            return;
        };
        if !self.table.contains_key(&key) {
            self.events
                .push_back(LayerEvent::StrayResponse { response, source });
            return;
        }
        let code = response.status_code.code();
        self.dispatch(&key, Input::Message(SipMessage::Response(response)), now);
        if self.pending_cancels.contains(&key) {
            match code {
                100..=199 => {
                    self.pending_cancels.remove(&key);
                    if let Err(e) = self.cancel(&key, now) {
                        tracing::debug!(error = %e, "deferred CANCEL not sent");
                    }
                }
                _ => {
                    self.pending_cancels.remove(&key);
                }
            }
        }
    }

    fn incoming_request(&mut self, request: Request, source: Destination, now: Instant) {
        let key = match TransactionKey::server(&request) {
            Ok(key) => key,
            Err(e) => {
                tracing::debug!(error = %e, "request without usable Via/CSeq dropped");
                return;
            }
        };
        if self.table.contains_key(&key) {
            // A retransmission, or the ACK for a non-2xx final.
            self.dispatch(&key, Input::Message(SipMessage::Request(request)), now);
            return;
        }
        match request.method {
            Method::Ack => {
                self.events.push_back(LayerEvent::Ack { request, source });
                return;
            }
            _ if self.server_count >= self.config.max_server_transactions => {
                let mut response = message::response(&request, 503, None, Some(&new_tag()));
                // §21.5.4: tell the client when to come back rather than let
                // it hammer an overloaded table.
                response
                    .headers
                    .push(Header::RetryAfter(rsip::headers::RetryAfter::new("5")));
                self.send_stateless(SipMessage::Response(response), source);
                self.events.push_back(LayerEvent::Rejected {
                    request,
                    status: 503,
                });
                return;
            }
            Method::Cancel => {
                self.incoming_cancel(key, request, source, now);
                return;
            }
            _ => {}
        }
        let timers = self.config.timers;
        let merge_key = merge_key(&request);
        if let Some(merge_key) = &merge_key
            && self
                .merge_index
                .get(merge_key)
                .is_some_and(|k| self.table.contains_key(k))
        {
            // §8.2.2.2: same request via another path: 482, through a
            // server transaction so retransmissions and ACK are absorbed.
            let tx = if request.method == Method::Invite {
                Tx::InviteServer(ServerInvite::new_silent(request.clone(), source, timers))
            } else {
                Tx::NonInviteServer(ServerNonInvite::new_silent(request.clone(), source, timers))
            };
            self.insert(key.clone(), tx);
            let response = message::response(&request, 482, None, Some(&new_tag()));
            self.dispatch(&key, Input::Respond(response), now);
            self.events.push_back(LayerEvent::Rejected {
                request,
                status: 482,
            });
            return;
        }
        let tx = if request.method == Method::Invite {
            Tx::InviteServer(ServerInvite::new(
                request,
                source,
                timers,
                self.config.trying,
                now,
            ))
        } else {
            Tx::NonInviteServer(ServerNonInvite::new(request, source, timers))
        };
        if let Some(merge_key) = merge_key {
            self.merge_index.insert(merge_key, key.clone());
        }
        self.insert(key, tx);
    }

    fn incoming_cancel(
        &mut self,
        key: TransactionKey,
        cancel: Request,
        source: Destination,
        now: Instant,
    ) {
        let invite_key = TransactionKey::server_with_method(&cancel, Method::Invite).ok();
        let invite = invite_key
            .as_ref()
            .and_then(|k| match self.table.get(k).map(|e| &e.tx) {
                Some(Tx::InviteServer(t)) => Some((
                    k.clone(),
                    t.state(),
                    t.last_response()
                        .and_then(|r| r.to_header().ok())
                        .and_then(|to| to.tag().ok().flatten())
                        .map(|tag| tag.to_string()),
                )),
                _ => None,
            });
        let timers = self.config.timers;
        let tx = Tx::NonInviteServer(ServerNonInvite::new_silent(cancel.clone(), source, timers));
        self.insert(key.clone(), tx);
        match invite {
            Some((invite_key, state, tag)) => {
                // §9.2: the To tag SHOULD equal the one of the INVITE's
                // response.
                let tag = tag.unwrap_or_else(new_tag);
                let ok = message::response(&cancel, 200, None, Some(&tag));
                self.dispatch(&key, Input::Respond(ok), now);
                if state == ServerInviteState::Proceeding {
                    self.events.push_back(LayerEvent::Cancelled {
                        invite: invite_key,
                        cancel,
                    });
                }
            }
            None => {
                let response = message::response(&cancel, 481, None, Some(&new_tag()));
                self.dispatch(&key, Input::Respond(response), now);
            }
        }
    }

    fn insert(&mut self, key: TransactionKey, tx: Tx) {
        let id = self.next_id;
        self.next_id += 1;
        if key.role == Role::Server {
            self.server_count += 1;
        }
        self.ids.insert(id, key.clone());
        self.table.insert(
            key.clone(),
            Entry {
                id,
                tx,
                scheduled: None,
            },
        );
        self.drain(&key);
    }

    fn dispatch(&mut self, key: &TransactionKey, input: Input, now: Instant) {
        if let Some(entry) = self.table.get_mut(key) {
            entry.tx.handle(input, now);
            self.drain(key);
        }
    }

    /// Moves a transaction's output into the layer's queues, reschedules its
    /// timer and forgets it once terminated.
    fn drain(&mut self, key: &TransactionKey) {
        let Some(entry) = self.table.get_mut(key) else {
            return;
        };
        while let Some(t) = entry.tx.poll_transmit() {
            self.transmits.push_back(t);
        }
        let mut terminated = false;
        while let Some(event) = entry.tx.poll_event() {
            terminated |= event == TransactionEvent::Terminated;
            self.events.push_back(LayerEvent::Transaction {
                key: key.clone(),
                event,
            });
        }
        if terminated {
            self.remove(key);
        } else {
            let deadline = entry.tx.poll_timeout();
            if deadline != entry.scheduled {
                entry.scheduled = deadline;
                if let Some(at) = deadline {
                    self.deadlines.push(Reverse((at, entry.id)));
                }
            }
        }
    }

    fn remove(&mut self, key: &TransactionKey) {
        let Some(entry) = self.table.remove(key) else {
            return;
        };
        self.ids.remove(&entry.id);
        if key.role == Role::Server {
            self.server_count -= 1;
        }
        self.pending_cancels.remove(key);
        if let Tx::InviteServer(t) = &entry.tx {
            self.unindex(t.request(), key);
        }
        if let Tx::NonInviteServer(t) = &entry.tx {
            self.unindex(t.request(), key);
        }
    }

    fn unindex(&mut self, request: &Request, key: &TransactionKey) {
        if let Some(mk) = merge_key(request)
            && self.merge_index.get(&mk) == Some(key)
        {
            self.merge_index.remove(&mk);
        }
    }

    /// Pops heap entries that no longer match a live deadline, so the top is
    /// always the true earliest deadline.
    fn prune_deadlines(&mut self) {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            let live = self
                .ids
                .get(&id)
                .and_then(|k| self.table.get(k))
                .is_some_and(|e| e.tx.poll_timeout() == Some(at));
            if live {
                break;
            }
            self.deadlines.pop();
        }
    }
}

/// The §8.2.2.2 identity of an out-of-dialog request (no To tag).
fn merge_key(request: &Request) -> Option<MergeKey> {
    let to_tag = request.to_header().ok()?.tag().ok()?;
    if to_tag.is_some() {
        return None;
    }
    let from_tag = request.from_header().ok()?.tag().ok()??.to_string();
    let call_id = request.call_id_header().ok()?.value().to_string();
    let cseq = request.cseq_header().ok()?.typed().ok()?;
    Some((from_tag, call_id, cseq.seq, cseq.method.to_string()))
}

/// Adds a magic-cookie branch to the top Via if it has none (§8.1.1.7).
fn ensure_branch(request: &mut Request) -> Result<(), Error> {
    let via = request.via_header().map_err(|_| Error::Header("Via"))?;
    let mut typed = via.typed().map_err(|_| Error::Header("Via"))?;
    if typed.branch().is_some() {
        return Ok(());
    }
    typed.params.push(Param::Branch(Branch::new(new_branch())));
    let new_via: rsip::headers::Via = typed.into();
    if let Some(h) = request
        .headers
        .iter_mut()
        .find(|h| matches!(h, Header::Via(_)))
    {
        *h = Header::Via(new_via);
    }
    Ok(())
}
