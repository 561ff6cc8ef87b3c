//! Inbound calls: from the admitted INVITE to 200 OK (or the final
//! response that refuses it), then the answered call's loop.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hotline_sip::dialog::Dialog;
use hotline_sip::dialog::session_timer::{SessionTimer, UasDecision, min_se_header, uas_decide};
use hotline_sip::message;
use hotline_sip::sdp::{MediaSession as SdpSession, SessionDescription};
use hotline_sip::transaction::{Destination, TransactionKey};
use rsip::headers::UntypedHeader;
use rsip::{Header, Request};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::forward::Forwarded;
use super::media::{capabilities, offer_wants_mux};
use super::{Leg, LegStart, Retransmit, T1, advertised, contact_uri, rtp_address};
use crate::call::{CallEndpoints, CallEvent, CallHandle, CallSlot, Hangup, Outcome, Party};
use crate::config::{NumberConfig, NumberMode};
use crate::engine::app::CallApp;
use crate::engine::blocked::{BLOCKED_REASON, BLOCKED_STATUS};
use crate::engine::core::{ALLOW, SUPPORTED};
use crate::engine::net::transport_of;
use crate::engine::{Ctx, ToLeg};
use crate::rtp::{FRAME_SAMPLES, PCM_RATE};
use hotline_media::tones::{Region, ToneGenerator, ToneSpec};

/// Everything admission decided about a new inbound call.
pub(crate) struct InboundSetup {
    pub key: TransactionKey,
    pub invite: Request,
    pub source: Destination,
    pub number: NumberConfig,
    pub trunk: Option<String>,
    pub handle: CallHandle,
    pub endpoints: CallEndpoints,
    pub slot: CallSlot,
    /// The caller is blocked by the number's organization: decline with
    /// 603 before anything else.
    pub declined: bool,
}

/// Starts the call task of an admitted INVITE.
pub(crate) fn spawn_inbound(ctx: Arc<Ctx>, setup: InboundSetup, rx: mpsc::Receiver<ToLeg>) {
    tokio::spawn(inbound(ctx, setup, rx));
}

/// Extensions a request requires that we do not support (RFC 3261 §8.2.2.3).
fn unsupported_required(request: &Request) -> Vec<String> {
    let mut out = Vec::new();
    for h in request.headers.iter() {
        let value = match h {
            Header::Require(r) => r.value().to_owned(),
            Header::Other(n, v) if n.eq_ignore_ascii_case("require") => v.clone(),
            _ => continue,
        };
        for tag in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if !tag.eq_ignore_ascii_case("timer") {
                out.push(tag.to_owned());
            }
        }
    }
    out
}

async fn inbound(ctx: Arc<Ctx>, s: InboundSetup, rx: mpsc::Receiver<ToLeg>) {
    let peer_ip = s.source.addr.ip();
    let transport = transport_of(s.source.transport);
    let (host, port) = advertised(&ctx, transport, peer_ip);
    let sip_call_id = message::call_id(&s.invite).unwrap_or("").trim().to_owned();
    let trunk = s
        .trunk
        .as_deref()
        .and_then(|n| ctx.router.trunk(n))
        .cloned();
    let (app, own_audio) = match CallApp::for_number(&s.number) {
        // A declined call never runs its application: echo is the one
        // that holds nothing (no agent request, no prompt).
        _ if s.declined => (CallApp::Echo, None),
        Some(app) => (app, None),
        // A forwarded call's audio goes to the bridge once it is answered.
        None => {
            let (tx, rx) = mpsc::channel(1);
            (CallApp::Stream(tx), Some(rx))
        }
    };
    let mut leg = Leg::new(LegStart {
        sdp: SdpSession::new(
            capabilities(rtp_address(&ctx, peer_ip), 0, None),
            rand::random::<u32>().into(),
        ),
        ctx: ctx.clone(),
        handle: s.handle,
        endpoints: s.endpoints,
        slot: s.slot,
        rx,
        sip_call_id,
        app,
        transport,
        flow: s.source.is_reliable().then_some(s.source),
        host,
        port,
        trunk: s.trunk.clone(),
    });
    let to_tag = message::new_tag();
    if s.declined {
        let hangup = leg
            .refuse(
                &s.key,
                &s.invite,
                &to_tag,
                BLOCKED_STATUS,
                Vec::new(),
                BLOCKED_REASON,
            )
            .await;
        leg.finish(hangup).await;
        return;
    }
    let hangup = match leg
        .answer(
            &s.key,
            &s.invite,
            &to_tag,
            &s.number,
            trunk.as_ref(),
            peer_ip,
        )
        .await
    {
        Ok(forwarded) => {
            if let (Some(target), Some(own)) = (forwarded, own_audio) {
                tokio::spawn(super::forward::bridge(target, own));
            }
            leg.run().await
        }
        Err(h) => h,
    };
    leg.finish(hangup).await;
}

