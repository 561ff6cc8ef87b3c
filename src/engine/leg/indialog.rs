//! What an answered call does with the messages the engine hands it:
//! requests inside the dialog, ACKs, and the responses to its own requests.

use rsip::headers::UntypedHeader;
use std::time::Instant;

use hotline_sip::dialog::RequestCheck;
use hotline_sip::dialog::session_timer::{SessionTimer, UasDecision, min_se_header, uas_decide};
use hotline_sip::message::{self, TransferStatus, dtmf_info_from_request, parse_refer_notify};
use hotline_sip::sdp::SessionDescription;
use hotline_sip::transaction::{Destination, TransactionKey};
use rsip::{Method, Request, Response};
use tracing::{debug, info};

use super::{Leg, Pending, Retransmit, T1};
use crate::call::{CallEvent, DigitSource, Hangup, Outcome, Party};
use crate::engine::ToLeg;
use crate::engine::core::{ALLOW, SUPPORTED};

impl Leg {
    pub(super) async fn on_message(&mut self, msg: ToLeg) -> Option<Hangup> {
        match msg {
            ToLeg::Request {
                key,
                request,
                source,
            } => self.on_request(key, request, source).await,
            ToLeg::Ack(ack) => {
                self.on_ack(&ack).await;
                None
            }
            ToLeg::Response { key, response } => self.on_response(key, response).await,
            ToLeg::Stray(response) => {
                // Our ACK was lost and the 2xx came again (§13.2.2.4).
                self.resend_ack(&response).await;
                None
            }
            ToLeg::TransportError { key } => {
                let purpose = self.pending.remove(&key);
                debug!(call = %self.handle.id, ?purpose, "transport error");
                if purpose == Some(Pending::Refer) {
                    // Whoever asked for the transfer must learn that it
                    // went nowhere, as for a refused REFER.
                    self.transferring = false;
                    self.emit(CallEvent::TransferStatus { sip_code: 503 });
                }
                None
            }
            ToLeg::Cancelled | ToLeg::AckTimeout => None,
        }
    }

    pub(super) async fn on_ack(&mut self, ack: &Request) {
        if self.retransmit.is_none() {
            return;
        }
        self.retransmit = None;
        // A 2xx that carried the offer gets its answer in the ACK
        // (RFC 3264 §4, late offer).
        if self.sdp.pending_offer().is_some()
            && !ack.body.is_empty()
            && let Ok(answer) = SessionDescription::parse(&ack.body)
        {
            match self.sdp.receive_answer(&answer) {
                Ok((negotiated, change)) => match self.reserved.take() {
                    Some(sockets) => {
                        if let Err(e) = self.start_media(sockets, &negotiated) {
                            debug!(call = %self.handle.id, error = %e, "media failed to start");
                        }
                        self.start_app();
                    }
                    None => self.apply_media_change(&negotiated, change).await,
                },
                Err(e) => debug!(call = %self.handle.id, error = %e, "unusable answer in ACK"),
            }
        }
    }

    async fn on_request(
        &mut self,
        key: TransactionKey,
        request: Request,
        _source: Destination,
    ) -> Option<Hangup> {
        let dialog = self.dialog.as_mut()?;
        if !dialog.matches_request(&request) {
            let r = dialog.response(&request, 481, Vec::new(), Vec::new());
            self.respond(&key, r).await;
            return None;
        }
        match dialog.receive_request(&request) {
            Ok(RequestCheck::Accept { .. }) => {}
            Ok(RequestCheck::RejectOutOfOrder) => {
                let mut r = dialog.response(&request, 500, Vec::new(), Vec::new());
                r.headers.push(rsip::headers::RetryAfter::new("1").into());
                self.respond(&key, r).await;
                return None;
            }
            Err(_) => {
                let r = dialog.response(&request, 400, Vec::new(), Vec::new());
                self.respond(&key, r).await;
                return None;
            }
        }
        match request.method {
            Method::Bye => {
                self.reply(&key, &request, 200).await;
                Some(Hangup::bye(Party::Remote))
            }
            Method::Invite | Method::Update => {
                self.on_offer(key, request).await;
                None
            }
            Method::Info => {
                self.on_info(key, request).await;
                None
            }
            Method::Notify => self.on_notify(key, request).await,
            Method::Options => {
                self.reply(&key, &request, 200).await;
                None
            }
            // Hotline transfers calls but is not itself transferred.
            Method::Refer => {
                self.reply(&key, &request, 603).await;
                None
            }
            _ => {
                let dialog = self.dialog.as_ref()?;
                let mut r = dialog.response(&request, 405, Vec::new(), Vec::new());
                r.headers.push(rsip::headers::Allow::new(ALLOW).into());
                self.respond(&key, r).await;
                None
            }
        }
    }

