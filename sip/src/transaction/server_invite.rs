//! Server INVITE transaction (§17.2.1, RFC 6026 §7.1 and §8.5–8.7).

use std::time::{Duration, Instant};

use rsip::{Method, Request, Response, SipMessage};

use super::outbox::Outbox;
use super::{Destination, Input, Timers, TransactionEvent, Transmit, TryingPolicy};
use crate::message;

/// States of Figure 7, with RFC 6026's Accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// INVITE passed to the TU; provisional responses may go out.
    Proceeding,
    /// A non-2xx final went out; Timer G retransmits it until the ACK, Timer H
    /// gives up.
    Completed,
    /// The ACK arrived; Timer I absorbs ACK retransmissions.
    Confirmed,
    /// A 2xx went out; Timer L absorbs INVITE retransmissions while the TU
    /// retransmits the 2xx.
    Accepted,
    /// Done.
    Terminated,
}

/// A server INVITE transaction.
#[derive(Debug)]
pub struct ServerInvite {
    state: ServerInviteState,
    request: Request,
    out: Outbox,
    timers: Timers,
    last_response: Option<Response>,
    timer_trying: Option<Instant>,
    timer_g: Option<(Instant, Duration)>,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
    timer_l: Option<Instant>,
}

impl ServerInvite {
    /// Creates the transaction for a received INVITE; the INVITE is reported
    /// to the TU as [`TransactionEvent::Request`]. Responses go to
    /// `destination` (the §18.2.2 address the transport worked out).
    pub fn new(
        request: Request,
        destination: Destination,
        timers: Timers,
        trying: TryingPolicy,
        now: Instant,
    ) -> Self {
        let mut tx = ServerInvite {
            state: ServerInviteState::Proceeding,
            request: request.clone(),
            out: Outbox::new(destination),
            timers,
            last_response: None,
            timer_trying: None,
            timer_g: None,
            timer_h: None,
            timer_i: None,
            timer_l: None,
        };
        tx.out.emit(TransactionEvent::Request(request));
        tx.start_trying(trying, now);
        tx
    }

    /// Creates the transaction without reporting the INVITE to the TU: for
    /// INVITEs the layer rejects itself (482 for a merged request), so the
    /// ACK and retransmissions are still absorbed.
    pub(crate) fn new_silent(request: Request, destination: Destination, timers: Timers) -> Self {
        ServerInvite {
            state: ServerInviteState::Proceeding,
            request,
            out: Outbox::new(destination),
            timers,
            last_response: None,
            timer_trying: None,
            timer_g: None,
            timer_h: None,
            timer_i: None,
            timer_l: None,
        }
    }

    fn start_trying(&mut self, trying: TryingPolicy, now: Instant) {
        let tx = self;
        match trying {
            TryingPolicy::Immediately => tx.send_trying(),
            TryingPolicy::After(delay) => tx.timer_trying = Some(now + delay),
            TryingPolicy::Never => {}
        }
    }

    /// Current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// The INVITE.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The last response sent, whose To tag a 200 to CANCEL should reuse
    /// (§9.2).
    pub fn last_response(&self) -> Option<&Response> {
        self.last_response.as_ref()
    }

    fn send_trying(&mut self) {
        let trying = message::response(&self.request, 100, None, None);
        self.respond_provisional(trying);
    }

    fn respond_provisional(&mut self, response: Response) {
        self.timer_trying = None;
        self.last_response = Some(response.clone());
        self.send(response);
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Message(SipMessage::Request(request)) => self.on_request(request, now),
            Input::Message(SipMessage::Response(_)) => {}
            Input::Respond(response) => self.on_tu_response(response, now),
            Input::Timeout => self.on_timeout(now),
            Input::TransportError => {
                // §17.2.4: inform the TU; terminate.
                if self.state != ServerInviteState::Terminated {
                    self.out.emit(TransactionEvent::TransportError);
                    self.terminate();
                }
            }
        }
    }

    fn on_request(&mut self, request: Request, now: Instant) {
        use ServerInviteState::*;
        match (self.state, request.method) {
            (Proceeding | Completed, Method::Invite) => {
                // A retransmission: repeat the latest response (§17.2.1).
                if let Some(last) = self.last_response.clone() {
                    self.send(last);
                }
            }
            (Completed, Method::Ack) => {
                self.state = Confirmed;
                self.timer_g = None;
                self.timer_h = None;
                if self.out.destination.is_reliable() {
                    self.terminate();
                } else {
                    self.timer_i = Some(now + self.timers.t4);
                }
            }
            (Accepted, Method::Ack) => {
                // RFC 6026 §8.7: an ACK matching the transaction in Accepted
                // goes to the TU.
                self.out.emit(TransactionEvent::AckFor2xx(request));
            }
            // Confirmed absorbs ACKs, Accepted absorbs INVITEs (RFC 6026 §8.5).
            _ => {}
        }
    }

    fn on_tu_response(&mut self, response: Response, now: Instant) {
        use ServerInviteState::*;
        let code = response.status_code.code();
        match (self.state, code) {
            (Proceeding, 100..=199) => self.respond_provisional(response),
            (Proceeding, 200..=299) => {
                self.state = Accepted;
                self.timer_trying = None;
                self.timer_l = Some(now + self.timers.t1x64());
                self.last_response = Some(response.clone());
                self.send(response);
            }
            (Accepted, 200..=299) => {
                // RFC 6026 §8.7: the TU's 2xx retransmissions pass through.
                self.send(response);
            }
            (Proceeding, 300..=699) => {
                self.state = Completed;
                self.timer_trying = None;
                if !self.out.destination.is_reliable() {
                    self.timer_g = Some((now + self.timers.t1, self.timers.t1));
                }
                self.timer_h = Some(now + self.timers.t1x64());
                self.last_response = Some(response.clone());
                self.send(response);
            }
            _ => {
                tracing::debug!(code, state = ?self.state, "response ignored by server INVITE transaction")
            }
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        if self.timer_trying.is_some_and(|t| now >= t) {
            self.send_trying();
        }
        if self.timer_h.is_some_and(|t| now >= t) {
            self.out.emit(TransactionEvent::AckTimeout);
            self.terminate();
            return;
        }
        if let Some((at, interval)) = self.timer_g
            && now >= at
        {
            let next = (interval * 2).min(self.timers.t2);
            self.timer_g = Some((at + next, next));
            if let Some(last) = self.last_response.clone() {
                self.send(last);
            }
        }
        if self.timer_i.is_some_and(|t| now >= t) || self.timer_l.is_some_and(|t| now >= t) {
            self.terminate();
        }
    }

    fn send(&mut self, response: Response) {
        self.out.send(SipMessage::Response(response));
    }

    fn terminate(&mut self) {
        self.state = ServerInviteState::Terminated;
        self.timer_trying = None;
        self.timer_g = None;
        self.timer_h = None;
        self.timer_i = None;
        self.timer_l = None;
        self.out.emit(TransactionEvent::Terminated);
    }

    /// Next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.poll_transmit()
    }

    /// Next event for the TU.
    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.out.poll_event()
    }

    /// Earliest pending timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.timer_trying,
            self.timer_g.map(|(t, _)| t),
            self.timer_h,
            self.timer_i,
            self.timer_l,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
