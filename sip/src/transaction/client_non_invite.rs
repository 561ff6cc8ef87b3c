//! Client non-INVITE transaction (§17.1.2).

use std::time::{Duration, Instant};

use rsip::{Request, Response, SipMessage};

use super::outbox::Outbox;
use super::{Destination, Input, Timers, TransactionEvent, Transmit};
use crate::message;

/// States of Figure 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// Request sent; Timers E and F run.
    Trying,
    /// A provisional response arrived; E now fires every T2.
    Proceeding,
    /// A final response arrived; Timer K absorbs retransmissions.
    Completed,
    /// Done.
    Terminated,
}

/// A client non-INVITE transaction.
#[derive(Debug)]
pub struct ClientNonInvite {
    state: ClientNonInviteState,
    request: Request,
    out: Outbox,
    timers: Timers,
    timer_e: Option<(Instant, Duration)>,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
}

impl ClientNonInvite {
    /// Starts the transaction: the request goes out at once, Timer E (UDP
    /// only) and Timer F are set (§17.1.2.2).
    pub fn new(request: Request, destination: Destination, timers: Timers, now: Instant) -> Self {
        let reliable = destination.is_reliable();
        let mut tx = ClientNonInvite {
            state: ClientNonInviteState::Trying,
            request,
            out: Outbox::new(destination),
            timers,
            timer_e: (!reliable).then(|| (now + timers.t1, timers.t1)),
            timer_f: Some(now + timers.t1x64()),
            timer_k: None,
        };
        tx.send();
        tx
    }

    /// Current state.
    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// The request this transaction carries.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Message(SipMessage::Response(response)) => self.on_response(response, now),
            Input::Message(SipMessage::Request(_)) | Input::Respond(_) => {}
            Input::Timeout => self.on_timeout(now),
            Input::TransportError => {
                if self.state != ClientNonInviteState::Terminated {
                    self.out.emit(TransactionEvent::TransportError);
                    self.terminate();
                }
            }
        }
    }

    fn on_response(&mut self, response: Response, now: Instant) {
        use ClientNonInviteState::*;
        let code = response.status_code.code();
        match (self.state, code) {
            (Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.out.emit(TransactionEvent::Response(response));
            }
            (Trying | Proceeding, 200..=699) => {
                self.state = Completed;
                self.timer_e = None;
                self.timer_f = None;
                self.out.emit(TransactionEvent::Response(response));
                if self.out.destination.is_reliable() {
                    self.terminate();
                } else {
                    self.timer_k = Some(now + self.timers.t4);
                }
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        if self.timer_f.is_some_and(|t| now >= t) {
            let timeout = message::response(&self.request, 408, None, None);
            self.out.emit(TransactionEvent::Timeout(timeout));
            self.terminate();
            return;
        }
        if let Some((at, interval)) = self.timer_e
            && now >= at
        {
            // Trying: double up to T2. Proceeding: every T2 (§17.1.2.2).
            let next = match self.state {
                ClientNonInviteState::Trying => (interval * 2).min(self.timers.t2),
                _ => self.timers.t2,
            };
            self.timer_e = Some((at + next, next));
            self.send();
        }
        if self.timer_k.is_some_and(|t| now >= t) {
            self.terminate();
        }
    }

    fn send(&mut self) {
        self.out.send(SipMessage::Request(self.request.clone()));
    }

    fn terminate(&mut self) {
        self.state = ClientNonInviteState::Terminated;
        self.timer_e = None;
        self.timer_f = None;
        self.timer_k = None;
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
        [self.timer_e.map(|(t, _)| t), self.timer_f, self.timer_k]
            .into_iter()
            .flatten()
            .min()
    }
}
