//! The UAC side: answering 401/407 challenges (RFC 3261 §22.2–22.3,
//! RFC 8760 §2.4).

use super::AuthError;
use super::digest::{Algorithm, DigestInput, Qop, QopInputs, compute_response, format_nc};
use super::params::{DigestParams, quote};
use rsip::headers::UntypedHeader;
use rsip::{Header, Request, Response};
use std::collections::{HashMap, VecDeque};

/// How many stale-nonce re-answers one request chain may make before the
/// client assumes the server is looping.
const MAX_STALE_RETRIES: u8 = 2;
/// Bounds on the client's bookkeeping, so a server handing out a new nonce
/// on every request cannot grow it without limit.
const MAX_TRACKED_NONCES: usize = 64;
const MAX_TRACKED_CHAINS: usize = 256;

/// Which pair of headers a challenge travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// `401` + `WWW-Authenticate`, answered with `Authorization` (a UAS or registrar).
    Www,
    /// `407` + `Proxy-Authenticate`, answered with `Proxy-Authorization` (a proxy).
    Proxy,
}

/// One parsed `Digest` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Which header it came in.
    pub kind: ChallengeKind,
    /// Protection space.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque value to echo back unchanged.
    pub opaque: Option<String>,
    /// Algorithm (MD5 when absent, RFC 2617 §3.2.1).
    pub algorithm: Algorithm,
    /// Offered qop values Hotline understands; empty means the legacy
    /// RFC 2069 computation without qop.
    pub qop: Vec<Qop>,
    /// `stale=true`: our credentials were right but the nonce expired.
    pub stale: bool,
}

impl Challenge {
    /// Parses a `WWW-Authenticate` / `Proxy-Authenticate` value.
    pub fn parse(value: &str, kind: ChallengeKind) -> Result<Self, AuthError> {
        let params = DigestParams::parse(value)?;
        let algorithm = match params.get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(a)
                .ok_or_else(|| AuthError::UnsupportedAlgorithm(a.chars().take(32).collect()))?,
        };
        let qop = match params.get("qop") {
            None => Vec::new(),
            Some(list) => {
                let offered: Vec<Qop> = list.split(',').filter_map(Qop::parse).collect();
                if offered.is_empty() {
                    // A qop directive we cannot honour: answering without qop
                    // would be a protocol violation (RFC 7616 §3.4).
                    return Err(AuthError::UnsupportedQop);
                }
                offered
            }
        };
        Ok(Self {
            kind,
            realm: params.require("realm")?.to_owned(),
            nonce: params.require("nonce")?.to_owned(),
            opaque: params.get("opaque").map(str::to_owned),
            algorithm,
            qop,
            stale: params
                .get("stale")
                .is_some_and(|s| s.trim().eq_ignore_ascii_case("true")),
        })
    }

    /// The qop the client will use: `auth` when offered, else `auth-int`,
    /// else none (legacy).
    pub fn chosen_qop(&self) -> Option<Qop> {
        if self.qop.contains(&Qop::Auth) {
            Some(Qop::Auth)
        } else {
            self.qop.first().copied()
        }
    }
}

