//! A sans-IO REGISTER client (RFC 3261 §10) for trunks that only deliver
//! inbound calls to registered endpoints.
//!
//! One [`Registration`] keeps one binding (our Contact at an address of
//! record) alive: it hands out REGISTER requests through
//! [`Registration::poll_request`], takes the final responses of their
//! transactions through [`Registration::on_response`] (or a transaction
//! timeout through [`Registration::on_timeout`]) and says when it next
//! wants to run through [`Registration::poll_timeout`]. The transaction
//! layer retransmits; this module only decides what to register and when.
//!
//! - Every REGISTER of a registration shares one Call-ID and From tag and
//!   increments CSeq (§10.2: "a UA SHOULD use the same Call-ID for all
//!   registrations during a single boot cycle"; §10.2.4 for refreshes).
//! - 401/407 are answered with [`DigestClient::authenticate`] (§22.2),
//!   giving up when the realm rejects credentials it already saw. Each
//!   new REGISTER goes out without credentials and is answered once
//!   challenged, so every refresh uses a fresh nonce; one `DigestClient`
//!   lives as long as the registration so `nc` never repeats for a nonce.
//! - 423 Interval Too Brief is retried with the `Min-Expires` (§10.2.8).
//! - The granted expiry is the `expires` of our Contact in the 200, else
//!   the Expires header (§10.2.4), and a refresh is scheduled before it.
//! - Other failures and timeouts back off exponentially with jitter, so a
//!   registrar that comes back is not hit by every client at once.

use crate::auth::{AuthError, Credentials, DigestClient};
use crate::message::split_list;
use rsip::headers::UntypedHeader;
use rsip::{Header, Method, Request, Response};
use std::time::{Duration, Instant};

/// Expiry asked for when none is configured (RFC 3261 §10.2.1.1 suggests
/// 3600 s as the registrar default).
pub const DEFAULT_EXPIRES: u32 = 3600;
/// The first back-off delay after a failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(30);
/// The longest back-off delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(15 * 60);
/// Share of a back-off delay the jitter may take off (20 %).
const JITTER_PERCENT: u64 = 20;
/// Intervals below this are refreshed `REFRESH_MARGIN` before expiry
/// rather than at half-time.
const REFRESH_MARGIN: u32 = 5;

/// What to register.
#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    /// The registrar's URI, used as the Request-URI (§10.2: the domain of
    /// the AOR, e.g. `sip:carrier.example.net`).
    pub registrar: String,
    /// The address of record, `user@domain` or a full `sip:` URI; it goes
    /// in From and To (§10.2).
    pub aor: String,
    /// Our Contact URI, where the trunk should send calls
    /// (e.g. `sip:hotline@192.0.2.10:5060`).
    pub contact: String,
    /// The Via value without a branch (e.g. `SIP/2.0/UDP
    /// 192.0.2.10:5060;rport`); each request gets a fresh branch.
    pub via: String,
    /// The expiry to ask for, in seconds.
    pub expires: u32,
    /// Digest credentials, if the registrar challenges.
    pub credentials: Option<Credentials>,
    /// An outbound proxy URI: requests carry it as a loose-routing Route
    /// (§8.1.2) and [`Registration::next_hop`] names it.
    pub outbound_proxy: Option<String>,
    /// Seeds the back-off jitter; give each registration its own.
    pub jitter_seed: u64,
}

impl RegistrationConfig {
    /// A configuration asking for [`DEFAULT_EXPIRES`], without credentials
    /// or outbound proxy, with a random jitter seed.
    pub fn new(
        registrar: impl Into<String>,
        aor: impl Into<String>,
        contact: impl Into<String>,
        via: impl Into<String>,
    ) -> Self {
        Self {
            registrar: registrar.into(),
            aor: aor.into(),
            contact: contact.into(),
            via: via.into(),
            expires: DEFAULT_EXPIRES,
            credentials: None,
            outbound_proxy: None,
            jitter_seed: rand::random(),
        }
    }
}

/// Why a [`Registration`] cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// A configured URI does not parse.
    #[error("invalid {what} URI {value:?}")]
    InvalidUri {
        /// Which setting.
        what: &'static str,
        /// The offending value.
        value: String,
    },
}

