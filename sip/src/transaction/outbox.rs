//! What a transaction has queued for the layer above: messages for its one
//! destination, and events for the transaction user. Every state machine
//! keeps one, so the four machines share their output plumbing.

use std::collections::VecDeque;

use rsip::SipMessage;

use super::{Destination, TransactionEvent, Transmit};

#[derive(Debug)]
pub(crate) struct Outbox {
    /// Where this transaction's messages go.
    pub(crate) destination: Destination,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TransactionEvent>,
}

impl Outbox {
    pub(crate) fn new(destination: Destination) -> Self {
        Outbox {
            destination,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub(crate) fn send(&mut self, message: SipMessage) {
        self.transmits.push_back(Transmit {
            message,
            destination: self.destination,
        });
    }

    pub(crate) fn emit(&mut self, event: TransactionEvent) {
        self.events.push_back(event);
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.events.pop_front()
    }
}