/// The challenges of a 401/407 that the client will answer: per realm, the
/// strongest algorithm it supports (SHA-256 before MD5, RFC 8760 §2.4),
/// the first one listed among equals. Unparseable or unsupported
/// challenges are skipped as long as one usable challenge remains.
pub fn select_challenges(response: &Response) -> Result<Vec<Challenge>, AuthError> {
    let code = response.status_code.code();
    let kind = match code {
        401 => ChallengeKind::Www,
        407 => ChallengeKind::Proxy,
        _ => return Err(AuthError::NotAChallenge(code)),
    };
    let mut chosen: Vec<Challenge> = Vec::new();
    let mut first_error = None;
    for header in response.headers.iter() {
        let value = match (kind, header) {
            (ChallengeKind::Www, Header::WwwAuthenticate(h)) => h.value(),
            (ChallengeKind::Proxy, Header::ProxyAuthenticate(h)) => h.value(),
            _ => continue,
        };
        match Challenge::parse(value, kind) {
            Ok(c) => match chosen.iter_mut().find(|e| e.realm == c.realm) {
                Some(existing) if c.algorithm.strength() > existing.algorithm.strength() => {
                    *existing = c
                }
                Some(_) => {}
                None => chosen.push(c),
            },
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if chosen.is_empty() {
        return Err(first_error.unwrap_or(AuthError::NoChallenge));
    }
    Ok(chosen)
}

/// A user's credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Digest user name (often the account or the phone number).
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    // Keeps passwords out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Answers digest challenges for one set of credentials, counting `nc` per
/// nonce so nonces can be reused across requests (RFC 7616 §3.4).
#[derive(Debug)]
pub struct DigestClient {
    credentials: Credentials,
    nonce_counts: HashMap<String, u32>,
    nonce_order: VecDeque<String>,
    stale_retries: HashMap<(String, String), u8>,
}

impl DigestClient {
    /// A client that answers with `credentials`.
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            nonce_counts: HashMap::new(),
            nonce_order: VecDeque::new(),
            stale_retries: HashMap::new(),
        }
    }

    /// The `Authorization` / `Proxy-Authorization` value answering
    /// `challenge` for a request, with a fresh random cnonce.
    pub fn authorization(
        &mut self,
        challenge: &Challenge,
        method: &rsip::Method,
        request_uri: &str,
        body: &[u8],
    ) -> String {
        let cnonce = super::digest::hex(&rand::random::<[u8; 16]>());
        self.authorization_with_cnonce(challenge, method, request_uri, body, &cnonce)
    }

    /// As [`authorization`](Self::authorization) with a given cnonce (for
    /// reproducible tests).
    pub fn authorization_with_cnonce(
        &mut self,
        challenge: &Challenge,
        method: &rsip::Method,
        request_uri: &str,
        body: &[u8],
        cnonce: &str,
    ) -> String {
        let qop = challenge.chosen_qop();
        let nc = match qop {
            Some(_) => self.next_nc(&challenge.nonce),
            None => 0,
        };
        let method = method.to_string();
        let input = DigestInput {
            algorithm: challenge.algorithm,
            username: &self.credentials.username,
            realm: &challenge.realm,
            password: &self.credentials.password,
            method: &method,
            uri: request_uri,
            nonce: &challenge.nonce,
            qop: qop.map(|qop| QopInputs { qop, nc, cnonce }),
            body,
        };
        let response = compute_response(&input);
        let mut value = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
            quote(&self.credentials.username),
            quote(&challenge.realm),
            quote(&challenge.nonce),
            quote(request_uri),
            quote(&response),
            challenge.algorithm
        );
        if let Some(qop) = qop {
            value.push_str(&format!(
                ", cnonce={}, qop={}, nc={}",
                quote(cnonce),
                qop.as_str(),
                format_nc(nc)
            ));
        }
        if let Some(opaque) = &challenge.opaque {
            value.push_str(&format!(", opaque={}", quote(opaque)));
        }
        value
    }

    /// Builds the request to re-send after `response` (a 401 or 407)
    /// challenged `request` (RFC 3261 §22.2): same Call-ID, From tag and
    /// body, CSeq + 1, a new top Via branch (it is a new transaction), and
    /// one credentials header per challenged realm. Credentials for other
    /// realms already in the request are kept (§22.3), so a proxy and the
    /// far end can both be satisfied.
    ///
    /// Gives up with [`AuthError::Rejected`] when a realm we already
    /// answered in this request challenges again without `stale=true`
    /// (wrong password), or keeps declaring our nonce stale.
    pub fn authenticate(
        &mut self,
        request: &Request,
        response: &Response,
    ) -> Result<Request, AuthError> {
        let challenges = select_challenges(response)?;
        let kind = challenges[0].kind;
        let call_id = request
            .headers
            .iter()
            .find_map(|h| match h {
                Header::CallId(c) => Some(c.value().to_owned()),
                _ => None,
            })
            .ok_or(AuthError::InvalidRequest("no Call-ID"))?;
        for c in &challenges {
            let answered = existing_credentials(request, kind)
                .iter()
                .any(|p| p.get("realm") == Some(c.realm.as_str()));
            if !answered {
                continue;
            }
            if !c.stale {
                return Err(AuthError::Rejected {
                    realm: c.realm.clone(),
                });
            }
            if self.stale_retries.len() >= MAX_TRACKED_CHAINS {
                self.stale_retries.clear();
            }
            let n = self
                .stale_retries
                .entry((call_id.clone(), c.realm.clone()))
                .or_insert(0);
            *n += 1;
            if *n > MAX_STALE_RETRIES {
                return Err(AuthError::Rejected {
                    realm: c.realm.clone(),
                });
            }
        }

        let mut out = request.clone();
        let realms: Vec<&str> = challenges.iter().map(|c| c.realm.as_str()).collect();
        out.headers.retain(|h| {
            let value = match (kind, h) {
                (ChallengeKind::Www, Header::Authorization(a)) => a.value(),
                (ChallengeKind::Proxy, Header::ProxyAuthorization(a)) => a.value(),
                _ => return true,
            };
            // Replace our old answer for a realm challenged again; keep the rest.
            match DigestParams::parse(value) {
                Ok(p) => !p.get("realm").is_some_and(|r| realms.contains(&r)),
                Err(_) => true,
            }
        });
        bump_cseq(&mut out)?;
        new_branch(&mut out)?;
        let uri = request.uri.to_string();
        for c in &challenges {
            let value = self.authorization(c, &request.method, &uri, &request.body);
            out.headers.push(match kind {
                ChallengeKind::Www => rsip::headers::Authorization::new(value).into(),
                ChallengeKind::Proxy => rsip::headers::ProxyAuthorization::new(value).into(),
            });
        }
        Ok(out)
    }

    fn next_nc(&mut self, nonce: &str) -> u32 {
        if !self.nonce_counts.contains_key(nonce) {
            if self.nonce_order.len() >= MAX_TRACKED_NONCES {
                let old = self.nonce_order.pop_front();
                if let Some(old) = old {
                    self.nonce_counts.remove(&old);
                }
            }
            self.nonce_order.push_back(nonce.to_owned());
        }
        let nc = self.nonce_counts.entry(nonce.to_owned()).or_insert(0);
        *nc = nc.wrapping_add(1).max(1);
        *nc
    }
}