impl Leg {
    /// A final response refusing the INVITE, and the record of it.
    pub(super) async fn refuse(
        &self,
        key: &TransactionKey,
        invite: &Request,
        to_tag: &str,
        status: u16,
        extra: Vec<Header>,
        reason: &str,
    ) -> Hangup {
        let mut r = message::response(invite, status, None, Some(to_tag));
        for h in extra {
            r.headers.push(h);
        }
        self.respond(key, r).await;
        info!(call = %self.handle.id, status, reason, "inbound call refused");
        Hangup {
            outcome: Outcome::Failed,
            by: Party::Local,
            sip_code: Some(status),
            reason: reason.into(),
        }
    }

    /// Negotiates, rings if the number says so (or forwards the call and
    /// waits for its target), and answers. `Err` carries how the call ended
    /// before it was answered; a forward's answered target comes back for
    /// the bridge.
    async fn answer(
        &mut self,
        key: &TransactionKey,
        invite: &Request,
        to_tag: &str,
        number: &NumberConfig,
        trunk: Option<&crate::config::TrunkConfig>,
        peer_ip: std::net::IpAddr,
    ) -> Result<Option<Forwarded>, Hangup> {
        let unsupported = unsupported_required(invite);
        if !unsupported.is_empty() {
            let h = Header::Other("Unsupported".into(), unsupported.join(", "));
            return Err(self
                .refuse(
                    key,
                    invite,
                    to_tag,
                    420,
                    vec![h],
                    "required extension not supported",
                )
                .await);
        }
        let offer = if invite.body.is_empty() {
            None
        } else {
            match SessionDescription::parse(&invite.body) {
                Ok(o) => Some(o),
                Err(e) => {
                    let w = Header::Other("Warning".into(), format!("399 {} \"{e}\"", self.host));
                    return Err(self
                        .refuse(key, invite, to_tag, 400, vec![w], "unparseable SDP")
                        .await);
                }
            }
        };
        let decision = uas_decide(
            &invite.headers,
            self.ctx.config.sip.min_se_secs,
            // 0 turns our own session timer off; a caller's request is
            // still honoured.
            Some(self.ctx.config.sip.session_expires_secs).filter(|s| *s > 0),
        );
        if let UasDecision::Reject { min_se } = decision {
            return Err(self
                .refuse(
                    key,
                    invite,
                    to_tag,
                    422,
                    vec![min_se_header(min_se)],
                    "session interval too small",
                )
                .await);
        }
        let mux = offer.as_ref().is_some_and(offer_wants_mux);
        let sockets = match self.ctx.ports.allocate(mux) {
            Ok(s) => s,
            Err(e) => {
                warn!(call = %self.handle.id, error = %e, "no RTP port free");
                let ra = rsip::headers::RetryAfter::new("5").into();
                return Err(self
                    .refuse(key, invite, to_tag, 503, vec![ra], "no RTP port free")
                    .await);
            }
        };
        let local = capabilities(
            rtp_address(&self.ctx, peer_ip),
            sockets.port(),
            trunk.map(|t| t.codecs.as_slice()),
        );
        self.sdp = SdpSession::new(local, rand::random::<u32>().into());
        let (body, negotiated) = match &offer {
            Some(o) => match self.sdp.receive_offer(o) {
                Ok((answer, negotiated, _)) => (answer, Some(negotiated)),
                Err(e) => {
                    let w = Header::Other("Warning".into(), e.warning(&self.host));
                    return Err(self
                        .refuse(key, invite, to_tag, 488, vec![w], &e.to_string())
                        .await);
                }
            },
            // Late offer: ours goes in the 200, the answer comes in the ACK.
            None => (self.sdp.create_offer(), None),
        };
        let contact = format!("<{}>", contact_uri(&self.host, self.port, self.transport));

        // Early media (183 with the answer, ringback in the audio) needs the
        // RTP session before the 200; otherwise it starts with the answer.
        let forwarding = number.mode == NumberMode::Forward;
        let early =
            (number.ring_secs > 0 || forwarding) && number.early_media && negotiated.is_some();
        let mut sockets = Some(sockets);
        if let Some(n) = negotiated.as_ref().filter(|_| early)
            && let Some(s) = sockets.take()
            && let Err(e) = self.start_media(s, n)
        {
            warn!(call = %self.handle.id, error = %e, "media session failed to start");
            return Err(self
                .refuse(key, invite, to_tag, 500, Vec::new(), "media session failed")
                .await);
        }
        // Dropped unused (the target hung up) if answering fails below.
        let mut forwarded = None;
        if forwarding {
            forwarded = Some(
                self.forward(key, invite, to_tag, number, early.then_some(&body))
                    .await?,
            );
        } else if number.ring_secs > 0 {
            let secs = Duration::from_secs(number.ring_secs);
            self.ring(key, invite, to_tag, secs, early.then_some(&body))
                .await?;
        }
        match (&negotiated, sockets) {
            (Some(n), Some(s)) => {
                if let Err(e) = self.start_media(s, n) {
                    warn!(call = %self.handle.id, error = %e, "media session failed to start");
                    return Err(self
                        .refuse(key, invite, to_tag, 500, Vec::new(), "media session failed")
                        .await);
                }
            }
            (None, Some(s)) => self.reserved = Some(s),
            _ => {}
        }
        let mut ok = message::response(invite, 200, None, Some(to_tag));
        ok.headers
            .push(rsip::headers::Contact::new(contact.clone()).into());
        ok.headers.push(rsip::headers::Allow::new(ALLOW).into());
        ok.headers
            .push(rsip::headers::Supported::new(SUPPORTED).into());
        if let UasDecision::Accept {
            session_expires: Some(se),
            require_timer,
        } = decision
        {
            ok.headers.push(se.header());
            if require_timer {
                ok.headers.push(rsip::headers::Require::new("timer").into());
            }
            self.session_timer = Some((SessionTimer::as_uas(se), Instant::now()));
        }
        message::set_body(&mut ok, "application/sdp", body.to_string().into_bytes());
        self.dialog = match Dialog::new_uas(invite, &ok, &contact) {
            Ok(d) => Some(d),
            Err(e) => {
                return Err(self
                    .refuse(key, invite, to_tag, 400, Vec::new(), &e.to_string())
                    .await);
            }
        };
        self.retransmit = Some(Retransmit {
            key: key.clone(),
            response: ok.clone(),
            next: Instant::now() + T1,
            interval: T1,
            give_up: Instant::now() + T1 * 64,
        });
        self.respond(key, ok).await;
        self.answered = Some(SystemTime::now());
        info!(call = %self.handle.id, from = %self.handle.info.from, to = %self.handle.info.to, "call answered");
        self.emit(CallEvent::Answered);
        self.start_app();
        Ok(forwarded)
    }
}

