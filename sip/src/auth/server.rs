//! The UAS side: issuing challenges and verifying credentials
//! (RFC 3261 §22.1, §22.4; RFC 7616 §3.3, §3.4.5; RFC 8760 §2.3).
//!
//! Nonces are stateless: `hex(timestamp) || hex(HMAC-SHA256(secret,
//! timestamp:realm))`, so any nonce the server issued can be checked
//! without remembering it, and expiry needs no timer. The only state is a
//! bounded replay window of `nc` values per nonce in use.

use super::client::ChallengeKind;
use super::digest::{
    Algorithm, DigestInput, Qop, QopInputs, compute_response, constant_time_eq, hex,
};
use super::params::{DigestParams, quote};
use hmac::{Hmac, Mac};
use rsip::headers::UntypedHeader;
use rsip::{Header, Request};
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How the server challenges and what it accepts.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The realm challenged for (usually the domain).
    pub realm: String,
    /// Algorithms offered and accepted, most preferred first: one challenge
    /// is sent per algorithm in this order (RFC 8760 §2.3).
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce stays fresh; after that a correct answer gets a
    /// new challenge with `stale=true`.
    pub nonce_lifetime: Duration,
    /// Accept RFC 2069 answers without qop. They carry no `nc`, so they
    /// can be replayed for the nonce's lifetime; off by default.
    pub allow_no_qop: bool,
    /// Most nonces whose `nc` window is remembered at once.
    pub max_tracked_nonces: usize,
}

impl ServerConfig {
    /// SHA-256 then MD5, 5-minute nonces, qop required, 4096 nonces tracked.
    pub fn new(realm: impl Into<String>) -> Self {
        Self {
            realm: realm.into(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            nonce_lifetime: Duration::from_secs(300),
            allow_no_qop: false,
            max_tracked_nonces: 4096,
        }
    }
}

/// The result of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The request is authenticated as this user.
    Authorized {
        /// The authenticated user name.
        username: String,
    },
    /// The credentials are right but the nonce expired (or predates a
    /// restart): challenge again with `stale=true` (RFC 7616 §3.3).
    Stale,
    /// Challenge again (or answer 403); the reason is for logs only and
    /// must not be told to the peer.
    Rejected(RejectReason),
}

/// Why credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// No credentials for our realm: the normal first request.
    NoCredentials,
    /// The header could not be parsed or lacks a required parameter.
    Malformed,
    /// An algorithm not in [`ServerConfig::algorithms`].
    AlgorithmNotAllowed,
    /// A qop other than `auth`, or none while qop is required.
    QopNotAllowed,
    /// The digest-uri is not the Request-URI (RFC 3261 §22.4: the answer
    /// would be replayable against another resource).
    UriMismatch,
    /// No such user.
    UnknownUser,
    /// The response does not match: wrong password (or a forgery).
    BadResponse,
    /// This `nc` was already used with this nonce, or is too old to tell.
    Replay,
}

/// Highest `nc` seen for a nonce plus a 64-wide bitmap below it, so
/// requests that overtake one another (parallel transactions over UDP)
/// are still accepted once each.
#[derive(Debug, Clone, Copy, Default)]
struct NcWindow {
    highest: u32,
    seen: u64,
}

impl NcWindow {
    const WIDTH: u32 = 64;

    /// Records `nc`; false if it was already seen or is below the window.
    fn accept(&mut self, nc: u32) -> bool {
        if nc > self.highest {
            let shift = nc - self.highest;
            self.seen = if shift >= Self::WIDTH {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.highest = nc;
            true
        } else {
            let diff = self.highest - nc;
            if diff >= Self::WIDTH || self.seen & (1u64 << diff) != 0 {
                false
            } else {
                self.seen |= 1u64 << diff;
                true
            }
        }
    }
}

/// A digest-authenticating UAS, registrar or proxy for one realm.
#[derive(Debug)]
pub struct DigestServer {
    config: ServerConfig,
    secret: Vec<u8>,
    epoch: Instant,
    users: HashMap<String, String>,
    windows: HashMap<String, NcWindow>,
    /// Tracked nonces in first-use order, with their timestamps, for eviction.
    order: VecDeque<(String, u64)>,
    /// Every evicted nonce has a timestamp at or below this; an untracked
    /// nonce that old might have been seen, so it is refused as stale
    /// rather than risk a replay.
    evicted_up_to: Option<u64>,
}

impl DigestServer {
    /// A server with `secret` as the nonce HMAC key; `now` is the epoch
    /// nonce timestamps count from.
    pub fn new(config: ServerConfig, secret: &[u8], now: Instant) -> Self {
        Self {
            config,
            secret: secret.to_vec(),
            epoch: now,
            users: HashMap::new(),
            windows: HashMap::new(),
            order: VecDeque::new(),
            evicted_up_to: None,
        }
    }

