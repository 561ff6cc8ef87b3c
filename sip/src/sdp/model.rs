//! The session description as data: every line SIP audio calls use gets a
//! typed field, everything else is kept verbatim so a description survives a
//! parse/serialize round trip without losing what we do not understand.

use std::fmt;
use std::net::IpAddr;

/// A whole session description (RFC 8866 §5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionDescription {
    /// `v=`; always 0 in practice (RFC 8866 §5.1).
    pub version: u32,
    /// `o=`; `None` only when a liberal parse met a description without one.
    pub origin: Option<Origin>,
    /// `s=`; a description without one parses with `None` and is written as
    /// `s=-`, the placeholder RFC 8866 §5.3 recommends.
    pub session_name: Option<String>,
    /// Session-level `c=` (RFC 8866 §5.7).
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines; a description without one is written with `t=0 0`.
    pub timings: Vec<Timing>,
    /// Session-level `a=` lines in their original order.
    pub attributes: Vec<Attribute>,
    /// Other session-level lines (`i=`, `u=`, `e=`, `p=`, `r=`, `z=`, `k=`,
    /// unknown letters), kept verbatim and written back in RFC order.
    pub other_lines: Vec<OtherLine>,
    /// The `m=` sections in order; their count and order matter to offer/answer
    /// (RFC 3264 §6).
    pub media: Vec<MediaDescription>,
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`
/// (RFC 8866 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Username, `-` when there is none.
    pub username: String,
    /// Session id, kept as text: real UAs send ids wider than 64 bits.
    pub session_id: String,
    /// Session version; RFC 3264 §8 increments it for each changed offer.
    pub session_version: u64,
    /// Network type, `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// Address (or host name) of the originator.
    pub address: String,
}

/// `c=<nettype> <addrtype> <connection-address>` (RFC 8866 §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Network type, `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// Address as written, possibly with a multicast `/ttl/count` suffix.
    pub address: String,
}

impl Connection {
    /// A unicast `IN IP4`/`IN IP6` connection for `ip`.
    pub fn new(ip: IpAddr) -> Self {
        Self {
            net_type: "IN".to_owned(),
            addr_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.to_owned(),
            address: ip.to_string(),
        }
    }

    /// The address as an IP, ignoring a multicast suffix; `None` for host
    /// names, which RFC 8866 allows but no SIP trunk uses for media.
    pub fn ip(&self) -> Option<IpAddr> {
        let addr = self.address.split('/').next().unwrap_or_default();
        addr.trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }

    /// Whether this is the RFC 2543 hold address `0.0.0.0` (or its IPv6
    /// twin `::`), which RFC 3264 §8.4 says an answerer must still understand.
    pub fn is_hold_address(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// `b=<bwtype>:<bandwidth>` (RFC 8866 §5.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// `AS`, `CT`, `TIAS`, `RS`, `RR`…
    pub bw_type: String,
    /// The value, kbit/s for `AS`/`CT`, bit/s for `TIAS`.
    pub bandwidth: u64,
}

/// `t=<start-time> <stop-time>` (RFC 8866 §5.9); `0 0` is a permanent session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// NTP start time, 0 for unbounded.
    pub start: u64,
    /// NTP stop time, 0 for unbounded.
    pub stop: u64,
}

/// `a=<name>` or `a=<name>:<value>` (RFC 8866 §5.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute name, e.g. `rtpmap`.
    pub name: String,
    /// Everything after the first `:`, verbatim; `None` for a flag attribute.
    pub value: Option<String>,
}

impl Attribute {
    /// A flag attribute such as `a=rtcp-mux`.
    pub fn flag(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: None,
        }
    }

    /// A valued attribute such as `a=ptime:20`.
    pub fn value(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }
}

/// A line kept verbatim because we have no typed field for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherLine {
    /// The type letter before `=`.
    pub kind: char,
    /// Everything after `=`.
    pub value: String,
}

/// One `m=` section (RFC 8866 §5.14) with its own lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type: `audio`, `video`, `application`, `image`…
    pub media: String,
    /// Transport port; 0 rejects or removes the stream (RFC 3264 §6, §8.2).
    pub port: u16,
    /// The `/<number of ports>` suffix, when present.
    pub port_count: Option<u16>,
    /// Transport protocol: `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, `udptl`…
    pub protocol: String,
    /// Format list; RTP payload type numbers for RTP protocols.
    pub formats: Vec<String>,
    /// Media-level `c=`, overriding the session-level one.
    pub connection: Option<Connection>,
    /// Media-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// Media-level `a=` lines in their original order.
    pub attributes: Vec<Attribute>,
    /// Other media-level lines (`i=`, `k=`, unknown letters), kept verbatim.
    pub other_lines: Vec<OtherLine>,
}

