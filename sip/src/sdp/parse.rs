//! A tolerant SDP parser. RFC 8866 §5 fixes a line order and CRLF endings,
//! but real user agents send bare LF, trailing blanks, `t=` after `a=`, or
//! no `s=`/`t=` at all; we accept all of that and fail only on lines whose
//! meaning we cannot recover (a broken `m=`, `c=` or `o=`), because guessing
//! there would send media to the wrong place.

use super::model::{
    Attribute, Bandwidth, Connection, MediaDescription, Origin, OtherLine, SessionDescription,
    Timing,
};

/// Why a session description could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpParseError {
    /// The body has no lines at all.
    #[error("empty session description")]
    Empty,
    /// A line is not of the form `<letter>=<value>`.
    #[error("line {line}: not a `<type>=<value>` line")]
    NotALine {
        /// 1-based line number.
        line: usize,
    },
    /// A line's value does not have the syntax its type requires.
    #[error("line {line}: malformed `{kind}=` line")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// The line's type letter.
        kind: char,
    },
}

impl std::str::FromStr for SessionDescription {
    type Err = SdpParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_str(s)
    }
}

impl SessionDescription {
    /// Parses a body as received off the network. Invalid UTF-8 is replaced
    /// rather than rejected: it can only occur in free-text fields.
    pub fn parse(body: &[u8]) -> Result<Self, SdpParseError> {
        parse_str(&String::from_utf8_lossy(body))
    }
}

fn parse_str(text: &str) -> Result<SessionDescription, SdpParseError> {
    let mut sdp = SessionDescription::default();
    let mut seen_any = false;
    for (index, raw) in text.split('\n').enumerate() {
        let line_no = index + 1;
        // Trailing CR, blanks and NULs come from CRLF endings, sloppy
        // templates and C strings; none of them is ever significant.
        let line = raw.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if line.is_empty() {
            continue;
        }
        let mut chars = line.chars();
        let (Some(kind), Some('=')) = (chars.next(), chars.next()) else {
            return Err(SdpParseError::NotALine { line: line_no });
        };
        if !kind.is_ascii_alphabetic() {
            return Err(SdpParseError::NotALine { line: line_no });
        }
        let value = line[kind.len_utf8() + 1..].trim();
        let malformed = || SdpParseError::Malformed {
            line: line_no,
            kind,
        };
        seen_any = true;
        match kind {
            // v, o, s and t exist only at session level, so wherever they
            // appear they belong to the session.
            'v' => sdp.version = value.parse().map_err(|_| malformed())?,
            'o' => sdp.origin = Some(parse_origin(value).ok_or_else(malformed)?),
            's' => sdp.session_name = Some(value.to_owned()),
            't' => sdp.timings.push(parse_timing(value).ok_or_else(malformed)?),
            'm' => sdp.media.push(parse_media(value).ok_or_else(malformed)?),
            'c' => {
                let c = parse_connection(value).ok_or_else(malformed)?;
                match sdp.media.last_mut() {
                    // A second `c=` in one section is multicast layering we
                    // do not use; the first is the one that carries unicast.
                    Some(m) => {
                        m.connection.get_or_insert(c);
                    }
                    None => {
                        sdp.connection.get_or_insert(c);
                    }
                }
            }
            'b' => {
                let b = parse_bandwidth(value).ok_or_else(malformed)?;
                match sdp.media.last_mut() {
                    Some(m) => m.bandwidths.push(b),
                    None => sdp.bandwidths.push(b),
                }
            }
            'a' => {
                let a = parse_attribute(value).ok_or_else(malformed)?;
                match sdp.media.last_mut() {
                    Some(m) => m.attributes.push(a),
                    None => sdp.attributes.push(a),
                }
            }
            _ => {
                let other = OtherLine {
                    kind,
                    value: value.to_owned(),
                };
                match (kind, sdp.media.last_mut()) {
                    // r, z, u, e, p are session-only (RFC 8866 §5).
                    ('i' | 'k', Some(m)) => m.other_lines.push(other),
                    _ => sdp.other_lines.push(other),
                }
            }
        }
    }
    if !seen_any {
        return Err(SdpParseError::Empty);
    }
    Ok(sdp)
}

fn parse_origin(value: &str) -> Option<Origin> {
    let f: Vec<&str> = value.split_whitespace().collect();
    let [username, session_id, version, net_type, addr_type, address] = f.as_slice() else {
        return None;
    };
    Some(Origin {
        username: (*username).to_owned(),
        session_id: (*session_id).to_owned(),
        // Versions beyond u64 exist only in broken UAs; saturating keeps the
        // ordering that version comparison relies on.
        session_version: version.parse::<u64>().ok().or_else(|| {
            version
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then_some(u64::MAX)
        })?,
        net_type: (*net_type).to_owned(),
        addr_type: (*addr_type).to_owned(),
        address: (*address).to_owned(),
    })
}

fn parse_timing(value: &str) -> Option<Timing> {
    let mut f = value.split_whitespace();
    let t = Timing {
        start: f.next()?.parse().ok()?,
        stop: f.next()?.parse().ok()?,
    };
    f.next().is_none().then_some(t)
}

fn parse_connection(value: &str) -> Option<Connection> {
    let f: Vec<&str> = value.split_whitespace().collect();
    let [net_type, addr_type, address] = f.as_slice() else {
        return None;
    };
    Some(Connection {
        net_type: (*net_type).to_owned(),
        addr_type: (*addr_type).to_owned(),
        address: (*address).to_owned(),
    })
}

fn parse_bandwidth(value: &str) -> Option<Bandwidth> {
    let (bw_type, bw) = value.split_once(':')?;
    let bw_type = bw_type.trim();
    if bw_type.is_empty() {
        return None;
    }
    Some(Bandwidth {
        bw_type: bw_type.to_owned(),
        bandwidth: bw.trim().parse().ok()?,
    })
}

fn parse_attribute(value: &str) -> Option<Attribute> {
    let (name, value) = match value.split_once(':') {
        Some((n, v)) => (n.trim(), Some(v.to_owned())),
        None => (value, None),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    Some(Attribute {
        name: name.to_owned(),
        value,
    })
}

fn parse_media(value: &str) -> Option<MediaDescription> {
    let mut f = value.split_whitespace();
    let media = f.next()?;
    let port_field = f.next()?;
    let protocol = f.next()?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, n)) => (p.parse().ok()?, Some(n.parse().ok()?)),
        None => (port_field.parse().ok()?, None),
    };
    let mut m = MediaDescription::new(media, port, protocol, f.map(str::to_owned).collect());
    m.port_count = port_count;
    Some(m)
}
