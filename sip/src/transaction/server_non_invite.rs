//! Server non-INVITE transaction (§17.2.2).

use std::time::Instant;

use rsip::{Request, Response, SipMessage};

use super::outbox::Outbox;
use super::{Destination, Input, Timers, TransactionEvent, Transmit};

/// States of Figure 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// Request passed to the TU; retransmissions are absorbed silently.
    Trying,
    /// A provisional went out; retransmissions get it again.
    Proceeding,
    /// The final went out; retransmissions get it again until Timer J.
    Completed,
    /// Done.
    Terminated,
}

/// A server non-INVITE transaction.
#[derive(Debug)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    request: Request,
    out: Outbox,
    timers: Timers,
    last_response: Option<Response>,
    timer_j: Option<Instant>,
}

impl ServerNonInvite {
    /// Creates the transaction for a received request and reports it to the
    /// TU as [`TransactionEvent::Request`].
    pub fn new(request: Request, destination: Destination, timers: Timers) -> Self {
        let mut tx = Self::new_silent(request.clone(), destination, timers);
        tx.out.emit(TransactionEvent::Request(request));
        tx
    }

    /// Creates the transaction without reporting the request to the TU: for
    /// requests the layer answers itself (CANCEL, 482, 481).
    pub(crate) fn new_silent(request: Request, destination: Destination, timers: Timers) -> Self {
        ServerNonInvite {
            state: ServerNonInviteState::Trying,
            request,
            out: Outbox::new(destination),
            timers,
            last_response: None,
            timer_j: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// The request.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: Input, now: Instant) {
        use ServerNonInviteState::*;
        match input {
            Input::Message(SipMessage::Request(_)) => {
                if matches!(self.state, Proceeding | Completed)
                    && let Some(last) = self.last_response.clone()
                {
                    self.send(last);
                }
            }
            Input::Message(SipMessage::Response(_)) => {}
            Input::Respond(response) => {
                let code = response.status_code.code();
                match (self.state, code) {
                    (Trying | Proceeding, 100..=199) => {
                        self.state = Proceeding;
                        self.last_response = Some(response.clone());
                        self.send(response);
                    }
                    (Trying | Proceeding, 200..=699) => {
                        self.state = Completed;
                        self.last_response = Some(response.clone());
                        self.send(response);
                        if self.out.destination.is_reliable() {
                            self.terminate();
                        } else {
                            self.timer_j = Some(now + self.timers.t1x64());
                        }
                    }
                    _ => {
                        tracing::debug!(code, state = ?self.state, "response ignored by server non-INVITE transaction")
                    }
                }
            }
            Input::Timeout => {
                if self.timer_j.is_some_and(|t| now >= t) {
                    self.terminate();
                }
            }
            Input::TransportError => {
                if self.state != Terminated {
                    self.out.emit(TransactionEvent::TransportError);
                    self.terminate();
                }
            }
        }
    }

    fn send(&mut self, response: Response) {
        self.out.send(SipMessage::Response(response));
    }

    fn terminate(&mut self) {
        self.state = ServerNonInviteState::Terminated;
        self.timer_j = None;
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
        self.timer_j
    }
}