/// Media direction attributes (RFC 8866 §6.7, RFC 3264 §5.1), always from the
/// point of view of whoever wrote the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// `a=sendrecv`, the default when none is given.
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction for an attribute name, if it is one.
    pub fn from_attribute(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// Built from whether the writer sends and receives.
    pub fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether the writer sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the writer receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same stream seen from the other end: sendonly becomes recvonly.
    pub fn reversed(self) -> Self {
        Direction::from_flags(self.receives(), self.sends())
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`
/// (RFC 8866 §6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// RTP payload type number.
    pub payload_type: u8,
    /// Encoding name as written (`PCMU`, `opus`, `telephone-event`…);
    /// compare case-insensitively (RFC 4855 §3).
    pub encoding: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count for audio, when given.
    pub channels: Option<u16>,
}

impl RtpMap {
    /// Parses the value of an `a=rtpmap:` attribute.
    pub fn parse(value: &str) -> Option<Self> {
        let (pt, rest) = value.trim().split_once(char::is_whitespace)?;
        let payload_type: u8 = pt.parse().ok().filter(|pt| *pt <= 127)?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next()?.trim();
        if encoding.is_empty() {
            return None;
        }
        let clock_rate = parts.next()?.trim().parse().ok()?;
        let channels = match parts.next() {
            Some(c) => Some(c.trim().parse().ok()?),
            None => None,
        };
        Some(Self {
            payload_type,
            encoding: encoding.to_owned(),
            clock_rate,
            channels,
        })
    }

    /// The attribute value, e.g. `96 opus/48000/2`.
    pub fn to_value(&self) -> String {
        match self.channels {
            Some(c) => format!(
                "{} {}/{}/{}",
                self.payload_type, self.encoding, self.clock_rate, c
            ),
            None => format!(
                "{} {}/{}",
                self.payload_type, self.encoding, self.clock_rate
            ),
        }
    }
}

/// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttribute {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address, when it differs from the `c=` one.
    pub connection: Option<Connection>,
}

impl RtcpAttribute {
    /// Parses the value of an `a=rtcp:` attribute.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split_whitespace();
        let port = parts.next()?.parse().ok()?;
        let connection = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(a), Some(addr)) => Some(Connection {
                net_type: n.to_owned(),
                addr_type: a.to_owned(),
                address: addr.to_owned(),
            }),
            _ => None,
        };
        Some(Self { port, connection })
    }
}

/// Looks an attribute up by name, case-insensitively (RFC 8866 §5.13 names
/// are case-sensitive, but real UAs send `a=SendRecv` and `a=PTime`).
fn find<'a>(attrs: &'a [Attribute], name: &str) -> impl Iterator<Item = &'a Attribute> {
    attrs
        .iter()
        .filter(move |a| a.name.eq_ignore_ascii_case(name))
}

/// The last direction attribute in a list: when a confused UA sends two, the
/// later one is what it meant most recently.
fn direction_in(attrs: &[Attribute]) -> Option<Direction> {
    attrs
        .iter()
        .rev()
        .find_map(|a| Direction::from_attribute(&a.name))
}

impl SessionDescription {
    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// The first session-level attribute of that name.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        find(&self.attributes, name).next()
    }

    /// The connection in force for media section `index`: its own `c=`, else
    /// the session-level one (RFC 8866 §5.7).
    pub fn connection_for(&self, index: usize) -> Option<&Connection> {
        self.media
            .get(index)
            .and_then(|m| m.connection.as_ref())
            .or(self.connection.as_ref())
    }

    /// The direction in force for media section `index`: its own attribute,
    /// else the session-level one, else sendrecv (RFC 3264 §5.1).
    pub fn direction_for(&self, index: usize) -> Direction {
        self.media
            .get(index)
            .and_then(MediaDescription::direction)
            .or_else(|| self.direction())
            .unwrap_or_default()
    }
}

impl MediaDescription {
    /// A media section with no attributes.
    pub fn new(media: &str, port: u16, protocol: &str, formats: Vec<String>) -> Self {
        Self {
            media: media.to_owned(),
            port,
            port_count: None,
            protocol: protocol.to_owned(),
            formats,
            connection: None,
            bandwidths: Vec::new(),
            attributes: Vec::new(),
            other_lines: Vec::new(),
        }
    }

    /// The first attribute of that name.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        find(&self.attributes, name).next()
    }

    /// Whether a flag or valued attribute of that name is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }

    /// The media-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// All well-formed `a=rtpmap` lines; malformed ones are skipped.
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap> + '_ {
        find(&self.attributes, "rtpmap").filter_map(|a| RtpMap::parse(a.value.as_deref()?))
    }

    /// The `a=rtpmap` for a payload type.
    pub fn rtpmap(&self, payload_type: u8) -> Option<RtpMap> {
        self.rtpmaps().find(|m| m.payload_type == payload_type)
    }

    /// The `a=fmtp` parameters for a payload type, verbatim.
    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        find(&self.attributes, "fmtp").find_map(|a| {
            let (pt, params) = a.value.as_deref()?.trim_start().split_once(' ')?;
            (pt.parse::<u8>().ok()? == payload_type).then_some(params.trim())
        })
    }

    fn number(&self, name: &str) -> Option<u32> {
        let v = self.attribute(name)?.value.as_deref()?.trim();
        // Some UAs write fractional ptimes ("20.0"); the integer part is meant.
        v.split('.').next()?.parse().ok()
    }

    /// `a=ptime` in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.number("ptime")
    }

    /// `a=maxptime` in milliseconds.
    pub fn maxptime(&self) -> Option<u32> {
        self.number("maxptime")
    }

    /// `a=rtcp` (RFC 3605).
    pub fn rtcp(&self) -> Option<RtcpAttribute> {
        RtcpAttribute::parse(self.attribute("rtcp")?.value.as_deref()?)
    }

    /// Whether `a=rtcp-mux` (RFC 5761) is present.
    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    /// `a=label` (RFC 4574).
    pub fn label(&self) -> Option<&str> {
        self.attribute("label")?.value.as_deref()
    }

    /// The format list as RTP payload types, skipping non-numeric formats.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok().filter(|pt| *pt <= 127))
    }

    /// Replaces any direction attribute with `dir`.
    pub fn set_direction(&mut self, dir: Direction) {
        self.attributes
            .retain(|a| Direction::from_attribute(&a.name).is_none());
        self.attributes.push(Attribute::flag(dir.as_str()));
    }
}
