//! Client INVITE transaction (§17.1.1, RFC 6026 §7.2 and §8.4).

use std::time::{Duration, Instant};

use rsip::{Request, Response, SipMessage};

use super::build::build_ack;
use super::outbox::Outbox;
use super::{Destination, Input, Timers, TransactionEvent, Transmit};
use crate::message;

/// States of Figure 5, with RFC 6026's Accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    /// INVITE sent, nothing heard yet; Timers A and B run.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A non-2xx final arrived and was ACKed; Timer D absorbs retransmissions.
    Completed,
    /// A 2xx arrived; Timer M passes 2xx retransmissions to the TU.
    Accepted,
    /// Done.
    Terminated,
}

/// A client INVITE transaction.
#[derive(Debug)]
pub struct ClientInvite {
    state: ClientInviteState,
    request: Request,
    out: Outbox,
    timers: Timers,
    ack: Option<Request>,
    timer_a: Option<(Instant, Duration)>,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    timer_m: Option<Instant>,
    /// §9.1: 64·T1 after a CANCEL, give up on a final response.
    timer_cancel: Option<Instant>,
}

impl ClientInvite {
    /// Starts the transaction: the INVITE goes out at once, Timer A (UDP
    /// only) and Timer B are set (§17.1.1.2).
    pub fn new(request: Request, destination: Destination, timers: Timers, now: Instant) -> Self {
        let reliable = destination.is_reliable();
        let mut tx = ClientInvite {
            state: ClientInviteState::Calling,
            request,
            out: Outbox::new(destination),
            timers,
            ack: None,
            timer_a: (!reliable).then(|| (now + timers.t1, timers.t1)),
            timer_b: Some(now + timers.t1x64()),
            timer_d: None,
            timer_m: None,
            timer_cancel: None,
        };
        tx.send(SipMessage::Request(tx.request.clone()));
        tx
    }

    /// Current state.
    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// The INVITE this transaction carries.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Where the INVITE goes.
    pub fn destination(&self) -> Destination {
        self.out.destination
    }

    /// Records that a CANCEL for this INVITE went out: if no final response
    /// arrives within 64·T1, the transaction ends with a
    /// [`TransactionEvent::Timeout`] (§9.1), so a UAS that never sends 487
    /// can't keep it in Proceeding forever.
    pub fn cancel_sent(&mut self, now: Instant) {
        if matches!(
            self.state,
            ClientInviteState::Calling | ClientInviteState::Proceeding
        ) && self.timer_cancel.is_none()
        {
            self.timer_cancel = Some(now + self.timers.t1x64());
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Message(SipMessage::Response(response)) => self.on_response(response, now),
            Input::Message(SipMessage::Request(_)) | Input::Respond(_) => {}
            Input::Timeout => self.on_timeout(now),
            Input::TransportError => {
                // §17.1.4: inform the TU, terminate.
                if self.state != ClientInviteState::Terminated {
                    self.out.emit(TransactionEvent::TransportError);
                    self.terminate();
                }
            }
        }
    }

    fn on_response(&mut self, response: Response, now: Instant) {
        let code = response.status_code.code();
        use ClientInviteState::*;
        match (self.state, code) {
            (Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.timer_a = None;
                self.timer_b = None;
                self.out.emit(TransactionEvent::Response(response));
            }
            (Calling | Proceeding, 200..=299) => {
                // RFC 6026 §8.4: Accepted, not Terminated.
                self.state = Accepted;
                self.timer_cancel = None;
                self.timer_a = None;
                self.timer_b = None;
                self.timer_m = Some(now + self.timers.t1x64());
                self.out.emit(TransactionEvent::Response(response));
            }
            (Calling | Proceeding, 300..=699) => {
                self.state = Completed;
                self.timer_cancel = None;
                self.timer_a = None;
                self.timer_b = None;
                match build_ack(&self.request, &response) {
                    Ok(ack) => {
                        self.send(SipMessage::Request(ack.clone()));
                        self.ack = Some(ack);
                    }
                    // A final response without To can't be ACKed; its
                    // retransmissions are still absorbed by Completed.
                    Err(e) => tracing::debug!(error = %e, "cannot build ACK"),
                }
                self.out.emit(TransactionEvent::Response(response));
                let d = self.timers.timer_d(self.out.destination.is_reliable());
                if d.is_zero() {
                    self.terminate();
                } else {
                    self.timer_d = Some(now + d);
                }
            }
            (Completed, 300..=699) => {
                if let Some(ack) = self.ack.clone() {
                    self.send(SipMessage::Request(ack));
                }
            }
            (Accepted, 200..=299) => {
                self.out.emit(TransactionEvent::Response(response));
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        if let Some((at, interval)) = self.timer_a
            && now >= at
            && self.state == ClientInviteState::Calling
        {
            // Timer A doubles without a cap for INVITE (§17.1.1.2).
            let next = interval * 2;
            self.timer_a = Some((at + next, next));
            self.send(SipMessage::Request(self.request.clone()));
        }
        if self.timer_b.is_some_and(|t| now >= t) || self.timer_cancel.is_some_and(|t| now >= t) {
            let timeout = message::response(&self.request, 408, None, None);
            self.out.emit(TransactionEvent::Timeout(timeout));
            self.terminate();
        }
        if self.timer_d.is_some_and(|t| now >= t) || self.timer_m.is_some_and(|t| now >= t) {
            self.terminate();
        }
    }

    fn send(&mut self, message: SipMessage) {
        self.out.send(message);
    }

    fn terminate(&mut self) {
        self.state = ClientInviteState::Terminated;
        self.timer_a = None;
        self.timer_b = None;
        self.timer_d = None;
        self.timer_m = None;
        self.timer_cancel = None;
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
            self.timer_a.map(|(t, _)| t),
            self.timer_b,
            self.timer_d,
            self.timer_m,
            self.timer_cancel,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
