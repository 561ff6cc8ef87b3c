//! DTMF: RFC 4733 telephone-event payloads, sender and receiver.

pub mod rfc4733;