fn existing_credentials(request: &Request, kind: ChallengeKind) -> Vec<DigestParams> {
    request
        .headers
        .iter()
        .filter_map(|h| match (kind, h) {
            (ChallengeKind::Www, Header::Authorization(a)) => Some(a.value()),
            (ChallengeKind::Proxy, Header::ProxyAuthorization(a)) => Some(a.value()),
            _ => None,
        })
        .filter_map(|v| DigestParams::parse(v).ok())
        .collect()
}

fn bump_cseq(request: &mut Request) -> Result<(), AuthError> {
    let cseq = request
        .headers
        .iter_mut()
        .find_map(|h| match h {
            Header::CSeq(c) => Some(c),
            _ => None,
        })
        .ok_or(AuthError::InvalidRequest("no CSeq"))?;
    let (num, method) = crate::message::cseq_parts(cseq.value())
        .ok_or(AuthError::InvalidRequest("malformed CSeq"))?;
    let next = num
        .checked_add(1)
        .ok_or(AuthError::InvalidRequest("CSeq overflow"))?;
    *cseq = rsip::headers::CSeq::new(format!("{next} {method}"));
    Ok(())
}

fn new_branch(request: &mut Request) -> Result<(), AuthError> {
    let via = request
        .headers
        .iter_mut()
        .find_map(|h| match h {
            Header::Via(v) => Some(v),
            _ => None,
        })
        .ok_or(AuthError::InvalidRequest("no Via"))?;
    *via = rsip::headers::Via::new(crate::dialog::replace_branch(
        via.value(),
        &crate::message::new_branch(),
    ));
    Ok(())
}