impl Leg {
    /// Rings for `secs`: 180, or 183 with the SDP answer and a ringback
    /// tone in the audio (early media). Ends early with 487 when the
    /// caller cancels, or 603 when the call is hung up locally.
    async fn ring(
        &mut self,
        key: &TransactionKey,
        invite: &Request,
        to_tag: &str,
        secs: Duration,
        early_answer: Option<&SessionDescription>,
    ) -> Result<(), Hangup> {
        let ringback = self.send_ringing(key, invite, to_tag, early_answer).await;
        let until = tokio::time::Instant::now() + secs;
        let result = loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => break Ok(()),
                msg = self.rx.recv() => match msg {
                    Some(ToLeg::Cancelled) | None => {
                        let r = message::response(invite, 487, None, Some(to_tag));
                        self.respond(key, r).await;
                        break Err(Hangup {
                            outcome: Outcome::Canceled,
                            by: Party::Remote,
                            sip_code: Some(487),
                            reason: "caller canceled".into(),
                        });
                    }
                    Some(_) => {}
                },
                cmd = self.commands.recv() => {
                    if matches!(cmd, Some(crate::call::CallCommand::Hangup) | None) {
                        break Err(self
                            .refuse(key, invite, to_tag, 603, Vec::new(), "declined before answer")
                            .await);
                    }
                }
            }
        };
        self.stop_ringback(ringback).await;
        result
    }

    /// Sends 180, or 183 with the SDP answer (early media) and starts a
    /// ringback tone in the audio: the task to stop when ringing ends.
    pub(super) async fn send_ringing(
        &self,
        key: &TransactionKey,
        invite: &Request,
        to_tag: &str,
        early_answer: Option<&SessionDescription>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let contact = contact_uri(&self.host, self.port, self.transport);
        let status = if early_answer.is_some() { 183 } else { 180 };
        let mut ringing = message::response(invite, status, None, Some(to_tag));
        message::set_contact(&mut ringing, &contact);
        if let Some(sdp) = early_answer {
            message::set_body(
                &mut ringing,
                "application/sdp",
                sdp.to_string().into_bytes(),
            );
        }
        self.respond(key, ringing).await;
        match (&self.media, early_answer) {
            (Some(m), Some(_)) => Some(tokio::spawn(ringback(
                m.clone(),
                ringback_region(self.ctx.config.sip.default_country_code.as_deref()),
            ))),
            _ => None,
        }
    }

    /// Stops the ringback [`send_ringing`](Self::send_ringing) started.
    pub(super) async fn stop_ringback(&self, task: Option<tokio::task::JoinHandle<()>>) {
        if let Some(task) = task {
            task.abort();
            if let Some(m) = &self.media {
                let _ = m.flush_with_fade().await;
            }
        }
    }
}

/// The ringback tone plan callers expect, by country code.
pub(crate) fn ringback_region(country_code: Option<&str>) -> Region {
    match country_code {
        Some("1") => Region::Us,
        Some("44") => Region::Uk,
        _ => Region::Eu,
    }
}

/// Plays ringback into the call until aborted.
pub(crate) async fn ringback(media: crate::rtp::MediaHandle, region: Region) {
    let Ok(mut tone) = ToneGenerator::new(&ToneSpec::ringback(region), PCM_RATE) else {
        return;
    };
    loop {
        let mut frame = vec![0i16; FRAME_SAMPLES];
        tone.fill(&mut frame);
        if media.play(frame).await.is_err() {
            return;
        }
    }
}