/// Where the registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// Not registered and not trying (initially before the first REGISTER
    /// is answered, and after a successful unregister).
    Unregistered,
    /// A REGISTER is under way and no binding is known to be in place.
    Registering,
    /// The registrar holds our binding until `until`; a refresh is
    /// scheduled before then.
    Registered {
        /// When the binding expires unless refreshed.
        until: Instant,
    },
    /// The last attempt failed with `code` (408 for a transaction
    /// timeout). `retry_at` is when the next attempt goes out, or `None`
    /// when the registration gave up (credentials rejected, no
    /// credentials to answer a challenge, or a failed unregister).
    Failed {
        /// The final status code.
        code: u16,
        /// When the next attempt is due.
        retry_at: Option<Instant>,
    },
}

/// One binding kept alive at one registrar.
#[derive(Debug)]
pub struct Registration {
    config: RegistrationConfig,
    registrar: rsip::Uri,
    aor: String,
    call_id: String,
    from_tag: String,
    /// The CSeq of the last request built.
    cseq: u32,
    /// The expiry currently asked for; raised by a 423.
    asked_expires: u32,
    digest: Option<DigestClient>,
    state: RegistrationState,
    /// The request whose final response we wait for.
    in_flight: Option<Request>,
    /// A request ready to go at the next `poll_request` (a challenge
    /// answer), which takes precedence over `next_at`.
    ready: Option<Request>,
    /// When a new REGISTER is due.
    next_at: Option<Instant>,
    /// Consecutive failures, for the back-off exponent.
    failures: u32,
    /// Set by `unregister`: the next REGISTER removes the binding.
    unregistering: bool,
    /// Whether any REGISTER has gone out since the last `register`.
    sent_any: bool,
    rng: u64,
    last_now: Instant,
}

impl Registration {
    /// A registration whose first REGISTER is due at `now`.
    pub fn new(config: RegistrationConfig, now: Instant) -> Result<Self, RegisterError> {
        let aor = if config.aor.contains(':') {
            config.aor.clone()
        } else {
            format!("sip:{}", config.aor)
        };
        let registrar =
            parse_sip_uri(&config.registrar).ok_or_else(|| RegisterError::InvalidUri {
                what: "registrar",
                value: config.registrar.clone(),
            })?;
        for (what, value) in [
            ("AOR", Some(aor.as_str())),
            ("contact", Some(config.contact.as_str())),
            ("outbound proxy", config.outbound_proxy.as_deref()),
        ] {
            let Some(value) = value else { continue };
            if parse_sip_uri(value).is_none() {
                return Err(RegisterError::InvalidUri {
                    what,
                    value: value.to_owned(),
                });
            }
        }
        let host = registrar.host_with_port.host.to_string();
        Ok(Self {
            registrar,
            aor,
            call_id: crate::message::new_call_id(&host),
            from_tag: crate::message::new_tag(),
            cseq: 0,
            asked_expires: config.expires,
            digest: config.credentials.clone().map(DigestClient::new),
            state: RegistrationState::Unregistered,
            in_flight: None,
            ready: None,
            next_at: Some(now),
            failures: 0,
            unregistering: false,
            sent_any: false,
            rng: config.jitter_seed,
            last_now: now,
            config,
        })
    }

    /// The current state.
    pub fn state(&self) -> RegistrationState {
        self.state
    }

    /// The Call-ID every REGISTER of this registration carries.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The expiry the next REGISTER asks for (the configured one, or the
    /// registrar's `Min-Expires` after a 423).
    pub fn asked_expires(&self) -> u32 {
        self.asked_expires
    }

    /// Where to send requests: the outbound proxy if configured, else the
    /// registrar (§8.1.2).
    pub fn next_hop(&self) -> &str {
        self.config
            .outbound_proxy
            .as_deref()
            .unwrap_or(&self.config.registrar)
    }

