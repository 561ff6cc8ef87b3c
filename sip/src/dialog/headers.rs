//! Small text-level helpers over header values that rsip's typed headers
//! either do not expose or parse too strictly for what carriers send.
//! Comma-separated lists are split by [`crate::message::split_list`].

use crate::message::split_list;

/// Replaces (or adds) the `branch` parameter of the first via-parm in a
/// Via header value.
pub fn replace_branch(via: &str, branch: &str) -> String {
    let parts = split_list(via);
    let (first, rest) = match parts.split_first() {
        Some((first, rest)) => (*first, rest),
        None => (via, &[][..]),
    };
    let mut params: Vec<String> = first
        .split(';')
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    let mut replaced = false;
    for p in params.iter_mut().skip(1) {
        if p.get(..7)
            .is_some_and(|k| k.eq_ignore_ascii_case("branch="))
            || p.eq_ignore_ascii_case("branch")
        {
            *p = format!("branch={branch}");
            replaced = true;
        }
    }
    if !replaced {
        params.push(format!("branch={branch}"));
    }
    let mut out = params.join(";");
    for r in rest {
        out.push_str(", ");
        out.push_str(r);
    }
    out
}

/// The URI text of a `name-addr` / `addr-spec` (`"Bob" <sip:b@x;lr>;tag=1`
/// gives `sip:b@x;lr`). Without angle brackets, header parameters start
/// at the first `;` (§20.10), so they are cut.
pub fn addr_uri(value: &str) -> &str {
    let value = value.trim();
    if let Some(open) = find_unquoted(value, '<') {
        let after = &value[open + 1..];
        return match after.find('>') {
            Some(close) => after[..close].trim(),
            None => after.trim(),
        };
    }
    value.split(';').next().unwrap_or("").trim()
}

/// The header parameters after the address (`;tag=…;expires=…`).
fn addr_params(value: &str) -> &str {
    let value = value.trim();
    if let Some(open) = find_unquoted(value, '<') {
        return match value[open..].find('>') {
            Some(close) => &value[open + close + 1..],
            None => "",
        };
    }
    match value.find(';') {
        Some(i) => &value[i..],
        None => "",
    }
}

/// The value of header parameter `name` (case-insensitive) of a
/// `name-addr`, e.g. the `tag` of From/To.
pub fn addr_param(value: &str, name: &str) -> Option<String> {
    addr_params(value).split(';').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// Whether a URI's parameters include `lr` (loose routing, §16.12.1.1).
pub fn uri_has_lr(uri: &str) -> bool {
    let before_headers = uri.split('?').next().unwrap_or("");
    before_headers.split(';').skip(1).any(|p| {
        let k = p.split('=').next().unwrap_or("");
        k.trim().eq_ignore_ascii_case("lr")
    })
}

fn find_unquoted(value: &str, target: char) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            c if c == target && !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

/// Headers the dialog layer reads, matched by variant, by full name and
/// by compact form (rsip keeps compact forms such as `i:` or `m:` as
/// `Header::Other`, RFC 3261 §7.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Name {
    CallId,
    From,
    To,
    CSeq,
    Contact,
    RecordRoute,
    Supported,
    SessionExpires,
    MinSe,
}

impl Name {
    fn names(self) -> (&'static str, Option<&'static str>) {
        match self {
            Self::CallId => ("Call-ID", Some("i")),
            Self::From => ("From", Some("f")),
            Self::To => ("To", Some("t")),
            Self::CSeq => ("CSeq", None),
            Self::Contact => ("Contact", Some("m")),
            Self::RecordRoute => ("Record-Route", None),
            Self::Supported => ("Supported", Some("k")),
            Self::SessionExpires => ("Session-Expires", Some("x")),
            Self::MinSe => ("Min-SE", None),
        }
    }

    fn typed(self, header: &rsip::Header) -> Option<&str> {
        use rsip::Header as H;
        use rsip::headers::UntypedHeader;
        match (self, header) {
            (Self::CallId, H::CallId(h)) => Some(h.value()),
            (Self::From, H::From(h)) => Some(h.value()),
            (Self::To, H::To(h)) => Some(h.value()),
            (Self::CSeq, H::CSeq(h)) => Some(h.value()),
            (Self::Contact, H::Contact(h)) => Some(h.value()),
            (Self::RecordRoute, H::RecordRoute(h)) => Some(h.value()),
            (Self::Supported, H::Supported(h)) => Some(h.value()),
            _ => None,
        }
    }
}

/// Every value of header `name`, in message order.
pub(crate) fn values(headers: &rsip::Headers, name: Name) -> Vec<&str> {
    let (full, compact) = name.names();
    headers
        .iter()
        .filter_map(|h| match h {
            rsip::Header::Other(n, v)
                if n.trim().eq_ignore_ascii_case(full)
                    || compact.is_some_and(|c| n.trim().eq_ignore_ascii_case(c)) =>
            {
                Some(v.as_str())
            }
            h => name.typed(h),
        })
        .collect()
}

/// The first value of header `name`.
pub(crate) fn first(headers: &rsip::Headers, name: Name) -> Option<&str> {
    values(headers, name).into_iter().next()
}
