//! A tolerant line-based view of a SIP message head.
//!
//! rsip's tokenizer wants one canonical layout (single spaces, CRLF, one
//! value per header line, long header names). Real traffic is looser, and
//! RFC 3261 §7.3 allows all of it: line folding (§7.3.1), compact names
//! (§7.3.3), comma-joined values for list headers, whitespace around the
//! colon. This scanner reads that looser form, so [`super::parse`] can hand
//! rsip a canonical message and [`super::bad_request`] can still find the
//! headers it needs in a message rsip would reject.

/// One header line after unfolding, with its long-form name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawHeader {
    pub name: String,
    pub value: String,
}

/// The head of a message, split into its start line and headers.
#[derive(Debug, Clone)]
pub(crate) struct RawHead {
    pub start_line: String,
    pub headers: Vec<RawHeader>,
    /// Lines that were not `name: value` (the strict parser rejects these).
    pub bad_lines: usize,
}

/// Finds the end of the header section: the offset of the body, accepting
/// CRLF CRLF and, liberally, bare LF LF.
pub(crate) fn head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            // `\n\n` or `\n\r\n`
            if bytes.get(i + 1) == Some(&b'\n') {
                return Some((i + 1, i + 2));
            }
            if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') {
                return Some((i + 1, i + 3));
            }
        }
        i += 1;
    }
    None
}

/// The long form of a compact header name (RFC 3261 §7.3.3 and the RFCs
/// that registered further compact forms), or `None` if `name` is not one.
pub(crate) fn expand_compact(name: &str) -> Option<&'static str> {
    if name.len() != 1 {
        return None;
    }
    Some(match name.as_bytes()[0].to_ascii_lowercase() {
        b'i' => "Call-ID",
        b'm' => "Contact",
        b'e' => "Content-Encoding",
        b'l' => "Content-Length",
        b'c' => "Content-Type",
        b'f' => "From",
        b's' => "Subject",
        b'k' => "Supported",
        b't' => "To",
        b'v' => "Via",
        b'o' => "Event",               // RFC 6665
        b'r' => "Refer-To",            // RFC 3515
        b'b' => "Referred-By",         // RFC 3892
        b'u' => "Allow-Events",        // RFC 6665
        b'x' => "Session-Expires",     // RFC 4028
        b'a' => "Accept-Contact",      // RFC 3841
        b'j' => "Reject-Contact",      // RFC 3841
        b'd' => "Request-Disposition", // RFC 3841
        b'y' => "Identity",            // RFC 8224
        _ => return None,
    })
}

/// Headers whose values are comma-separated lists of name-addr/via-parm
/// elements (RFC 3261 §7.3.1) that rsip can only read one per line.
const LIST_HEADERS: [&str; 4] = ["Via", "Contact", "Route", "Record-Route"];

pub(crate) fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

/// Scans a head (start line plus header lines, without the blank line).
/// Never fails: lines it cannot read are counted in `bad_lines`.
pub(crate) fn scan_head(head: &str) -> RawHead {
    let mut lines = head
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        // §7.5: CRLFs before the start line are ignored.
        .skip_while(|l| l.trim().is_empty());
    let start_line = lines.next().unwrap_or("").trim().to_string();
    let mut headers: Vec<RawHeader> = Vec::new();
    let mut bad_lines = 0;
    let mut last_was_header = false;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // §7.3.1 folding: a continuation line joins the previous value
            // with a single space.
            match headers.last_mut() {
                Some(h) if last_was_header => {
                    let more = line.trim();
                    if !more.is_empty() {
                        if !h.value.is_empty() {
                            h.value.push(' ');
                        }
                        h.value.push_str(more);
                    }
                }
                _ => bad_lines += 1,
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            bad_lines += 1;
            last_was_header = false;
            continue;
        };
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            bad_lines += 1;
            last_was_header = false;
            continue;
        }
        let name = expand_compact(name)
            .map(str::to_string)
            .unwrap_or_else(|| name.to_string());
        headers.push(RawHeader {
            name,
            value: value.trim().to_string(),
        });
        last_was_header = true;
    }
    // Split list headers only after unfolding, since a fold may sit
    // between two list elements.
    let mut split = Vec::with_capacity(headers.len());
    for h in headers {
        if LIST_HEADERS.iter().any(|l| l.eq_ignore_ascii_case(&h.name)) && h.value != "*" {
            for part in split_list(&h.value) {
                split.push(RawHeader {
                    name: h.name.clone(),
                    value: part.to_string(),
                });
            }
        } else {
            split.push(h);
        }
    }
    RawHead {
        start_line,
        headers: split,
        bad_lines,
    }
}

/// Splits a comma-separated header value (Via, Contact, Route,
/// Record-Route…) into its elements at commas outside quoted strings and
/// angle brackets (RFC 3261 §7.3.1); elements are trimmed, empty ones
/// dropped.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut angle = 0u32;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '<' => angle += 1,
            '>' => angle = angle.saturating_sub(1),
            ',' if angle == 0 => {
                let part = value[start..i].trim();
                if !part.is_empty() {
                    out.push(part);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    let part = value[start..].trim();
    if !part.is_empty() {
        out.push(part);
    }
    out
}

impl RawHead {
    /// All values of a header, by case-insensitive long name.
    pub fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The first value of a header.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.all(name).next()
    }
}

/// The value of a header parameter (`;name=value` or `;name`) of a
/// name-addr header (From/To/Contact), looking only after the URI's closing
/// `>` when there is one so URI parameters are not mistaken for header ones.
pub(crate) fn header_param(value: &str, name: &str) -> Option<Option<String>> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => match value.find(';') {
            Some(i) => &value[i..],
            None => "",
        },
    };
    params_lookup(params, name)
}

/// Looks up `name` in a `;a=b;c` parameter list.
pub(crate) fn params_lookup(params: &str, name: &str) -> Option<Option<String>> {
    for p in params.split(';') {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let (n, v) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"').to_string())),
            None => (p, None),
        };
        if n.eq_ignore_ascii_case(name) {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolds_expands_and_splits() {
        let head = "\r\nINVITE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\nSubject: hello\r\n  world\r\nm: \"A, B\" <sip:x@y>, <sip:z@w>\r\nnot a header\r\n";
        let h = scan_head(head);
        assert_eq!(h.start_line, "INVITE sip:a@b SIP/2.0");
        let vias: Vec<_> = h.all("via").collect();
        assert_eq!(
            vias,
            [
                "SIP/2.0/UDP a;branch=z9hG4bK1",
                "SIP/2.0/UDP b;branch=z9hG4bK2"
            ]
        );
        assert_eq!(h.first("Subject"), Some("hello world"));
        let contacts: Vec<_> = h.all("Contact").collect();
        assert_eq!(contacts, ["\"A, B\" <sip:x@y>", "<sip:z@w>"]);
        assert_eq!(h.bad_lines, 1);
    }

    #[test]
    fn header_params_skip_uri_params() {
        let v = "<sip:a@b;tag=uri>;tag=hdr";
        assert_eq!(header_param(v, "tag"), Some(Some("hdr".into())));
        assert_eq!(header_param("sip:a@b;tag=x", "tag"), Some(Some("x".into())));
        assert_eq!(header_param("<sip:a@b;tag=x>", "tag"), None);
    }

    #[test]
    fn head_end_variants() {
        assert_eq!(head_end(b"A\r\nB\r\n\r\nbody"), Some((6, 8)));
        assert_eq!(head_end(b"A\nB\n\nbody"), Some((4, 5)));
        assert_eq!(head_end(b"A\r\nB\r\n"), None);
    }
}
