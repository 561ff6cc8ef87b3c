//! Outbound calls: the INVITE through a trunk (or straight to a SIP URI),
//! digest challenges, ringing, the ring timeout and CANCEL, and the ACK.

use rsip::headers::UntypedHeader;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hotline_sip::auth::{Credentials, DigestClient, select_challenges};
use hotline_sip::dialog::Dialog;
use hotline_sip::dialog::session_timer::SessionTimer;
use hotline_sip::message;
use hotline_sip::sdp::{MediaSession as SdpSession, SessionDescription};
use hotline_sip::transaction::{Destination, TransactionKey};
use rsip::{Method, Request, SipMessage};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::media::capabilities;
use super::{Leg, LegStart, advertised, local, rtp_address};
use crate::call::{
    CallCommand, CallDirection, CallEvent, CallHandle, CallId, Hangup, Outcome, Party, Refusal,
};
use crate::config::TrunkConfig;
use crate::engine::app::CallApp;
use crate::engine::core::{ALLOW, SUPPORTED};
use crate::engine::net::{resolve, transport_of};
use crate::engine::{Ctx, LEG_QUEUE, ToEngine, ToLeg};
use crate::rtp::MediaSockets;

/// A call to place.
#[derive(Debug, Clone)]
pub struct OutboundCall {
    /// The call's id; a fresh one when unset. The control plane passes the
    /// id it stored the call under, so both name the call alike.
    pub id: Option<CallId>,
    /// The trunk to call through. Without one, `to` must be a SIP URI and
    /// is called directly (a PBX, a phone on the LAN, a test peer).
    pub trunk: Option<String>,
    /// The number to call (E.164 through a trunk) or a `sip:` URI.
    pub to: String,
    /// The caller ID; the trunk's `caller_id` when unset.
    pub from: Option<String>,
    /// What the call does once answered.
    pub app: CallApp,
    /// How long to ring before giving up; `sip.ring_timeout_secs` when
    /// unset.
    pub ring_timeout: Option<Duration>,
}

/// Why a call could not even be attempted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    /// No trunk of that name is configured.
    #[error("no trunk named {0:?}")]
    UnknownTrunk(String),
    /// `to` is neither a phone number nor a SIP URI.
    #[error("cannot call {0:?}: not an E.164 number or sip: URI")]
    BadTarget(String),
    /// The trunk's or URI's host does not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// The server is draining or at its call limit.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// No RTP port is free.
    #[error("no RTP port free")]
    NoPorts,
}

struct Target {
    uri: rsip::Uri,
    destination: Destination,
    trunk: Option<TrunkConfig>,
    caller: String,
    /// Max-Forwards of the INVITE.
    max_forwards: u8,
}

async fn target(ctx: &Ctx, call: &OutboundCall) -> Result<Target, PlaceError> {
    let trunk = match &call.trunk {
        Some(name) => Some(
            ctx.router
                .trunk(name)
                .cloned()
                .ok_or_else(|| PlaceError::UnknownTrunk(name.clone()))?,
        ),
        None => None,
    };
    let bad = || PlaceError::BadTarget(call.to.chars().take(100).collect());
    let uri_text = if call.to.starts_with("sip:") || call.to.starts_with("sips:") {
        call.to.clone()
    } else {
        let t = trunk.as_ref().ok_or_else(bad)?;
        let number =
            message::normalize_e164(&call.to, ctx.config.sip.default_country_code.as_deref())
                .ok_or_else(bad)?;
        format!("sip:+{number}@{}", t.host)
    };
    let uri = rsip::Uri::try_from(uri_text.as_str()).map_err(|_| bad())?;
    let default_transport = trunk
        .as_ref()
        .map_or(hotline_sip::transport::Transport::Udp, |t| {
            crate::engine::net::configured(t.transport)
        });
    let hop = match trunk.as_ref().and_then(|t| t.outbound_proxy.clone()) {
        Some(proxy) => rsip::Uri::try_from(format!("sip:{proxy}").as_str()).map_err(|_| bad())?,
        None => uri.clone(),
    };
    let destination = resolve(&hop, default_transport)
        .await
        .map_err(|e| PlaceError::Resolve(e.to_string()))?;
    let caller = call
        .from
        .clone()
        .or_else(|| trunk.as_ref().and_then(|t| t.caller_id.clone()))
        .unwrap_or_else(|| "hotline".into());
    Ok(Target {
        uri,
        destination,
        trunk,
        caller,
        max_forwards: DEFAULT_MAX_FORWARDS,
    })
}