    /// A server with a random 32-byte secret: nonces do not survive a restart.
    pub fn with_random_secret(config: ServerConfig, now: Instant) -> Self {
        Self::new(config, &rand::random::<[u8; 32]>(), now)
    }

    /// Adds or replaces a user.
    pub fn add_user(&mut self, username: impl Into<String>, password: impl Into<String>) {
        self.users.insert(username.into(), password.into());
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// A fresh stateless nonce for time `now`.
    pub fn nonce(&self, now: Instant) -> String {
        let ts = self.timestamp(now);
        format!("{ts:016x}{}", hex(&self.mac(ts)))
    }

    /// One challenge value per configured algorithm, preferred first.
    pub fn challenges(&self, now: Instant, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        self.config
            .algorithms
            .iter()
            .map(|alg| {
                let mut v = format!(
                    "Digest realm={}, nonce={}, algorithm={}, qop=\"auth\"",
                    quote(&self.config.realm),
                    quote(&nonce),
                    alg
                );
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    /// The challenge headers to put in a 401 (`Www`) or 407 (`Proxy`).
    pub fn challenge_headers(&self, kind: ChallengeKind, now: Instant, stale: bool) -> Vec<Header> {
        self.challenges(now, stale)
            .into_iter()
            .map(|v| match kind {
                ChallengeKind::Www => rsip::headers::WwwAuthenticate::new(v).into(),
                ChallengeKind::Proxy => rsip::headers::ProxyAuthenticate::new(v).into(),
            })
            .collect()
    }

    /// Checks the request's `Authorization` (or `Proxy-Authorization` for
    /// `Proxy`) credentials for our realm at time `now`.
    pub fn verify(&mut self, request: &Request, kind: ChallengeKind, now: Instant) -> Verification {
        let mut malformed = false;
        let mut ours = None;
        for h in request.headers.iter() {
            let value = match (kind, h) {
                (ChallengeKind::Www, Header::Authorization(a)) => a.value(),
                (ChallengeKind::Proxy, Header::ProxyAuthorization(a)) => a.value(),
                _ => continue,
            };
            match DigestParams::parse(value) {
                Ok(p) if p.get("realm") == Some(self.config.realm.as_str()) => {
                    ours = Some(p);
                    break;
                }
                Ok(_) => {}
                Err(_) => malformed = true,
            }
        }
        match ours {
            Some(p) => self.verify_params(&p, request, now),
            None if malformed => Verification::Rejected(RejectReason::Malformed),
            None => Verification::Rejected(RejectReason::NoCredentials),
        }
    }

    fn verify_params(&mut self, p: &DigestParams, request: &Request, now: Instant) -> Verification {
        use Verification::Rejected;
        let (Some(username), Some(nonce), Some(uri), Some(response)) = (
            p.get("username"),
            p.get("nonce"),
            p.get("uri"),
            p.get("response"),
        ) else {
            return Rejected(RejectReason::Malformed);
        };
        let algorithm = match p.get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => match Algorithm::parse(a) {
                Some(a) => a,
                None => return Rejected(RejectReason::AlgorithmNotAllowed),
            },
        };
        if !self.config.algorithms.contains(&algorithm) {
            return Rejected(RejectReason::AlgorithmNotAllowed);
        }
        if !uri_matches(uri, &request.uri) {
            return Rejected(RejectReason::UriMismatch);
        }
        let qop = match p.get("qop") {
            None if self.config.allow_no_qop => None,
            None => return Rejected(RejectReason::QopNotAllowed),
            Some(q) if Qop::parse(q) == Some(Qop::Auth) => {
                let (Some(nc), Some(cnonce)) = (p.get("nc"), p.get("cnonce")) else {
                    return Rejected(RejectReason::Malformed);
                };
                let nc = match parse_nc(nc) {
                    Some(nc) => nc,
                    None => return Rejected(RejectReason::Malformed),
                };
                Some(QopInputs {
                    qop: Qop::Auth,
                    nc,
                    cnonce,
                })
            }
            Some(_) => return Rejected(RejectReason::QopNotAllowed),
        };
        let Some(password) = self.users.get(username) else {
            return Rejected(RejectReason::UnknownUser);
        };
        let method = request.method.to_string();
        let expected = compute_response(&DigestInput {
            algorithm,
            username,
            realm: &self.config.realm,
            password,
            method: &method,
            uri,
            nonce,
            qop,
            body: &request.body,
        });
        let response = response.to_ascii_lowercase();
        if !constant_time_eq(expected.as_bytes(), response.as_bytes()) {
            return Rejected(RejectReason::BadResponse);
        }
        // Credentials are right from here on: any nonce problem is "stale".
        let Some(ts) = self.check_nonce(nonce) else {
            return Verification::Stale;
        };
        let now_ts = self.timestamp(now);
        if ts > now_ts || now_ts - ts > self.config.nonce_lifetime.as_secs() {
            return Verification::Stale;
        }
        if let Some(q) = qop {
            match self.record_nc(nonce, ts, q.nc, now_ts) {
                NcOutcome::Fresh => {}
                NcOutcome::Replay => return Rejected(RejectReason::Replay),
                NcOutcome::Forgotten => return Verification::Stale,
            }
        }
        Verification::Authorized {
            username: username.to_owned(),
        }
    }

    fn timestamp(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    fn mac(&self, ts: u64) -> Vec<u8> {
        // HMAC takes keys of any length, so this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
            return Vec::new();
        };
        mac.update(format!("{ts:016x}:{}", self.config.realm).as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// The timestamp of a nonce we issued, or `None` if we did not issue it.
    fn check_nonce(&self, nonce: &str) -> Option<u64> {
        if nonce.len() != 16 + 64 || !nonce.is_ascii() {
            return None;
        }
        let (ts_hex, mac_hex) = nonce.split_at(16);
        let ts = u64::from_str_radix(ts_hex, 16).ok()?;
        let expected = hex(&self.mac(ts));
        constant_time_eq(expected.as_bytes(), mac_hex.to_ascii_lowercase().as_bytes()).then_some(ts)
    }

    fn record_nc(&mut self, nonce: &str, ts: u64, nc: u32, now_ts: u64) -> NcOutcome {
        if let Some(w) = self.windows.get_mut(nonce) {
            return if w.accept(nc) {
                NcOutcome::Fresh
            } else {
                NcOutcome::Replay
            };
        }
        if self.evicted_up_to.is_some_and(|e| ts <= e) {
            return NcOutcome::Forgotten;
        }
        if self.order.len() >= self.config.max_tracked_nonces.max(1) {
            let lifetime = self.config.nonce_lifetime.as_secs();
            let windows = &mut self.windows;
            // Expired nonces are refused as stale anyway: dropping them is free.
            self.order.retain(|(n, t)| {
                let live = now_ts.saturating_sub(*t) <= lifetime;
                if !live {
                    windows.remove(n);
                }
                live
            });
        }
        while self.order.len() >= self.config.max_tracked_nonces.max(1) {
            let Some((old, old_ts)) = self.order.pop_front() else {
                break;
            };
            self.windows.remove(&old);
            self.evicted_up_to = Some(self.evicted_up_to.map_or(old_ts, |e| e.max(old_ts)));
        }
        let mut w = NcWindow::default();
        w.accept(nc);
        self.windows.insert(nonce.to_owned(), w);
        self.order.push_back((nonce.to_owned(), ts));
        NcOutcome::Fresh
    }

    /// How many nonces' `nc` windows are held (bounded by
    /// [`ServerConfig::max_tracked_nonces`]).
    pub fn tracked_nonces(&self) -> usize {
        self.windows.len()
    }
}

enum NcOutcome {
    Fresh,
    Replay,
    Forgotten,
}

fn parse_nc(nc: &str) -> Option<u32> {
    // RFC 7616 §3.4: exactly 8 hex digits; be liberal about the count.
    if nc.is_empty() || nc.len() > 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(nc, 16).ok().filter(|&n| n > 0)
}

/// The digest-uri must name the Request-URI (RFC 3261 §22.4); compared as
/// text first, then as parsed URIs so harmless re-encoding still matches.
fn uri_matches(digest_uri: &str, request_uri: &rsip::Uri) -> bool {
    let request_text = request_uri.to_string();
    if digest_uri == request_text {
        return true;
    }
    rsip::Uri::try_from(digest_uri).is_ok_and(|u| &u == request_uri)
}