    /// A response without body from the dialog.
    async fn reply(&self, key: &TransactionKey, request: &Request, status: u16) {
        if let Some(d) = &self.dialog {
            let r = d.response(request, status, Vec::new(), Vec::new());
            self.respond(key, r).await;
        }
    }

    /// A re-INVITE or UPDATE: a new offer (hold, resume, codec or address
    /// change) and/or a session refresh.
    async fn on_offer(&mut self, key: TransactionKey, request: Request) {
        let is_invite = request.method == Method::Invite;
        if is_invite
            && (self.retransmit.is_some() || self.pending.values().any(|p| *p == Pending::ReInvite))
        {
            // §14.2: one INVITE at a time in each direction.
            self.reply(&key, &request, 491).await;
            return;
        }
        let min_se = self.ctx.config.sip.min_se_secs;
        let decision = uas_decide(&request.headers, min_se, None);
        if let UasDecision::Reject { min_se } = decision {
            let Some(d) = &self.dialog else { return };
            let r = d.response(&request, 422, vec![min_se_header(min_se)], Vec::new());
            self.respond(&key, r).await;
            return;
        }
        let body;
        let mut change = None;
        if request.body.is_empty() {
            // An offerless re-INVITE asks for our offer in the 200
            // (RFC 3264 §8; a session refresh often is one).
            body = if is_invite {
                Some(self.sdp.create_offer().to_string().into_bytes())
            } else {
                None
            };
        } else {
            let offer = match SessionDescription::parse(&request.body) {
                Ok(o) => o,
                Err(_) => {
                    self.reply(&key, &request, 400).await;
                    return;
                }
            };
            match self.sdp.receive_offer(&offer) {
                Ok((answer, negotiated, c)) => {
                    body = Some(answer.to_string().into_bytes());
                    change = Some((negotiated, c));
                }
                Err(e) => {
                    // RFC 3264 §8: a refused re-offer leaves the session as it was.
                    let Some(d) = &self.dialog else { return };
                    let warning = rsip::Header::Other("Warning".into(), e.warning(&self.host));
                    let r = d.response(&request, 488, vec![warning], Vec::new());
                    self.respond(&key, r).await;
                    return;
                }
            }
        }
        let mut extra = vec![
            rsip::headers::Allow::new(ALLOW).into(),
            rsip::headers::Supported::new(SUPPORTED).into(),
        ];
        if let UasDecision::Accept {
            session_expires: Some(se),
            require_timer,
        } = decision
        {
            extra.push(se.header());
            if require_timer {
                extra.push(rsip::headers::Require::new("timer").into());
            }
            self.session_timer = Some((SessionTimer::as_uas(se), Instant::now()));
        } else if let Some((t, _)) = self.session_timer {
            // Any accepted re-INVITE/UPDATE refreshes the session.
            self.session_timer = Some((t, Instant::now()));
        }
        let Some(d) = &self.dialog else { return };
        let mut r = d.response(&request, 200, extra, Vec::new());
        if let Some(b) = body {
            message::set_body(&mut r, "application/sdp", b);
        }
        if is_invite {
            self.retransmit = Some(Retransmit {
                key: key.clone(),
                response: r.clone(),
                next: Instant::now() + T1,
                interval: T1,
                give_up: Instant::now() + T1 * 64,
            });
        }
        self.respond(&key, r).await;
        if let Some((negotiated, c)) = change {
            self.apply_media_change(&negotiated, c).await;
        }
    }

    /// SIP INFO: DTMF relay (RFC 2976 with `application/dtmf-relay`), or an
    /// empty keep-alive.
    async fn on_info(&mut self, key: TransactionKey, request: Request) {
        if request.body.is_empty() {
            self.reply(&key, &request, 200).await;
            return;
        }
        match dtmf_info_from_request(&request) {
            Ok(info) => {
                self.reply(&key, &request, 200).await;
                self.digit(info.digit, DigitSource::SipInfo);
            }
            Err(e) => {
                debug!(call = %self.handle.id, error = %e, "INFO not understood");
                let Some(d) = &self.dialog else { return };
                let accept = rsip::Header::Other(
                    "Accept".into(),
                    "application/dtmf-relay, application/dtmf".into(),
                );
                let r = d.response(&request, 415, vec![accept], Vec::new());
                self.respond(&key, r).await;
            }
        }
    }

