//! Our own reading of a Via value, and RFC 3581 `received`/`rport`.
//!
//! rsip's typed Via splits host and port at the first `:`, which breaks on
//! IPv6 sent-by (`[2001:db8::1]:5060`, RFC 5118), so Via is read here.

use super::scan::{is_token_char, split_list};
use rsip::prelude::*;
use std::net::{IpAddr, SocketAddr};

/// One via-parm (RFC 3261 §20.42): `SIP/2.0/UDP host:port;params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViaInfo {
    /// The transport token, upper-cased (`UDP`, `TCP`, `TLS`, `WS`…).
    pub transport: String,
    /// The sent-by host, without IPv6 brackets.
    pub host: String,
    /// The sent-by port, if given.
    pub port: Option<u16>,
    /// Parameters in order, names as written, values unquoted.
    pub params: Vec<(String, Option<String>)>,
}

impl ViaInfo {
    /// Reads the first via-parm of a Via header value; `None` if it is not
    /// `SIP/2.0/<transport> <sent-by>`.
    pub fn parse(value: &str) -> Option<ViaInfo> {
        let first = *split_list(value).first()?;
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport,
        // where SLASH allows whitespace around it (§25.1).
        let mut rest = first;
        let mut parts = Vec::with_capacity(3);
        for i in 0..3 {
            rest = rest.trim_start();
            let end = if i < 2 {
                rest.find('/')?
            } else {
                rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len())
            };
            parts.push(rest[..end].trim());
            rest = if i < 2 {
                &rest[end + 1..]
            } else {
                &rest[end..]
            };
        }
        if !parts[0].eq_ignore_ascii_case("SIP") || parts[1] != "2.0" {
            return None;
        }
        if parts[2].is_empty() || !parts[2].bytes().all(is_token_char) {
            return None;
        }
        let rest = rest.trim_start();
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (rest[..i].trim(), &rest[i..]),
            None => (rest.trim(), ""),
        };
        let (host, port) = split_host_port(sent_by)?;
        let params = params
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((n, v)) => (
                    n.trim().to_string(),
                    Some(v.trim().trim_matches('"').to_string()),
                ),
                None => (p.to_string(), None),
            })
            .collect();
        Some(ViaInfo {
            transport: parts[2].to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }

    /// A parameter's value: `None` if absent, `Some(None)` if present
    /// without a value (as a bare `rport`).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// The `received` parameter as an IP address.
    pub fn received(&self) -> Option<IpAddr> {
        parse_ip(self.param("received").flatten()?)
    }

    /// The `rport` parameter's port, when it has a value.
    pub fn rport(&self) -> Option<u16> {
        self.param("rport").flatten()?.parse().ok()
    }

    /// The sent-by as written, `host[:port]` with brackets for IPv6.
    pub fn sent_by(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }

    /// Writes the via-parm back out.
    pub fn to_value(&self) -> String {
        let mut s = format!("SIP/2.0/{} {}", self.transport, self.sent_by());
        for (n, v) in &self.params {
            s.push(';');
            s.push_str(n);
            if let Some(v) = v {
                s.push('=');
                s.push_str(v);
            }
        }
        s
    }

    fn set_param(&mut self, name: &str, value: String) {
        match self
            .params
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(p) => p.1 = Some(value),
            None => self.params.push((name.to_string(), Some(value))),
        }
    }

    /// The default port for this Via's transport (§18.2.2, §19.1.2).
    fn default_port(&self) -> u16 {
        if self.transport == "TLS" || self.transport == "WSS" {
            5061
        } else {
            5060
        }
    }
}

/// Splits `host[:port]`, accepting bracketed IPv6 references.
pub(crate) fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.trim().parse().ok()?),
            None if after.trim().is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        // A bare IPv6 address without brackets (not legal, but seen).
        Some((h, _)) if h.contains(':') => Some((s.to_string(), None)),
        Some((h, p)) => Some((h.trim().to_string(), Some(p.trim().parse().ok()?))),
        None => Some((s.to_string(), None)),
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

fn top_via_value<H: HasHeaders>(msg: &H) -> Option<&str> {
    msg.headers().iter().find_map(|h| match h {
        rsip::Header::Via(v) => Some(v.value()),
        _ => None,
    })
}

/// The topmost Via of a message, read with [`ViaInfo::parse`].
pub fn top_via<H: HasHeaders>(msg: &H) -> Option<ViaInfo> {
    ViaInfo::parse(top_via_value(msg)?)
}

/// RFC 3261 §18.2.1 and RFC 3581 §4 on a received request: adds
/// `received=<source IP>` when the top Via's sent-by host is not that IP,
/// and, when the top Via carries an empty `rport`, fills it with the source
/// port and adds `received` even if the host matches (RFC 3581 §4 requires
/// both). Returns `false`, leaving the request alone, when there is no top
/// Via we can read.
pub fn apply_received(request: &mut rsip::Request, source: SocketAddr) -> bool {
    let Some(header) = request.headers.iter_mut().find_map(|h| match h {
        rsip::Header::Via(v) => Some(v),
        _ => None,
    }) else {
        return false;
    };
    let value = header.value().to_string();
    let Some(mut via) = ViaInfo::parse(&value) else {
        return false;
    };
    let wants_rport = matches!(via.param("rport"), Some(None));
    let host_matches = parse_ip(&via.host) == Some(source.ip());
    if !host_matches || wants_rport {
        via.set_param("received", source.ip().to_string());
    }
    if wants_rport {
        via.set_param("rport", source.port().to_string());
    }
    // Keep any further comma-joined via-parms that followed the first.
    let rest: Vec<&str> = split_list(&value).into_iter().skip(1).collect();
    let mut new_value = via.to_value();
    for r in rest {
        new_value.push_str(", ");
        new_value.push_str(r);
    }
    header.replace(new_value);
    true
}

/// Where to send a response over an unreliable transport, from its top Via
/// (RFC 3261 §18.2.2 with RFC 3581 §4): the `received` address if present
/// (else the sent-by host, which must then be an IP literal, since this
/// module does no DNS), and the `rport` port if present, else the sent-by
/// port, else the transport's default (5060, 5061 for TLS). `maddr`
/// (multicast) is not supported. For TCP/TLS the transport should first try
/// the connection the request arrived on (§18.2.2); this address is the
/// fallback.
pub fn response_destination(response: &rsip::Response) -> Option<SocketAddr> {
    let via = top_via(response)?;
    let ip = match via.received() {
        Some(ip) => ip,
        None => parse_ip(&via.host)?,
    };
    let port = via
        .rport()
        .or(via.port)
        .unwrap_or_else(|| via.default_port());
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv6_and_spacing() {
        let v =
            ViaInfo::parse("SIP / 2.0 / tcp [2001:db8::1]:5070 ;branch=z9hG4bKx;rport").unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.host, "2001:db8::1");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.branch(), Some("z9hG4bKx"));
        assert_eq!(v.param("rport"), Some(None));
        assert_eq!(v.sent_by(), "[2001:db8::1]:5070");
    }

    #[test]
    fn rejects_garbage() {
        assert!(ViaInfo::parse("").is_none());
        assert!(ViaInfo::parse("SIP/2.0/UDP").is_none());
        assert!(ViaInfo::parse("HTTP/1.1/UDP a").is_none());
        assert!(ViaInfo::parse("SIP/2.0/UDP a:99999").is_none());
    }
}