    /// When [`poll_request`](Self::poll_request) next has something to
    /// send; `None` while waiting on a transaction or when idle for good.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ready.is_some() {
            return Some(self.last_now);
        }
        if self.in_flight.is_some() {
            return None;
        }
        self.next_at
    }

    /// The next REGISTER to send, if one is due at `now`. The caller runs
    /// it as a non-INVITE client transaction and reports its outcome to
    /// [`on_response`](Self::on_response) or
    /// [`on_timeout`](Self::on_timeout).
    pub fn poll_request(&mut self, now: Instant) -> Option<Request> {
        self.last_now = now;
        if let Some(req) = self.ready.take() {
            self.in_flight = Some(req.clone());
            return Some(req);
        }
        if self.in_flight.is_some() || self.next_at.is_none_or(|at| at > now) {
            return None;
        }
        self.next_at = None;
        let req = self.build();
        if !matches!(self.state, RegistrationState::Registered { .. }) && !self.unregistering {
            self.state = RegistrationState::Registering;
        }
        self.sent_any = true;
        self.in_flight = Some(req.clone());
        Some(req)
    }

    /// Removes our binding: the next REGISTER (right away, or once the one
    /// under way is answered) carries expires 0 (§10.2.2), and no further
    /// refreshes follow. With nothing ever sent, just stops.
    pub fn unregister(&mut self) {
        self.ready = None;
        if !self.sent_any {
            self.next_at = None;
            self.state = RegistrationState::Unregistered;
            return;
        }
        self.unregistering = true;
        if self.in_flight.is_none() {
            self.next_at = Some(self.last_now);
        }
    }

    /// Starts registering again at `now` after an unregister or after
    /// giving up (e.g. once the credentials are fixed).
    pub fn register(&mut self, credentials: Option<Credentials>, now: Instant) {
        self.last_now = now;
        if credentials.is_some() {
            self.config.credentials = credentials;
        }
        self.digest = self.config.credentials.clone().map(DigestClient::new);
        self.unregistering = false;
        self.failures = 0;
        self.ready = None;
        self.sent_any = false;
        if self.in_flight.is_none() {
            self.next_at = Some(now);
        }
    }

    /// Takes a response; returns false when it does not answer the
    /// REGISTER under way (other Call-ID or CSeq, or nothing under way),
    /// in which case nothing changes. Provisional responses are accepted
    /// and ignored.
    pub fn on_response(&mut self, response: &Response, now: Instant) -> bool {
        self.last_now = now;
        let Some(request) = self.in_flight.as_ref() else {
            return false;
        };
        if crate::message::call_id(response) != Some(self.call_id.as_str())
            || crate::message::cseq(response) != crate::message::cseq(request)
        {
            return false;
        }
        let code = response.status_code.code();
        if code < 200 {
            return true;
        }
        let Some(request) = self.in_flight.take() else {
            return false;
        };
        let removal = is_removal(&request);
        match code {
            200..=299 if removal => self.finish_unregister(RegistrationState::Unregistered),
            200..=299 => self.on_success(response, now),
            401 | 407 => self.on_challenge(&request, response, code, now),
            _ if removal => self.finish_unregister(RegistrationState::Failed {
                code,
                retry_at: None,
            }),
            423 => self.on_too_brief(response, code, now),
            _ => self.fail(code, retry_after(response), now),
        }
        true
    }

    /// The transaction carrying the REGISTER under way timed out (Timer F,
    /// or a transport error): treated as a 408 and backed off.
    pub fn on_timeout(&mut self, now: Instant) {
        self.last_now = now;
        match self.in_flight.take() {
            Some(request) if is_removal(&request) => {
                self.finish_unregister(RegistrationState::Failed {
                    code: 408,
                    retry_at: None,
                })
            }
            Some(_) => self.fail(408, None, now),
            None => {}
        }
    }

    fn on_success(&mut self, response: &Response, now: Instant) {
        self.failures = 0;
        let granted = granted_expires(response, &self.config.contact).unwrap_or(self.asked_expires);
        if granted == 0 {
            // §10.3: a registrar may only shorten, but a 0 means our binding
            // is gone; ask again after the back-off rather than loop.
            self.fail(200, None, now);
            return;
        }
        self.state = RegistrationState::Registered {
            until: now + Duration::from_secs(granted.into()),
        };
        self.next_at = Some(if self.unregistering {
            now
        } else {
            now + refresh_delay(granted)
        });
    }

    fn on_challenge(&mut self, request: &Request, response: &Response, code: u16, now: Instant) {
        let Some(digest) = self.digest.as_mut() else {
            self.give_up(code);
            return;
        };
        match digest.authenticate(request, response) {
            Ok(retry) => {
                if let Some((seq, _)) = crate::message::cseq(&retry) {
                    self.cseq = seq;
                }
                self.ready = Some(retry);
            }
            // The realm saw our credentials and refused them: retrying
            // would only lock the account.
            Err(AuthError::Rejected { .. }) => self.give_up(code),
            Err(_) => self.fail(code, None, now),
        }
    }

    fn on_too_brief(&mut self, response: &Response, code: u16, now: Instant) {
        let min = response.headers.iter().find_map(|h| match h {
            Header::MinExpires(m) => m.value().trim().parse::<u32>().ok(),
            _ => None,
        });
        match min {
            // Only a real increase: a registrar asking for what we already
            // asked would make us loop.
            Some(min) if min > self.asked_expires => {
                self.asked_expires = min;
                self.next_at = Some(now);
            }
            _ => self.fail(code, None, now),
        }
    }

    fn fail(&mut self, code: u16, retry_after: Option<Duration>, now: Instant) {
        if self.unregistering {
            // A REGISTER failed while an unregister waited on it: an older
            // binding may still stand, so remove it now.
            self.next_at = Some(now);
            self.state = RegistrationState::Failed {
                code,
                retry_at: Some(now),
            };
            return;
        }
        let delay = self.backoff().max(retry_after.unwrap_or_default());
        self.failures = self.failures.saturating_add(1);
        let at = now + delay;
        self.next_at = Some(at);
        self.state = RegistrationState::Failed {
            code,
            retry_at: Some(at),
        };
    }

    fn give_up(&mut self, code: u16) {
        self.next_at = None;
        self.unregistering = false;
        self.state = RegistrationState::Failed {
            code,
            retry_at: None,
        };
    }

    fn finish_unregister(&mut self, state: RegistrationState) {
        self.unregistering = false;
        self.next_at = None;
        self.state = state;
    }

    /// `BACKOFF_BASE · 2^failures`, capped at `BACKOFF_CAP`, minus up to
    /// `JITTER_PERCENT` % at random.
    fn backoff(&mut self) -> Duration {
        let exp = self.failures.min(16);
        let full = BACKOFF_BASE
            .saturating_mul(1u32 << exp)
            .min(BACKOFF_CAP)
            .as_millis() as u64;
        let jitter = self.next_random() % (full * JITTER_PERCENT / 100 + 1);
        Duration::from_millis(full - jitter)
    }

    /// splitmix64: deterministic from the seed, so tests can predict it.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn build(&mut self) -> Request {
        self.cseq = self.cseq.wrapping_add(1);
        let expires = if self.unregistering {
            0
        } else {
            self.asked_expires
        };
        let mut h = rsip::Headers::default();
        h.push(
            rsip::headers::Via::new(crate::dialog::replace_branch(
                &self.config.via,
                &crate::message::new_branch(),
            ))
            .into(),
        );
        h.push(rsip::headers::MaxForwards::new("70").into());
        if let Some(proxy) = &self.config.outbound_proxy {
            h.push(rsip::headers::Route::new(loose_route(proxy)).into());
        }
        h.push(rsip::headers::From::new(format!("<{}>;tag={}", self.aor, self.from_tag)).into());
        h.push(rsip::headers::To::new(format!("<{}>", self.aor)).into());
        h.push(rsip::headers::CallId::new(self.call_id.clone()).into());
        h.push(rsip::headers::CSeq::new(format!("{} REGISTER", self.cseq)).into());
        h.push(
            rsip::headers::Contact::new(format!("<{}>;expires={expires}", self.config.contact))
                .into(),
        );
        h.push(rsip::headers::Expires::new(expires.to_string()).into());
        h.push(rsip::headers::UserAgent::new(crate::USER_AGENT).into());
        h.push(rsip::headers::ContentLength::new("0").into());
        Request {
            method: Method::Register,
            uri: self.registrar.clone(),
            version: rsip::Version::V2,
            headers: h,
            body: Vec::new(),
        }
    }
}

