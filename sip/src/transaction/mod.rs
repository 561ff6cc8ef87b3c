//! RFC 3261 §17 transactions as sans-IO state machines.
//!
//! Four machines — [`ClientInvite`], [`ClientNonInvite`], [`ServerInvite`],
//! [`ServerNonInvite`] — each take an [`Input`] and the current time and
//! expose what to do next through `poll_transmit`, `poll_timeout` and
//! `poll_event`, in the manner of quinn-proto. They never read the clock or
//! touch a socket: the driver calls `handle(Input::Timeout, now)` once `now`
//! reaches `poll_timeout()`.
//!
//! The [`TransactionLayer`] owns the table of transactions, matches incoming
//! messages to them (§17.1.3, §17.2.3), answers CANCEL (§9.2), detects merged
//! requests (§8.2.2.2), multiplexes the timers and collects terminated
//! transactions.
//!
//! The INVITE machines follow RFC 6026: a 2xx moves both sides into an
//! "Accepted" state (Timers L and M) instead of terminating, so that 2xx
//! retransmissions reach the TU on the client side and retransmitted INVITEs
//! are absorbed on the server side. Retransmitting the 2xx and its ACK is the
//! dialog layer's job (§13.3.1.4, §13.2.2.4), not the transaction's.
//!
//! Timer C (§16.6, proxies only) is not implemented: Hotline is a user agent.

mod build;
mod client_invite;
mod client_non_invite;
mod key;
mod layer;
mod outbox;
mod server_invite;
mod server_non_invite;

pub use build::{build_ack, build_cancel};
pub use client_invite::{ClientInvite, ClientInviteState};
pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use key::{Role, TransactionKey};
pub use layer::{LayerEvent, TransactionLayer};
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerNonInviteState};

use std::net::SocketAddr;
use std::time::Duration;

/// RFC 3261 Table 4 timer bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// T1, the RTT estimate: 500 ms by default (§17.1.1.1).
    pub t1: Duration,
    /// T2, the cap on non-INVITE request and INVITE response retransmission
    /// intervals: 4 s by default.
    pub t2: Duration,
    /// T4, the longest time a message stays in the network: 5 s by default.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64·T1: Timers B, F, H, J (unreliable), and RFC 6026's L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: "at least 32 seconds" for unreliable transports, 0 for
    /// reliable ones (§17.1.1.2).
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32).max(self.t1x64())
        }
    }
}

/// When the server INVITE transaction sends 100 Trying on its own.
///
/// §17.2.1: the transaction MUST send 100 Trying unless it knows the TU will
/// send a provisional or final response within 200 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryingPolicy {
    /// Send 100 Trying as soon as the INVITE arrives.
    Immediately,
    /// Send 100 Trying if the TU hasn't responded within this delay.
    After(Duration),
    /// Never: the TU promises to respond within 200 ms itself.
    Never,
}

/// Transaction behaviour knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// T1, T2, T4.
    pub timers: Timers,
    /// Automatic 100 Trying for server INVITE transactions.
    pub trying: TryingPolicy,
    /// Upper bound on live server transactions; beyond it new requests get
    /// 503 Service Unavailable without creating state.
    pub max_server_transactions: usize,
    /// Upper bound on live client transactions; beyond it
    /// [`TransactionLayer::send_request`] fails.
    pub max_client_transactions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timers: Timers::default(),
            trying: TryingPolicy::After(Duration::from_millis(200)),
            max_server_transactions: 10_000,
            max_client_transactions: 10_000,
        }
    }
}

/// Where a message goes (or came from), kept abstract: the transport driver
/// resolves it to a socket or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Destination {
    /// Remote address.
    pub addr: SocketAddr,
    /// Transport protocol; anything but UDP is reliable and disables
    /// retransmissions (§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).
    pub transport: rsip::Transport,
    /// Opaque connection id for connection-oriented transports, so responses
    /// go back on the connection the request came in on (§18.2.2).
    pub connection: Option<u64>,
}

impl Destination {
    /// A UDP destination.
    pub fn udp(addr: SocketAddr) -> Self {
        Destination {
            addr,
            transport: rsip::Transport::Udp,
            connection: None,
        }
    }

    /// A destination on a reliable transport.
    pub fn reliable(addr: SocketAddr, transport: rsip::Transport, connection: Option<u64>) -> Self {
        Destination {
            addr,
            transport,
            connection,
        }
    }

    /// Whether the transport is reliable (TCP, TLS, SCTP, WebSocket).
    pub fn is_reliable(&self) -> bool {
        !matches!(self.transport, rsip::Transport::Udp)
    }
}

/// A message to hand to the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The message to send.
    pub message: rsip::SipMessage,
    /// Where to send it.
    pub destination: Destination,
}

/// Input to a transaction state machine.
#[derive(Debug, Clone)]
pub enum Input {
    /// A message from the network that matched this transaction.
    Message(rsip::SipMessage),
    /// The TU asks a server transaction to send this response.
    Respond(rsip::Response),
    /// `now` has reached the transaction's `poll_timeout()`.
    Timeout,
    /// The transport failed to deliver a message of this transaction
    /// (§17.1.4, §17.2.4).
    TransportError,
}

/// What a transaction reports to the TU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionEvent {
    /// Server transactions: a new request for the TU (delivered once, never for
    /// retransmissions).
    Request(rsip::Request),
    /// Client transactions: a response for the TU.
    Response(rsip::Response),
    /// Client transactions: Timer B or F fired; carries the 408 Request
    /// Timeout the TU should treat as received (§8.1.3.1).
    Timeout(rsip::Response),
    /// Server INVITE transaction: Timer H fired, the ACK for a non-2xx final
    /// response never came (§17.2.1).
    AckTimeout,
    /// Server INVITE transaction in the Accepted state received an ACK that
    /// matched it: it belongs to the TU (RFC 6026 §8.7).
    AckFor2xx(rsip::Request),
    /// The transport could not deliver a message (§17.1.4, §17.2.4).
    TransportError,
    /// The transaction is over; the layer forgets it.
    Terminated,
}

/// Errors from the transaction layer's TU-facing calls.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The message lacks a header the transaction needs.
    #[error("missing or malformed {0} header")]
    Header(&'static str),
    /// No transaction with this key.
    #[error("no such transaction")]
    NoTransaction,
    /// The operation doesn't fit the transaction's kind or state.
    #[error("invalid for this transaction: {0}")]
    InvalidState(&'static str),
    /// The table bound was reached.
    #[error("too many transactions")]
    TooManyTransactions,
}