    /// NOTIFY of the `refer` subscription a transfer created (RFC 3515).
    async fn on_notify(&mut self, key: TransactionKey, request: Request) -> Option<Hangup> {
        let notify = match parse_refer_notify(&request) {
            Ok(n) => n,
            Err(e) => {
                debug!(call = %self.handle.id, error = %e, "NOTIFY not understood");
                self.reply(&key, &request, 489).await;
                return None;
            }
        };
        self.reply(&key, &request, 200).await;
        let (code, done) = match &notify.status {
            TransferStatus::Progressing(f) => (f.code, false),
            TransferStatus::Succeeded(f) => (f.code, true),
            TransferStatus::Failed(f) => (f.code, true),
            TransferStatus::Ended(f) => (f.as_ref().map_or(0, |f| f.code), true),
        };
        if code != 0 {
            self.emit(CallEvent::TransferStatus { sip_code: code });
        }
        info!(call = %self.handle.id, sip_code = code, "transfer progress");
        if done {
            self.transferring = false;
        }
        if matches!(notify.status, TransferStatus::Succeeded(_)) {
            // The caller is with the new party now: leave the call.
            return self
                .hang_up(Hangup {
                    outcome: Outcome::Transferred,
                    by: Party::Local,
                    sip_code: Some(code),
                    reason: "blind transfer completed".into(),
                })
                .await;
        }
        None
    }

    /// Responses to our in-dialog requests.
    async fn on_response(&mut self, key: TransactionKey, response: Response) -> Option<Hangup> {
        let code = response.status_code.code();
        let purpose = if code >= 200 {
            self.pending.remove(&key)
        } else {
            self.pending.get(&key).copied()
        };
        if let Some(d) = &mut self.dialog {
            let _ = d.receive_response(&response);
        }
        match (purpose, code) {
            (Some(Pending::ReInvite), 200..=299) => {
                self.ack_2xx().await;
                if !response.body.is_empty()
                    && let Ok(answer) = SessionDescription::parse(&response.body)
                    && let Ok((negotiated, change)) = self.sdp.receive_answer(&answer)
                {
                    self.apply_media_change(&negotiated, change).await;
                }
                if let Some((t, _)) = self.session_timer {
                    self.session_timer = Some((t, Instant::now()));
                }
                None
            }
            (Some(Pending::ReInvite), 300..) => {
                self.sdp.cancel_offer();
                if matches!(code, 408 | 481) {
                    // §12.2.1.2: the dialog is gone.
                    return Some(remote_failure(code, "re-INVITE failed"));
                }
                None
            }
            (Some(Pending::Refer), 300..) => {
                self.transferring = false;
                info!(call = %self.handle.id, sip_code = code, "transfer refused");
                self.emit(CallEvent::TransferStatus { sip_code: code });
                None
            }
            _ => None,
        }
    }

    /// ACK for a 2xx to our re-INVITE, straight to the dialog's target.
    async fn ack_2xx(&mut self) {
        let via = self.via();
        let Some(dialog) = self.dialog.clone() else {
            return;
        };
        let Ok(ack) = dialog.ack(&via, Vec::new(), Vec::new()) else {
            return;
        };
        let Some(destination) = self.next_hop(&dialog).await else {
            return;
        };
        self.to_engine(crate::engine::ToEngine::Stateless {
            message: rsip::SipMessage::Request(ack),
            destination,
        })
        .await;
    }

    pub(super) async fn resend_ack(&mut self, response: &Response) {
        let is_invite = message::cseq(response).is_some_and(|(_, m)| m == Method::Invite);
        if is_invite && (200..300).contains(&response.status_code.code()) {
            self.ack_2xx().await;
        }
    }
}

fn remote_failure(code: u16, reason: &str) -> Hangup {
    Hangup {
        outcome: Outcome::Failed,
        by: Party::Remote,
        sip_code: Some(code),
        reason: reason.into(),
    }
}