/// When to refresh a binding granted for `granted` seconds: at half-time,
/// or `REFRESH_MARGIN` before expiry when that is earlier (short
/// intervals), but never sooner than 1 s.
pub fn refresh_delay(granted: u32) -> Duration {
    let secs = (granted / 2)
        .min(granted.saturating_sub(REFRESH_MARGIN))
        .max(1);
    Duration::from_secs(secs.into())
}

/// The expiry a 2xx grants our binding (§10.2.4): the `expires` parameter
/// of the Contact matching `contact`, else the Expires header. `None`
/// when the response says neither.
pub fn granted_expires(response: &Response, contact: &str) -> Option<u32> {
    let ours = uri_key(contact);
    let mut contact_expires = None;
    for h in response.headers.iter() {
        if let Header::Contact(c) = h {
            for element in split_list(c.value()) {
                let uri = match (element.find('<'), element.find('>')) {
                    (Some(a), Some(b)) if a < b => &element[a + 1..b],
                    _ => element.split(';').next().unwrap_or(""),
                };
                if uri_key(uri) == ours
                    && let Some(v) = expires_param(element)
                {
                    contact_expires = Some(v);
                }
            }
        }
    }
    contact_expires.or_else(|| {
        response.headers.iter().find_map(|h| match h {
            Header::Expires(e) => e.value().trim().parse::<u32>().ok(),
            _ => None,
        })
    })
}