/// Max-Forwards of a call Hotline starts (RFC 3261 §8.1.1.6).
const DEFAULT_MAX_FORWARDS: u8 = 70;

/// Validates and starts an outbound call.
pub(crate) async fn place(ctx: Arc<Ctx>, call: OutboundCall) -> Result<CallHandle, PlaceError> {
    place_with_hops(ctx, call, DEFAULT_MAX_FORWARDS).await
}

/// [`place`] with the INVITE's Max-Forwards: a call that continues another
/// (a forward) passes on what is left of that call's hops, so that a
/// forwarding loop through other systems ends.
pub(crate) async fn place_with_hops(
    ctx: Arc<Ctx>,
    call: OutboundCall,
    max_forwards: u8,
) -> Result<CallHandle, PlaceError> {
    let mut target = target(&ctx, &call).await?;
    target.max_forwards = max_forwards.min(DEFAULT_MAX_FORWARDS);
    let (handle, endpoints) = CallHandle::new(
        call.id.clone().unwrap_or_else(CallId::random),
        CallDirection::Outbound,
        target.caller.clone(),
        call.to.clone(),
    );
    let slot = ctx.registry.admit(handle.clone())?;
    // RTCP on its own port unless the answer accepts rtcp-mux: both are
    // reserved because the offer must name the RTP port before we know.
    let sockets = ctx.ports.allocate(false).map_err(|_| PlaceError::NoPorts)?;
    let (tx, rx) = mpsc::channel(LEG_QUEUE);
    let transport = transport_of(target.destination.transport);
    let (host, port) = advertised(&ctx, transport, target.destination.addr.ip());
    let sip_call_id = message::new_call_id(&host);
    let local = capabilities(
        rtp_address(&ctx, target.destination.addr.ip()),
        sockets.port(),
        target.trunk.as_ref().map(|t| t.codecs.as_slice()),
    );
    let leg = Leg::new(LegStart {
        sdp: SdpSession::new(local, rand::random::<u32>().into()),
        ctx: ctx.clone(),
        handle: handle.clone(),
        endpoints,
        slot,
        rx,
        sip_call_id: sip_call_id.clone(),
        app: call.app.clone(),
        transport,
        flow: None,
        host,
        port,
        trunk: call.trunk.clone(),
    });
    ctx.engine
        .send(ToEngine::Attach {
            call_id: sip_call_id,
            tx,
        })
        .await
        .map_err(|_| PlaceError::Refused(Refusal::Draining))?;
    let ring = call
        .ring_timeout
        .unwrap_or(Duration::from_secs(ctx.config.sip.ring_timeout_secs));
    tokio::spawn(outbound(leg, target, sockets, ring));
    Ok(handle)
}

async fn outbound(mut leg: Leg, target: Target, sockets: MediaSockets, ring: Duration) {
    let hangup = match leg.invite(&target, sockets, ring).await {
        Ok(()) => leg.run().await,
        Err(h) => h,
    };
    leg.finish(hangup).await;
}

