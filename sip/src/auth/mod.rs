//! Digest authentication for SIP (RFC 3261 §22, RFC 7616 / RFC 2617
//! computation, RFC 8760 for SHA-256 in SIP), as client and as server.
//!
//! - [`client`]: parse 401/407 challenges, pick the strongest algorithm,
//!   answer them and rebuild the request to re-send.
//! - [`server`]: stateless HMAC nonces, challenges, credential checks with
//!   a bounded `nc` replay window.
//! - [`digest`]: the hash arithmetic, usable on its own.
//!
//! Everything is sans-IO: time is passed in as [`std::time::Instant`].

pub mod client;
pub mod digest;
pub mod params;
pub mod server;

pub use client::{Challenge, ChallengeKind, Credentials, DigestClient, select_challenges};
pub use digest::{Algorithm, DigestInput, Qop, QopInputs, compute_response};
pub use params::DigestParams;
pub use server::{DigestServer, RejectReason, ServerConfig, Verification};

/// Why a challenge or credentials could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A scheme other than `Digest`.
    #[error("unsupported auth scheme {0:?}")]
    UnsupportedScheme(String),
    /// The header value does not parse.
    #[error("malformed digest header: {0}")]
    Malformed(&'static str),
    /// A required parameter is missing.
    #[error("digest header lacks {0}")]
    MissingParam(&'static str),
    /// An algorithm Hotline does not implement.
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// Only qop values Hotline does not implement were offered.
    #[error("no supported qop offered")]
    UnsupportedQop,
    /// The response is not a 401 or 407.
    #[error("status {0} is not an authentication challenge")]
    NotAChallenge(u16),
    /// A 401/407 without any Digest challenge.
    #[error("no digest challenge in the response")]
    NoChallenge,
    /// The realm refused credentials we already sent: wrong password, or
    /// a server looping on stale nonces. Do not retry.
    #[error("credentials rejected by realm {realm:?}")]
    Rejected {
        /// The realm that refused us.
        realm: String,
    },
    /// The request to re-send lacks a header the retry needs.
    #[error("cannot re-send request: {0}")]
    InvalidRequest(&'static str),
}