/// Whether a REGISTER of ours removes the binding (expires 0).
fn is_removal(request: &Request) -> bool {
    request.headers.iter().any(|h| match h {
        Header::Expires(e) => e.value().trim() == "0",
        _ => false,
    })
}

/// A `sip:`/`sips:` URI without spaces (rsip alone accepts almost any
/// text as a host), trimmed of `<>`.
fn parse_sip_uri(value: &str) -> Option<rsip::Uri> {
    let v = value.trim().trim_start_matches('<').trim_end_matches('>');
    let scheme = v.split_once(':')?.0;
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips"))
        || v.contains(char::is_whitespace)
    {
        return None;
    }
    rsip::Uri::try_from(v).ok()
}

/// The `expires` header parameter of a Contact element, looking only
/// after the URI's `>` so a URI parameter is not taken for it.
fn expires_param(element: &str) -> Option<u32> {
    let params = match element.rfind('>') {
        Some(i) => &element[i + 1..],
        None => element.split_once(';').map_or("", |(_, p)| p),
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("expires") {
            v.trim().trim_matches('"').parse().ok()
        } else {
            None
        }
    })
}

/// A URI reduced to what identifies a binding for comparison: scheme,
/// user and lower-cased host with the default port filled in, without
/// parameters (registrars often reorder or add them).
fn uri_key(uri: &str) -> String {
    let uri = uri.trim();
    let base = uri.split([';', '?']).next().unwrap_or(uri);
    let (scheme, rest) = base.split_once(':').unwrap_or(("sip", base));
    let scheme = scheme.to_ascii_lowercase();
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (u, h),
        None => ("", rest),
    };
    let hostport = hostport.to_ascii_lowercase();
    let has_port = match hostport.rfind(']') {
        Some(i) => hostport[i..].contains(':'),
        None => hostport.contains(':'),
    };
    let port = if has_port {
        String::new()
    } else if scheme == "sips" {
        ":5061".into()
    } else {
        ":5060".into()
    };
    format!("{scheme}:{user}@{hostport}{port}")
}

/// A Route value for a proxy URI, adding `lr` (RFC 3261 §16.12.1.1: we
/// expect loose routing) unless present.
fn loose_route(proxy: &str) -> String {
    let inner = proxy.trim().trim_start_matches('<').trim_end_matches('>');
    if inner
        .split(';')
        .skip(1)
        .any(|p| p.trim().eq_ignore_ascii_case("lr"))
    {
        format!("<{inner}>")
    } else {
        format!("<{inner};lr>")
    }
}

/// The delay a `Retry-After` header asks for (§20.33), ignoring comments
/// and parameters.
fn retry_after(response: &Response) -> Option<Duration> {
    response.headers.iter().find_map(|h| match h {
        Header::RetryAfter(r) => r
            .value()
            .split(['(', ';'])
            .next()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(BACKOFF_CAP.as_secs() * 4))),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_halfway_or_margin() {
        assert_eq!(refresh_delay(3600), Duration::from_secs(1800));
        assert_eq!(refresh_delay(60), Duration::from_secs(30));
        assert_eq!(refresh_delay(8), Duration::from_secs(3));
        assert_eq!(refresh_delay(2), Duration::from_secs(1));
    }

    #[test]
    fn uri_keys_ignore_params_case_and_default_port() {
        assert_eq!(
            uri_key("sip:hotline@192.0.2.10;transport=udp"),
            uri_key("SIP:hotline@192.0.2.10:5060")
        );
        assert_ne!(uri_key("sip:a@h:5070"), uri_key("sip:a@h"));
        assert_eq!(uri_key("sip:a@[::1]"), "sip:a@[::1]:5060");
    }

    #[test]
    fn loose_route_adds_lr_once() {
        assert_eq!(loose_route("sip:p.example"), "<sip:p.example;lr>");
        assert_eq!(loose_route("<sip:p.example;lr>"), "<sip:p.example;lr>");
    }
}
