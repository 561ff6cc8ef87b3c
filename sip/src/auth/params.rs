//! The `auth-param` lists of digest challenges and credentials
//! (RFC 3261 §25.1 `challenge` / `credentials`, RFC 7616 §3.3–3.4).
//!
//! rsip's typed auth headers know neither `SHA-256-sess` nor unknown
//! parameters, and carriers send both, so the list is tokenized here. The
//! tokenizer is liberal (any case for names, quoted or bare values, stray
//! whitespace and empty list elements) and never panics.

use super::AuthError;

/// The parameters of one `Digest` challenge or credentials value, names
/// lower-cased, values unquoted, in the order they appeared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DigestParams {
    params: Vec<(String, String)>,
}

impl DigestParams {
    /// Parses `Digest name=value, name="quoted value", ...`.
    ///
    /// The scheme must be `Digest` (any case): SIP has no other scheme
    /// (RFC 3261 §22.4 forbids Basic).
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let value = value.trim_start();
        let scheme_end = value
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(value.len());
        let (scheme, rest) = value.split_at(scheme_end);
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(AuthError::UnsupportedScheme(truncate(scheme)));
        }
        let mut params = Vec::new();
        let mut chars = rest.char_indices().peekable();
        loop {
            // Skip separators and whitespace between parameters.
            while let Some(&(_, c)) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    chars.next();
                } else {
                    break;
                }
            }
            let Some(&(start, _)) = chars.peek() else {
                break;
            };
            let mut name_end = rest.len();
            while let Some(&(i, c)) = chars.peek() {
                if c == '=' || c == ',' || c.is_whitespace() {
                    name_end = i;
                    break;
                }
                chars.next();
            }
            let name = rest[start..name_end].to_ascii_lowercase();
            while matches!(chars.peek(), Some(&(_, c)) if c.is_whitespace()) {
                chars.next();
            }
            if !matches!(chars.peek(), Some(&(_, '='))) {
                return Err(AuthError::Malformed("auth-param without '='"));
            }
            chars.next();
            while matches!(chars.peek(), Some(&(_, c)) if c.is_whitespace()) {
                chars.next();
            }
            let mut val = String::new();
            if matches!(chars.peek(), Some(&(_, '"'))) {
                chars.next();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        // quoted-pair (RFC 3261 §25.1)
                        '\\' => match chars.next() {
                            Some((_, escaped)) => val.push(escaped),
                            None => break,
                        },
                        c => val.push(c),
                    }
                }
                if !closed {
                    return Err(AuthError::Malformed("unterminated quoted-string"));
                }
            } else {
                while let Some(&(_, c)) = chars.peek() {
                    if c == ',' || c.is_whitespace() {
                        break;
                    }
                    val.push(c);
                    chars.next();
                }
            }
            if name.is_empty() {
                return Err(AuthError::Malformed("empty auth-param name"));
            }
            params.push((name, val));
            // After a value only whitespace and then a comma (or the end) may follow.
            while matches!(chars.peek(), Some(&(_, c)) if c.is_whitespace()) {
                chars.next();
            }
            match chars.peek() {
                None | Some(&(_, ',')) => {}
                Some(_) => return Err(AuthError::Malformed("garbage after auth-param")),
            }
        }
        Ok(Self { params })
    }

    /// The value of the first parameter called `name` (lower-case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or [`AuthError::MissingParam`].
    pub fn require(&self, name: &'static str) -> Result<&str, AuthError> {
        self.get(name).ok_or(AuthError::MissingParam(name))
    }
}

/// Writes `value` as a quoted-string, escaping `"` and `\` (RFC 3261 §25.1).
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Keeps error messages bounded when a peer sends a huge token.
fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}
