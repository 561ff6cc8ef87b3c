//! Admission of new inbound INVITEs: who may call (trunk by address or by
//! digest credentials, or a local network), which number they reach, and
//! whether there is room. Anything refused gets its final response here,
//! without a call task.

use rsip::headers::UntypedHeader;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_sip::auth::{ChallengeKind, DigestServer, ServerConfig, Verification};
use hotline_sip::message;
use hotline_sip::transaction::{Destination, TransactionKey};
use rsip::{Request, Response};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::blocked::caller_e164;
use super::leg::{self, InboundSetup};
use super::numbers::NumberAction;
use super::{Ctx, LEG_QUEUE, ToLeg};
use crate::call::{CallDirection, CallHandle, CallId, Refusal};
use crate::routing::{LogDecision, RefusalLog, RouteError, Source};

pub(crate) struct Admission {
    refusals: RefusalLog,
    /// Users of the trunks with `inbound_auth`, if any.
    digest: Option<DigestServer>,
}

impl Admission {
    pub fn new(ctx: &Ctx, now: Instant) -> Admission {
        let mut digest = None;
        for t in ctx.router.auth_trunks() {
            let (Some(user), Some(pass)) = (&t.username, &t.password) else {
                continue;
            };
            let realm = t
                .realm
                .clone()
                .or_else(|| ctx.config.sip.domain.clone())
                .unwrap_or_else(|| "hotline".into());
            digest
                .get_or_insert_with(|| {
                    DigestServer::with_random_secret(ServerConfig::new(realm), now)
                })
                .add_user(user.clone(), pass.clone());
        }
        Admission {
            refusals: RefusalLog::new(Duration::from_secs(60), 4096),
            digest,
        }
    }

