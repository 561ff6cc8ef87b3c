//! Addresses: what we advertise in Via, Contact and SDP, where requests
//! go, and the conversions between the transaction layer's abstract
//! destinations and the transport's sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hotline_sip::transaction::{Destination, Transmit};
use hotline_sip::transport::{ConnectionId, Incoming, Outgoing, Transport};
use rsip::host_with_port::Host;

/// The local address the kernel would use to reach `peer`. Connecting a
/// UDP socket only selects a route; no packet is sent.
pub fn local_ip_for(peer: IpAddr) -> Option<IpAddr> {
    let bind: SocketAddr = match peer {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = std::net::UdpSocket::bind(bind).ok()?;
    sock.connect((peer, 9)).ok()?;
    sock.local_addr().ok().map(|a| a.ip())
}

/// The address to write where the peer must reach us: the configured
/// public address, else the bound one, else (bound to a wildcard) the
/// address our route to the peer leaves from.
pub fn advertised_ip(public: Option<IpAddr>, bound: IpAddr, peer: IpAddr) -> IpAddr {
    if let Some(p) = public {
        return p;
    }
    if !bound.is_unspecified() {
        return bound;
    }
    local_ip_for(peer).unwrap_or(if peer.is_ipv6() {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    })
}

/// `host` in a URI: IPv6 addresses get brackets.
pub fn uri_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The transaction layer's view of where a message came from.
pub fn source_of(incoming: &Incoming) -> Destination {
    match incoming.transport {
        Transport::Udp => Destination::udp(incoming.source),
        t => Destination::reliable(
            incoming.source,
            rsip_transport(t),
            incoming.connection.map(|c| c.0),
        ),
    }
}

/// The transport's view of a message the layer wants sent.
pub fn outgoing(t: &Transmit, bytes: bytes::Bytes) -> Outgoing {
    Outgoing {
        bytes,
        destination: t.destination.addr,
        transport: transport_of(t.destination.transport),
        connection: t.destination.connection.map(ConnectionId),
    }
}

/// rsip's transport token for ours.
pub fn rsip_transport(t: Transport) -> rsip::Transport {
    match t {
        Transport::Udp => rsip::Transport::Udp,
        Transport::Tcp => rsip::Transport::Tcp,
        Transport::Tls => rsip::Transport::Tls,
    }
}

/// Our transport for rsip's token; anything we do not speak maps to UDP,
/// which the send then reports as unsupported only for TLS.
pub fn transport_of(t: rsip::Transport) -> Transport {
    match t {
        rsip::Transport::Tcp => Transport::Tcp,
        rsip::Transport::Tls | rsip::Transport::TlsSctp | rsip::Transport::Wss => Transport::Tls,
        _ => Transport::Udp,
    }
}

/// The transport a configured trunk (`transport = "udp"`…) names.
pub fn configured(t: crate::config::SipTransport) -> Transport {
    match t {
        crate::config::SipTransport::Udp => Transport::Udp,
        crate::config::SipTransport::Tcp => Transport::Tcp,
        crate::config::SipTransport::Tls => Transport::Tls,
    }
}

/// Why a request target could not be turned into an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// DNS gave nothing for the host.
    #[error("cannot resolve {0}")]
    NotFound(String),
}

/// Where a request for `uri` goes (RFC 3263, simplified): the URI's host
/// and port (5060 by default) over its `transport` parameter or
/// `default_transport`. Host names resolve through the system resolver;
/// SRV and NAPTR lookups are not done, so a trunk must be given as an
/// address or a name with A/AAAA records and an explicit port if not 5060.
pub async fn resolve(
    uri: &rsip::Uri,
    default_transport: Transport,
) -> Result<Destination, ResolveError> {
    let transport = uri
        .params
        .iter()
        .find_map(|p| match p {
            rsip::Param::Transport(t) => Some(transport_of(*t)),
            _ => None,
        })
        .unwrap_or(default_transport);
    let port = uri.host_with_port.port.map(|p| *p.value()).unwrap_or(5060);
    let addr = match &uri.host_with_port.host {
        Host::IpAddr(ip) => SocketAddr::new(*ip, port),
        Host::Domain(d) => {
            let name = d.to_string();
            tokio::net::lookup_host((name.as_str(), port))
                .await
                .ok()
                .and_then(|mut it| it.next())
                .ok_or(ResolveError::NotFound(name))?
        }
    };
    Ok(match transport {
        Transport::Udp => Destination::udp(addr),
        t => Destination::reliable(addr, rsip_transport(t), None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_ip_uris_with_port_and_transport() {
        let uri = rsip::Uri::try_from("sip:alice@127.0.0.1:5070;transport=tcp").unwrap();
        let d = resolve(&uri, Transport::Udp).await.unwrap();
        assert_eq!(d.addr, "127.0.0.1:5070".parse().unwrap());
        assert!(d.is_reliable());
        let uri = rsip::Uri::try_from("sip:bob@10.0.0.1").unwrap();
        let d = resolve(&uri, Transport::Udp).await.unwrap();
        assert_eq!(d.addr, "10.0.0.1:5060".parse().unwrap());
        assert!(!d.is_reliable());
        let uri = rsip::Uri::try_from("sip:bob@localhost:5999").unwrap();
        let d = resolve(&uri, Transport::Udp).await.unwrap();
        assert_eq!(d.addr.port(), 5999);
    }

    #[test]
    fn advertises_public_then_bound_then_route() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let public: IpAddr = "203.0.113.5".parse().unwrap();
        assert_eq!(advertised_ip(Some(public), lo, lo), public);
        assert_eq!(advertised_ip(None, lo, "10.1.1.1".parse().unwrap()), lo);
        assert_eq!(advertised_ip(None, "0.0.0.0".parse().unwrap(), lo), lo);
        assert_eq!(uri_host("::1".parse().unwrap()), "[::1]");
    }
}
