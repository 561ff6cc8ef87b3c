//! The thin tokio driver under the sans-IO SIP layers: UDP and TCP
//! listeners, outbound TCP connections, RFC 5626 CRLF keep-alive. No SIP
//! logic beyond framing lives here; messages go up as raw [`Incoming`]
//! bytes and come down as raw [`Outgoing`] bytes.
//!
//! Received messages are delivered over a bounded channel: when the layer
//! above falls behind, new messages are dropped and counted
//! ([`SipTransport::dropped`]) instead of blocking the socket loops, which
//! is also what SIP over UDP would do and what retransmissions recover.

mod driver;
mod stream;

pub use driver::SipTransport;

use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Duration;

/// The transport protocol of a message or listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// SIP over UDP (RFC 3261 §18).
    Udp,
    /// SIP over TCP (RFC 3261 §18.3 framing).
    Tcp,
    /// SIP over TLS (RFC 3261 §26.2): not implemented yet; the connection
    /// code is generic over the stream type so a TLS stream slots in.
    Tls,
}

impl Transport {
    /// The Via transport token (§20.42).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// A stream connection, as named in the connection table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub u64);

/// A message received from the network.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// One datagram, or one framed stream message.
    pub bytes: Bytes,
    /// The peer's address (RFC 3581 `received`/`rport` come from here).
    pub source: SocketAddr,
    /// The transport it arrived on.
    pub transport: Transport,
    /// Our local address it arrived at.
    pub local: SocketAddr,
    /// The connection, for stream transports: responses go back on it
    /// (§18.2.2).
    pub connection: Option<ConnectionId>,
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The serialised message.
    pub bytes: Bytes,
    /// Where to send it (used when `connection` is absent or gone).
    pub destination: SocketAddr,
    /// The transport to use.
    pub transport: Transport,
    /// Prefer this connection (a response to a stream request).
    pub connection: Option<ConnectionId>,
}

/// Transport configuration.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// UDP listen address (port 0 picks one).
    pub udp: Option<SocketAddr>,
    /// TCP listen address (port 0 picks one).
    pub tcp: Option<SocketAddr>,
    /// The host to advertise in Via/Contact instead of the listen IP, for
    /// a server behind NAT or bound to `0.0.0.0`.
    pub public_host: Option<String>,
    /// The port to advertise instead of the bound one (port forwarding).
    pub public_port: Option<u16>,
    /// Capacity of the channel of received messages.
    pub queue_capacity: usize,
    /// How long to wait for an outbound TCP connect.
    pub connect_timeout: Duration,
    /// A stream connection that receives nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Largest message accepted on a stream.
    pub max_message_size: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            udp: None,
            tcp: None,
            public_host: None,
            public_port: None,
            queue_capacity: 1024,
            connect_timeout: Duration::from_secs(5),
            // RFC 5626 §4.4.1 suggests keep-alives every ~2 minutes on
            // streams, so an idle limit above that keeps live flows open.
            idle_timeout: Duration::from_secs(300),
            max_message_size: crate::message::MAX_MESSAGE_SIZE,
        }
    }
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No listener/socket is configured for that transport.
    #[error("{0:?} transport is not configured")]
    NotBound(Transport),
    /// The transport exists in the API but is not implemented (TLS).
    #[error("{0:?} transport is not implemented")]
    Unsupported(Transport),
    /// The outbound TCP connect did not finish in time.
    #[error("connect to {0} timed out")]
    ConnectTimeout(SocketAddr),
    /// The connection's write queue is full (a stuck peer).
    #[error("connection write queue is full")]
    QueueFull,
    /// The connection closed before the message could be queued.
    #[error("connection closed")]
    Closed,
    /// A socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