    /// Admits the INVITE and starts its call task, or returns the final
    /// response that refuses it.
    pub fn invite(
        &mut self,
        ctx: &Arc<Ctx>,
        key: &TransactionKey,
        request: &Request,
        source: Destination,
        now: Instant,
    ) -> Result<mpsc::Sender<ToLeg>, Box<Response>> {
        let refuse = |status: u16, reason: Option<&str>| {
            Box::new(message::response(
                request,
                status,
                reason,
                Some(&message::new_tag()),
            ))
        };
        if ctx.registry.is_draining() {
            let mut r = refuse(503, Some("Service Unavailable (shutting down)"));
            let after = ctx.config.sip.drain_secs.max(1).to_string();
            r.headers.push(rsip::headers::RetryAfter::new(after).into());
            return Err(r);
        }
        let ip = source.addr.ip();
        let mut origin = ctx.router.source(ip);
        let needs_auth = match origin {
            Source::Trunk(t) => t.inbound_auth,
            Source::Unknown => self.digest.is_some(),
            Source::Local => false,
        };
        if needs_auth {
            let Some(digest) = self.digest.as_mut() else {
                return Err(refuse(403, None));
            };
            match digest.verify(request, ChallengeKind::Www, now) {
                Verification::Authorized { username } => {
                    let trunk = ctx
                        .router
                        .auth_trunks()
                        .find(|t| t.username.as_deref() == Some(username.as_str()));
                    match (origin, trunk) {
                        // An address match must also be the same trunk's
                        // credentials.
                        (Source::Trunk(t), Some(a)) if t.name != a.name => {
                            return Err(refuse(403, None));
                        }
                        (_, Some(a)) => origin = Source::Trunk(a),
                        (_, None) => return Err(refuse(403, None)),
                    }
                }
                Verification::Stale => return Err(self.challenge(request, now, true)),
                Verification::Rejected(reason) => {
                    if !matches!(reason, hotline_sip::auth::RejectReason::NoCredentials) {
                        self.log_refusal(ip, now, &format!("digest rejected: {reason:?}"));
                    }
                    return Err(self.challenge(request, now, false));
                }
            }
        }
        if matches!(origin, Source::Unknown) {
            self.log_refusal(ip, now, "not a configured trunk");
            return Err(refuse(403, None));
        }
        let user = message::request_user(request).unwrap_or("");
        let dialled = message::normalize_e164(user, ctx.config.sip.default_country_code.as_deref())
            .map(|digits| format!("+{digits}"))
            .unwrap_or_else(|| user.to_owned());
        // Numbers configured through the API come first: they are what an
        // operator changes at run time.
        // The organization of a stored number: its blocked callers are
        // declined.
        let mut org = None;
        let number = if let Some(route) = ctx.numbers.get(&dialled) {
            if let (Some(required), Source::Trunk(t)) = (&route.trunk, origin)
                && *required != t.name
            {
                info!(number = %dialled, from = %ip, trunk = %t.name, "number does not take calls from this trunk");
                return Err(refuse(404, None));
            }
            // Business hours are decided here, as the call arrives.
            match route.action.now() {
                NumberAction::Answer(n) => {
                    org = Some(route.org_id);
                    n
                }
                NumberAction::Refuse { status, reason } => {
                    info!(number = %dialled, from = %ip, status, "inbound call refused: {reason}");
                    return Err(refuse(status, None));
                }
                // `now` resolves every schedule; refused rather than
                // panicking the engine task, should that ever change.
                NumberAction::Scheduled(_) => return Err(refuse(500, None)),
            }
        } else {
            match ctx.router.number(origin, &dialled) {
                Ok(n) => n.clone(),
                Err(RouteError::Forbidden) => return Err(refuse(403, None)),
                Err(e) => {
                    info!(number = %dialled, from = %ip, "{e}");
                    return Err(refuse(404, None));
                }
            }
        };
        let trunk = match origin {
            Source::Trunk(t) => Some(t.name.clone()),
            _ => None,
        };
        let caller = from_user(request);
        // A blocked caller still gets a call task, which declines the call
        // before answering it: the call is recorded like any other, with
        // the reason, and nothing of the number's application starts.
        let declined = org.is_some_and(|org| {
            caller_e164(&caller, ctx.config.sip.default_country_code.as_deref())
                .is_some_and(|e164| ctx.blocked.is_blocked(&org, &e164))
        });
        if declined {
            info!(number = %dialled, caller = %caller, "inbound call from a blocked contact: declining");
        }
        let (handle, endpoints) =
            CallHandle::new(CallId::random(), CallDirection::Inbound, caller, dialled);
        let slot = match ctx.registry.admit(handle.clone()) {
            Ok(slot) => slot,
            Err(Refusal::Draining) => {
                let mut r = refuse(503, Some("Service Unavailable (shutting down)"));
                r.headers.push(rsip::headers::RetryAfter::new("30").into());
                return Err(r);
            }
            Err(Refusal::Full) => {
                warn!(
                    max = ctx.config.sip.max_calls,
                    "call limit reached, refusing"
                );
                let mut r = refuse(503, Some("Service Unavailable (call limit)"));
                r.headers.push(rsip::headers::RetryAfter::new("5").into());
                return Err(r);
            }
        };
        let (tx, rx) = mpsc::channel(LEG_QUEUE);
        leg::spawn_inbound(
            ctx.clone(),
            InboundSetup {
                key: key.clone(),
                invite: request.clone(),
                source,
                number,
                trunk,
                handle,
                endpoints,
                slot,
                declined,
            },
            rx,
        );
        Ok(tx)
    }

    fn challenge(&self, request: &Request, now: Instant, stale: bool) -> Box<Response> {
        let mut r = message::response(request, 401, None, Some(&message::new_tag()));
        if let Some(d) = &self.digest {
            for h in d.challenge_headers(ChallengeKind::Www, now, stale) {
                r.headers.push(h);
            }
        }
        Box::new(r)
    }

    fn log_refusal(&mut self, ip: std::net::IpAddr, now: Instant, why: &str) {
        match self.refusals.refuse(ip, now) {
            LogDecision::First => warn!(source = %ip, "INVITE refused: {why}"),
            LogDecision::Summary { suppressed } => {
                warn!(source = %ip, suppressed, "INVITEs refused: {why}")
            }
            LogDecision::Quiet => {}
        }
    }
}

/// The caller as records show it: the From URI's user, else the URI.
fn from_user(request: &Request) -> String {
    use rsip::prelude::*;
    request
        .from_header()
        .ok()
        .and_then(|f| f.uri().ok())
        .map(|u| u.user().map(str::to_owned).unwrap_or_else(|| u.to_string()))
        .unwrap_or_default()
}
