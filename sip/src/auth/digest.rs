//! The digest computation itself (RFC 7616 §3.4.1–3.4.3, RFC 2617 §3.2.2,
//! RFC 8760 §2 for its use in SIP).

use md5::Md5;
use sha2::{Digest as _, Sha256};
use std::fmt;

/// A digest algorithm Hotline implements.
///
/// RFC 8760 also registers SHA-512-256; it is not implemented, so challenges
/// offering only that algorithm are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`, the RFC 2617 default when `algorithm` is absent.
    Md5,
    /// `MD5-sess`: HA1 is rehashed with the nonce and cnonce.
    Md5Sess,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// Parses an `algorithm` parameter value, case-insensitively;
    /// `None` for algorithms Hotline does not implement.
    pub fn parse(value: &str) -> Option<Self> {
        let v = value.trim();
        [Self::Md5, Self::Md5Sess, Self::Sha256, Self::Sha256Sess]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(v))
    }

    /// The token as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Higher is stronger: RFC 8760 §2.4 has UACs prefer SHA-256 over MD5.
    pub fn strength(self) -> u8 {
        match self {
            Self::Md5 | Self::Md5Sess => 1,
            Self::Sha256 | Self::Sha256Sess => 2,
        }
    }

    /// Whether this is a `-sess` variant.
    pub fn is_session(self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess)
    }

    /// Lower-case hex of the hash of `data` under this algorithm.
    pub fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Self::Md5 | Self::Md5Sess => hex(&Md5::digest(data)),
            Self::Sha256 | Self::Sha256Sess => hex(&Sha256::digest(data)),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The quality of protection used in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    /// `auth`: the request line is protected.
    Auth,
    /// `auth-int`: the body is protected too (HA2 includes H(body)).
    AuthInt,
}

impl Qop {
    /// The token as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::AuthInt => "auth-int",
        }
    }

    /// Parses a single qop token, case-insensitively.
    pub fn parse(value: &str) -> Option<Self> {
        let v = value.trim();
        if v.eq_ignore_ascii_case("auth") {
            Some(Self::Auth)
        } else if v.eq_ignore_ascii_case("auth-int") {
            Some(Self::AuthInt)
        } else {
            None
        }
    }
}

/// The per-response inputs that exist only when a qop is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QopInputs<'a> {
    /// The qop chosen.
    pub qop: Qop,
    /// The nonce count (sent as 8 hex digits).
    pub nc: u32,
    /// The client nonce.
    pub cnonce: &'a str,
}

/// Everything the `response` value depends on.
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    /// Hash algorithm.
    pub algorithm: Algorithm,
    /// User name.
    pub username: &'a str,
    /// Realm from the challenge.
    pub realm: &'a str,
    /// Password.
    pub password: &'a str,
    /// The request method (`INVITE`, `REGISTER`, …).
    pub method: &'a str,
    /// The digest-uri: the Request-URI as sent (RFC 3261 §22.4).
    pub uri: &'a str,
    /// The server nonce.
    pub nonce: &'a str,
    /// `None` for the RFC 2069 legacy computation without qop.
    pub qop: Option<QopInputs<'a>>,
    /// The message body, for `auth-int`.
    pub body: &'a [u8],
}

/// HA1 (RFC 7616 §3.4.2); for `-sess` the cnonce is required, and an empty
/// one is used if there is none, as some servers do.
pub fn ha1(input: &DigestInput<'_>) -> String {
    let alg = input.algorithm;
    let base =
        alg.hash_hex(format!("{}:{}:{}", input.username, input.realm, input.password).as_bytes());
    if alg.is_session() {
        let cnonce = input.qop.map(|q| q.cnonce).unwrap_or("");
        alg.hash_hex(format!("{}:{}:{}", base, input.nonce, cnonce).as_bytes())
    } else {
        base
    }
}

/// HA2 (RFC 7616 §3.4.3).
pub fn ha2(input: &DigestInput<'_>) -> String {
    let alg = input.algorithm;
    match input.qop.map(|q| q.qop) {
        Some(Qop::AuthInt) => {
            let body = alg.hash_hex(input.body);
            alg.hash_hex(format!("{}:{}:{}", input.method, input.uri, body).as_bytes())
        }
        _ => alg.hash_hex(format!("{}:{}", input.method, input.uri).as_bytes()),
    }
}

/// The `response` parameter value (RFC 7616 §3.4.1; RFC 2617 §3.2.2.1 for
/// the no-qop form).
pub fn compute_response(input: &DigestInput<'_>) -> String {
    let ha1 = ha1(input);
    let ha2 = ha2(input);
    let alg = input.algorithm;
    match input.qop {
        Some(q) => alg.hash_hex(
            format!(
                "{}:{}:{}:{}:{}:{}",
                ha1,
                input.nonce,
                format_nc(q.nc),
                q.cnonce,
                q.qop.as_str(),
                ha2
            )
            .as_bytes(),
        ),
        None => alg.hash_hex(format!("{}:{}:{}", ha1, input.nonce, ha2).as_bytes()),
    }
}

/// `nc` as exactly 8 lower-case hex digits (RFC 7616 §3.4).
pub fn format_nc(nc: u32) -> String {
    format!("{nc:08x}")
}

/// Lower-case hex encoding.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Compares two byte strings in time that depends only on their lengths,
/// so a forged response cannot be found byte by byte from timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