impl Leg {
    fn initial_invite(&mut self, target: &Target) -> Request {
        let offer = self.sdp.create_offer().to_string().into_bytes();
        let mut h = rsip::Headers::default();
        h.push(rsip::headers::Via::new(self.via()).into());
        h.push(rsip::headers::MaxForwards::new(target.max_forwards.to_string()).into());
        h.push(
            rsip::headers::From::new(format!(
                "<sip:{}@{}>;tag={}",
                target.caller,
                self.host,
                message::new_tag()
            ))
            .into(),
        );
        h.push(rsip::headers::To::new(format!("<{}>", target.uri)).into());
        h.push(rsip::headers::CallId::new(self.sip_call_id.clone()).into());
        h.push(rsip::headers::CSeq::new("1 INVITE").into());
        if let Some(proxy) = target
            .trunk
            .as_ref()
            .and_then(|t| t.outbound_proxy.as_ref())
        {
            h.push(rsip::headers::Route::new(format!("<sip:{proxy};lr>")).into());
        }
        h.push(rsip::headers::Contact::new(format!("<{}>", self.contact_uri())).into());
        h.push(rsip::headers::Allow::new(ALLOW).into());
        h.push(rsip::headers::Supported::new(SUPPORTED).into());
        h.push(rsip::headers::UserAgent::new(hotline_sip::USER_AGENT).into());
        h.push(rsip::headers::ContentType::new("application/sdp").into());
        h.push(rsip::headers::ContentLength::new(offer.len().to_string()).into());
        Request {
            method: Method::Invite,
            uri: target.uri.clone(),
            version: rsip::Version::V2,
            headers: h,
            body: offer,
        }
    }

    async fn send_invite(&mut self, invite: &Request, target: &Target) -> Option<TransactionKey> {
        let key = TransactionKey::client(&SipMessage::Request(invite.clone())).ok()?;
        self.to_engine(ToEngine::Send {
            owner: self.sip_call_id.clone(),
            request: invite.clone(),
            destination: target.destination,
        })
        .await;
        Some(key)
    }

    /// From INVITE to answer (`Ok`) or to the end of an unanswered call.
    async fn invite(
        &mut self,
        target: &Target,
        sockets: MediaSockets,
        ring: Duration,
    ) -> Result<(), Hangup> {
        let mut invite = self.initial_invite(target);
        let Some(mut key) = self.send_invite(&invite, target).await else {
            return Err(local(Outcome::Failed, "cannot build INVITE"));
        };
        info!(call = %self.handle.id, to = %target.uri, via = %target.destination.addr, "calling");
        let mut sockets = Some(sockets);
        let mut digest: Option<DigestClient> = None;
        let mut ringing = false;
        // Who gave up, when we CANCEL: the ring timer or a command.
        let mut canceled: Option<Hangup> = None;
        let ring_until = tokio::time::Instant::now() + ring;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(ring_until), if canceled.is_none() => {
                    info!(call = %self.handle.id, "no answer within the ring timeout, canceling");
                    self.to_engine(ToEngine::Cancel { key: key.clone() }).await;
                    canceled = Some(Hangup {
                        outcome: Outcome::NoAnswer,
                        by: Party::Local,
                        sip_code: Some(487),
                        reason: "ring timeout".into(),
                    });
                }
                cmd = self.commands.recv(), if canceled.is_none() => {
                    if matches!(cmd, Some(CallCommand::Hangup) | None) {
                        self.to_engine(ToEngine::Cancel { key: key.clone() }).await;
                        canceled = Some(Hangup {
                            outcome: Outcome::Canceled,
                            by: Party::Local,
                            sip_code: Some(487),
                            reason: "canceled before answer".into(),
                        });
                    }
                }
                msg = self.rx.recv() => {
                    let Some(msg) = msg else {
                        return Err(local(Outcome::Failed, "engine stopped"));
                    };
                    let response = match msg {
                        ToLeg::Response { key: k, response } if k == key => response,
                        ToLeg::TransportError { key: k } if k == key => {
                            return Err(Hangup {
                                outcome: Outcome::Failed,
                                by: Party::Local,
                                sip_code: Some(503),
                                reason: "trunk unreachable".into(),
                            });
                        }
                        _ => continue,
                    };
                    let code = response.status_code.code();
                    match code {
                        100 => {}
                        101..=199 => {
                            if !ringing {
                                ringing = true;
                                self.emit(CallEvent::Ringing);
                            }
                            // Early media (183 with SDP): start listening and
                            // sending at once so nothing of it is lost.
                            if self.media.is_none() && !response.body.is_empty()
                                && let Ok(answer) = SessionDescription::parse(&response.body)
                                && let Ok((negotiated, _)) = self.sdp.receive_answer(&answer)
                                && let Some(s) = sockets.take()
                                && let Err(e) = self.start_media(s, &negotiated)
                            {
                                warn!(call = %self.handle.id, error = %e, "early media failed to start");
                            }
                        }
                        200..=299 => return self.answered_2xx(&invite, &response, sockets.take(), canceled.is_some()).await,
                        401 | 407 => {
                            let Some(t) = target.trunk.as_ref() else {
                                return Err(Hangup::from_final_response(Some(code), "", false));
                            };
                            let (Some(user), Some(pass)) = (&t.username, &t.password) else {
                                return Err(Hangup::from_final_response(Some(code), "no credentials for the trunk", false));
                            };
                            if let Some(realm) = &t.realm
                                && !select_challenges(&response)
                                    .is_ok_and(|cs| cs.iter().any(|c| &c.realm == realm))
                            {
                                return Err(Hangup::from_final_response(Some(code), "challenge for another realm", false));
                            }
                            let client = digest.get_or_insert_with(|| {
                                DigestClient::new(Credentials {
                                    username: user.clone(),
                                    password: pass.clone(),
                                })
                            });
                            match client.authenticate(&invite, &response) {
                                Ok(next) if canceled.is_none() => {
                                    invite = next;
                                    match self.send_invite(&invite, target).await {
                                        Some(k) => key = k,
                                        None => return Err(local(Outcome::Failed, "cannot build INVITE")),
                                    }
                                }
                                Ok(_) => return Err(canceled.take().unwrap_or_else(|| local(Outcome::Canceled, "canceled"))),
                                Err(e) => {
                                    warn!(call = %self.handle.id, error = %e, "trunk rejected our credentials");
                                    return Err(Hangup::from_final_response(Some(code), "authentication failed", false));
                                }
                            }
                        }
                        _ => {
                            let reason = response.status_code.to_string();
                            let reason = reason.split_once(' ').map_or("", |(_, r)| r).to_owned();
                            return Err(match canceled {
                                Some(c) if code == 487 => c,
                                _ => Hangup::from_final_response(Some(code), &reason, false),
                            });
                        }
                    }
                }
            }
        }
    }

    /// The call was answered: dialog, media, ACK.
    async fn answered_2xx(
        &mut self,
        invite: &Request,
        response: &rsip::Response,
        sockets: Option<MediaSockets>,
        canceled: bool,
    ) -> Result<(), Hangup> {
        let dialog = Dialog::new_uac(invite, response)
            .map_err(|e| local(Outcome::Failed, &format!("unusable 200 OK: {e}")))?;
        self.dialog = Some(dialog);
        // §13.2.2.4: every 2xx is ACKed, even one we no longer want.
        self.resend_ack(response).await;
        if self.media.is_none() {
            let negotiated = SessionDescription::parse(&response.body)
                .ok()
                .and_then(|a| self.sdp.receive_answer(&a).ok())
                .map(|(n, _)| n);
            let started = match (negotiated, sockets) {
                (Some(n), Some(s)) => self.start_media(s, &n).is_ok(),
                _ => false,
            };
            if !started {
                warn!(call = %self.handle.id, "200 OK without a usable SDP answer, hanging up");
                return Err(self
                    .hang_up(local(Outcome::Failed, "no usable SDP answer"))
                    .await
                    .unwrap_or_else(|| local(Outcome::Failed, "no usable SDP answer")));
            }
        }
        if canceled {
            // CANCEL and 200 crossed: the call was answered after all, but
            // nobody wants it any more.
            return Err(self
                .hang_up(local(Outcome::Canceled, "answered after cancel"))
                .await
                .unwrap_or_else(|| local(Outcome::Canceled, "answered after cancel")));
        }
        self.session_timer =
            SessionTimer::as_uac(&response.headers).map(|t| (t, std::time::Instant::now()));
        self.answered = Some(SystemTime::now());
        info!(call = %self.handle.id, "call answered by the far end");
        self.emit(CallEvent::Answered);
        self.start_app();
        Ok(())
    }
}
