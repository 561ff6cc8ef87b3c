//! One call: the task that owns a SIP dialog, its SDP state and its RTP
//! session, from the first INVITE to the last BYE.
//!
//! [`uas`] answers inbound calls, [`uac`] places outbound ones; once a call
//! is answered both run [`Leg::run`], where [`indialog`] handles what the
//! peer sends and the call's commands, timers and media events are served.

mod forward;
mod indialog;
mod media;
mod uac;
mod uas;

use rsip::headers::UntypedHeader;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hotline_sip::dialog::Dialog;
use hotline_sip::dialog::session_timer::SessionTimer;
use hotline_sip::message;
use hotline_sip::sdp::{MediaChange, MediaSession as SdpSession, NegotiatedMedia};
use hotline_sip::transaction::{Destination, TransactionKey};
use hotline_sip::transport::Transport;
use rsip::{Method, Response, SipMessage};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info};

use super::app::{self, AppIo, CallApp};
use super::net::{resolve, uri_host};
use super::{Ctx, ToEngine, ToLeg};
use crate::call::{
    CallCommand, CallEvent, CallHandle, CallRecord, CallSlot, DigitMerger, DigitSource, Hangup,
    Outcome, Party,
};
use crate::rtp::{MediaEvent, MediaHandle, MediaOutputs, MediaStats, SessionConfig};

pub use uac::{OutboundCall, PlaceError};
pub(crate) use uac::{place, place_with_hops};
pub(crate) use uas::{InboundSetup, ringback, ringback_region, spawn_inbound};

/// What one of our client transactions is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// A mid-call re-INVITE (session refresh, hold, resume).
    ReInvite,
    /// BYE.
    Bye,
    /// REFER for a blind transfer.
    Refer,
}

/// A 2xx to an INVITE we keep sending until the ACK (§13.3.1.4).
#[derive(Debug)]
struct Retransmit {
    key: TransactionKey,
    response: Response,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// T1 and T2 of RFC 3261 §17.1.1.1.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

/// The state every answered call has.
pub(crate) struct Leg {
    ctx: Arc<Ctx>,
    handle: CallHandle,
    publish: broadcast::Sender<CallEvent>,
    commands: mpsc::Receiver<CallCommand>,
    rx: mpsc::Receiver<ToLeg>,
    _slot: CallSlot,
    sip_call_id: String,
    dialog: Option<Dialog>,
    sdp: SdpSession,
    media: Option<MediaHandle>,
    media_events: Option<mpsc::Receiver<MediaEvent>>,
    media_done: Option<oneshot::Receiver<MediaStats>>,
    pcm: Option<mpsc::Receiver<Vec<i16>>>,
    /// RTP sockets held for a late-offer call until the ACK brings the
    /// answer.
    reserved: Option<crate::rtp::MediaSockets>,
    app: CallApp,
    app_task: Option<JoinHandle<()>>,
    /// Our transport for the call and where in-dialog requests go when the
    /// call came in over a stream (reuse the connection, RFC 5923 style).
    transport: Transport,
    flow: Option<Destination>,
    /// Our SIP host and port as the peer reaches them.
    host: String,
    port: u16,
    pending: HashMap<TransactionKey, Pending>,
    retransmit: Option<Retransmit>,
    /// The session timer and when the session was last refreshed.
    session_timer: Option<(SessionTimer, Instant)>,
    merger: DigitMerger,
    started: SystemTime,
    answered: Option<SystemTime>,
    held_by_peer: bool,
    /// A blind transfer under way: the call ends when its NOTIFY says the
    /// new call was answered.
    transferring: bool,
    /// A transfer was asked of this call: bridged, it ends as
    /// [`Outcome::Transferred`].
    transfer_asked: bool,
    /// The call this one is bridged to (a transfer's fallback, a
    /// forward): it is hung up when this one ends.
    bridged_with: Option<crate::call::CallId>,
    /// The trunk the call came in on or went out through, for calls the
    /// call's application places (a transfer's fallback, a forward).
    trunk: Option<String>,
    /// A `forward` number's call whose target answered: the target, for
    /// the record's hang-up reason.
    forwarded_to: Option<String>,
}

/// What differs between an inbound and an outbound call's start.
pub(crate) struct LegStart {
    pub ctx: Arc<Ctx>,
    pub handle: CallHandle,
    pub endpoints: crate::call::CallEndpoints,
    pub slot: CallSlot,
    pub rx: mpsc::Receiver<ToLeg>,
    pub sip_call_id: String,
    pub sdp: SdpSession,
    pub app: CallApp,
    pub transport: Transport,
    pub flow: Option<Destination>,
    pub host: String,
    pub port: u16,
    pub trunk: Option<String>,
}

impl Leg {
    /// A call that has not been answered yet.
    fn new(s: LegStart) -> Leg {
        Leg {
            ctx: s.ctx,
            handle: s.handle,
            publish: s.endpoints.events,
            commands: s.endpoints.commands,
            rx: s.rx,
            _slot: s.slot,
            sip_call_id: s.sip_call_id,
            dialog: None,
            sdp: s.sdp,
            media: None,
            media_events: None,
            media_done: None,
            pcm: None,
            reserved: None,
            app: s.app,
            app_task: None,
            transport: s.transport,
            flow: s.flow,
            host: s.host,
            port: s.port,
            pending: HashMap::new(),
            retransmit: None,
            session_timer: None,
            merger: DigitMerger::new(),
            started: SystemTime::now(),
            answered: None,
            held_by_peer: false,
            transferring: false,
            transfer_asked: false,
            bridged_with: None,
            trunk: s.trunk,
            forwarded_to: None,
        }
    }

    /// `Via` for a request of ours; the dialog layer puts a fresh branch in.
    fn via(&self) -> String {
        format!(
            "SIP/2.0/{} {}:{};rport;branch={}",
            self.transport.via_token(),
            self.host,
            self.port,
            message::new_branch()
        )
    }

    /// Reports an event to the call's subscribers and the registry-wide
    /// stream.
    fn emit(&self, event: CallEvent) {
        self.ctx.registry.publish(&self.handle.id, event.clone());
        let _ = self.publish.send(event);
    }

    /// Our Contact URI.
    fn contact_uri(&self) -> String {
        contact_uri(&self.host, self.port, self.transport)
    }

    async fn to_engine(&self, msg: ToEngine) {
        // The engine only stops at shutdown, when nothing is left to say.
        let _ = self.ctx.engine.send(msg).await;
    }

    async fn respond(&self, key: &TransactionKey, response: Response) {
        self.to_engine(ToEngine::Respond {
            key: key.clone(),
            response,
        })
        .await;
    }

    /// Where an in-dialog request goes: the connection the call came in on
    /// for streams, else the first route or the remote target.
    async fn next_hop(&self, dialog: &Dialog) -> Option<Destination> {
        if let Some(flow) = self.flow {
            return Some(flow);
        }
        let hop = match dialog.route_set.first() {
            Some(r) => hotline_sip::dialog::headers::addr_uri(r).to_owned(),
            None => dialog.remote_target.clone(),
        };
        let uri = rsip::Uri::try_from(hop.as_str()).ok()?;
        resolve(&uri, self.transport).await.ok()
    }

    /// Sends an in-dialog request and remembers what it is for.
    async fn send_in_dialog(
        &mut self,
        method: Method,
        extra: Vec<rsip::Header>,
        body: Vec<u8>,
        purpose: Pending,
    ) -> Option<TransactionKey> {
        let via = self.via();
        let dialog = self.dialog.as_mut()?;
        let request = match dialog.request(method, &via, extra, body) {
            Ok(r) => r,
            Err(e) => {
                debug!(call = %self.handle.id, error = %e, "cannot build in-dialog request");
                return None;
            }
        };
        let dialog = self.dialog.clone()?;
        let destination = self.next_hop(&dialog).await?;
        let key = TransactionKey::client(&SipMessage::Request(request.clone())).ok()?;
        self.pending.insert(key.clone(), purpose);
        self.to_engine(ToEngine::Send {
            owner: self.sip_call_id.clone(),
            request,
            destination,
        })
        .await;
        Some(key)
    }

    /// Starts the RTP session for `negotiated` on the sockets reserved for
    /// the call, and the application once the call is answered.
    fn start_media(
        &mut self,
        sockets: crate::rtp::MediaSockets,
        negotiated: &NegotiatedMedia,
    ) -> Result<(), crate::rtp::SessionError> {
        let config =
            SessionConfig::from_rtp_config(media::remote_media(negotiated), &self.ctx.config.rtp);
        let (handle, outputs) =
            crate::rtp::MediaSession::start_on(self.ctx.media.handle(), config, sockets)?;
        let MediaOutputs {
            pcm,
            events,
            finished,
        } = outputs;
        self.media = Some(handle);
        self.media_events = Some(events);
        self.media_done = Some(finished);
        self.pcm = Some(pcm);
        self.held_by_peer = negotiated.remote_hold;
        Ok(())
    }

    /// Acts on a new negotiation's result mid-call.
    async fn apply_media_change(&mut self, negotiated: &NegotiatedMedia, change: MediaChange) {
        let Some(m) = self.media.clone() else { return };
        if change.codec_changed || change.remote_addr_changed {
            let _ = m.update_remote(media::remote_media(negotiated)).await;
        }
        if negotiated.remote_hold != self.held_by_peer {
            self.held_by_peer = negotiated.remote_hold;
            let _ = if negotiated.remote_hold {
                m.hold().await
            } else {
                m.resume().await
            };
            info!(call = %self.handle.id, held = negotiated.remote_hold, "hold state changed by the peer");
            self.emit(CallEvent::Hold {
                held: negotiated.remote_hold,
            });
        }
    }

    /// Starts the call's application (once, when answered).
    fn start_app(&mut self) {
        if self.app_task.is_some() {
            return;
        }
        let (Some(media), Some(pcm)) = (self.media.clone(), self.pcm.take()) else {
            return;
        };
        let io = AppIo {
            handle: self.handle.clone(),
            media,
            pcm,
            events: self.publish.subscribe(),
            publish: self.publish.clone(),
            registry: self.ctx.registry.clone(),
            trunk: self.trunk.clone(),
        };
        let run = app::run(self.ctx.clone(), self.app.clone(), io);
        // The echo app only moves frames between the session's queues, 50
        // times a second each way: on the media runtime those hand-offs
        // stay on one thread instead of waking a control-plane worker.
        self.app_task = Some(if matches!(self.app, CallApp::Echo) {
            self.ctx.media.handle().spawn(run)
        } else {
            tokio::spawn(run)
        });
    }

    /// A digit from any road, reported once.
    fn digit(&mut self, digit: char, source: DigitSource) {
        if self.merger.accept(digit, source, Instant::now()) {
            info!(call = %self.handle.id, %digit, ?source, "DTMF");
            self.emit(CallEvent::Dtmf { digit, source });
        }
    }

    /// The answered call's main loop; returns how it ended.
    async fn run(&mut self) -> Hangup {
        loop {
            let wake = self.next_deadline();
            let mut media_events = self.media_events.take();
            let outcome = tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(msg) => self.on_message(msg).await,
                    None => Some(local(Outcome::Failed, "engine stopped")),
                },
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    // Every handle is gone: nobody can hang up any more,
                    // so the call must not outlive them.
                    None => self.hang_up(local(Outcome::Completed, "call handle dropped")).await,
                },
                ev = recv_opt(&mut media_events) => self.on_media_event(ev).await,
                () = tokio::time::sleep_until(wake.into()) => self.on_timer().await,
            };
            if self.media_events.is_none() {
                self.media_events = media_events;
            }
            if let Some(h) = outcome {
                return h;
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut at = far;
        if let Some(r) = &self.retransmit {
            at = at.min(r.next).min(r.give_up);
        }
        if let Some((t, refreshed)) = &self.session_timer {
            if let Some(r) = t.refresh_at(*refreshed) {
                at = at.min(r);
            }
            if let Some(e) = t.expires_at(*refreshed) {
                at = at.min(e);
            }
        }
        at
    }

    async fn on_timer(&mut self) -> Option<Hangup> {
        let now = Instant::now();
        if let Some(r) = &mut self.retransmit {
            if now >= r.give_up {
                self.retransmit = None;
                // §13.3.1.4: no ACK means the session is not established.
                return self
                    .hang_up(local(Outcome::Failed, "no ACK for 200 OK"))
                    .await;
            }
            if now >= r.next {
                r.interval = (r.interval * 2).min(T2);
                r.next = now + r.interval;
                let (key, response) = (r.key.clone(), r.response.clone());
                self.respond(&key, response).await;
            }
        }
        if let Some((timer, refreshed)) = self.session_timer {
            if timer.expires_at(refreshed).is_some_and(|e| now >= e) {
                return self
                    .hang_up(local(Outcome::Failed, "session timer expired"))
                    .await;
            }
            if timer.refresh_at(refreshed).is_some_and(|r| now >= r) {
                // Counted from now, so a lost refresh is retried a half
                // interval later rather than in a tight loop.
                self.session_timer = Some((timer, now));
                self.refresh_session().await;
            }
        }
        None
    }

    /// A session refresh (RFC 4028 §7.4): a re-INVITE with the unchanged SDP.
    async fn refresh_session(&mut self) {
        if self.pending.values().any(|p| *p == Pending::ReInvite) {
            return;
        }
        let offer = self.sdp.create_offer().to_string().into_bytes();
        let mut extra = vec![
            rsip::headers::ContentType::new("application/sdp").into(),
            rsip::headers::Supported::new(super::core::SUPPORTED).into(),
        ];
        if let Some((t, _)) = &self.session_timer {
            extra.push(rsip::Header::Other(
                "Session-Expires".into(),
                format!("{};refresher=uac", t.interval.as_secs()),
            ));
        }
        self.send_in_dialog(Method::Invite, extra, offer, Pending::ReInvite)
            .await;
    }

    async fn on_media_event(&mut self, ev: Option<MediaEvent>) -> Option<Hangup> {
        match ev {
            Some(MediaEvent::Receive(hotline_media::receive::ReceiveEvent::Digit(d)))
                if d.duration.is_none() =>
            {
                let source = match d.source {
                    hotline_media::receive::DigitSource::Rfc4733 => DigitSource::Rfc4733,
                    hotline_media::receive::DigitSource::InBand => DigitSource::InBand,
                };
                self.digit(d.digit.to_char(), source);
                None
            }
            Some(MediaEvent::Timeout) => {
                info!(call = %self.handle.id, "no RTP for the inactivity timeout, hanging up");
                self.hang_up(Hangup {
                    outcome: Outcome::MediaTimeout,
                    by: Party::Local,
                    sip_code: None,
                    reason: "RTP inactivity timeout".into(),
                })
                .await
            }
            Some(MediaEvent::Latched(addr)) => {
                debug!(call = %self.handle.id, %addr, "RTP latched");
                None
            }
            Some(_) => None,
            None => {
                // The media task ended by itself (it never does unless its
                // sockets failed): the call cannot go on without audio.
                self.media_events = None;
                self.hang_up(local(Outcome::Failed, "media session ended"))
                    .await
            }
        }
    }

    async fn on_command(&mut self, cmd: CallCommand) -> Option<Hangup> {
        match cmd {
            CallCommand::Hangup => {
                self.hang_up(local(Outcome::Completed, "local hang up"))
                    .await
            }
            CallCommand::StopAudio => {
                if let Some(m) = &self.media {
                    let _ = m.flush_with_fade().await;
                }
                None
            }
            CallCommand::SendDtmf { digits } => {
                if let Some(m) = self.media.clone() {
                    for c in digits.chars() {
                        if let Some(d) = hotline_media::dtmf::Digit::from_char(c) {
                            let _ = m.send_dtmf(d, Duration::from_millis(100)).await;
                        }
                    }
                }
                None
            }
            CallCommand::Transfer { target } => {
                self.transfer(&target).await;
                None
            }
            CallCommand::Bridged { with } => {
                info!(call = %self.handle.id, with = %with, "bridged");
                self.bridged_with = Some(with.clone());
                self.emit(CallEvent::Bridged { with });
                None
            }
        }
    }

    /// Sends REFER for a blind transfer (RFC 3515).
    async fn transfer(&mut self, target: &str) {
        if self.transferring {
            // One REFER at a time: a second would race the first's outcome.
            info!(call = %self.handle.id, "transfer already under way");
            self.emit(CallEvent::TransferStatus { sip_code: 491 });
            return;
        }
        // Even a REFER that cannot be built may end in a bridge.
        self.transfer_asked = true;
        let domain = self.host.clone();
        let refer_to = if target.starts_with("sip:")
            || target.starts_with("sips:")
            || target.starts_with("tel:")
            || target.starts_with('<')
        {
            target.to_owned()
        } else {
            match message::refer_to_number(target, &domain) {
                Ok(v) => v,
                Err(e) => {
                    info!(call = %self.handle.id, error = %e, "transfer target refused");
                    self.emit(CallEvent::TransferStatus { sip_code: 400 });
                    return;
                }
            }
        };
        let headers = match message::refer_headers(&refer_to, None) {
            Ok(h) => h,
            Err(e) => {
                info!(call = %self.handle.id, error = %e, "transfer target refused");
                self.emit(CallEvent::TransferStatus { sip_code: 400 });
                return;
            }
        };
        info!(call = %self.handle.id, to = %refer_to, "blind transfer");
        self.transferring = true;
        self.send_in_dialog(Method::Refer, headers, Vec::new(), Pending::Refer)
            .await;
    }

    /// Ends an answered call from our side with BYE. The BYE's transaction
    /// lives on in the engine, so the call need not wait for its answer.
    async fn hang_up(&mut self, hangup: Hangup) -> Option<Hangup> {
        self.send_in_dialog(Method::Bye, Vec::new(), Vec::new(), Pending::Bye)
            .await;
        if let Some(d) = &mut self.dialog {
            d.terminate();
        }
        Some(hangup)
    }

    /// Tears the call down and reports its record; the last thing a call
    /// task does.
    async fn finish(mut self, mut hangup: Hangup) {
        if let Some(task) = self.app_task.take() {
            // The voice agent and the announcement end by themselves when
            // the call does (their audio and events close), then conclude
            // the call (a summary, the flow's outcome, a voicemail cut short
            // by the caller hanging up, which is how most end): they are
            // left to finish.
            if !matches!(self.app, CallApp::Agent(_) | CallApp::Announce(_)) {
                task.abort();
            }
        }
        if let Some(m) = self.media.take() {
            let _ = m.stop().await;
        }
        let stats = match self.media_done.take() {
            Some(done) => tokio::time::timeout(Duration::from_secs(1), done)
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        };
        if let Some(other) = &self.bridged_with {
            // The bridge is one conversation: whichever side leaves ends it.
            if let Some(h) = self.ctx.registry.get(other) {
                let _ = h.command(CallCommand::Hangup);
            }
            if self.transfer_asked && hangup.outcome == Outcome::Completed {
                hangup.outcome = Outcome::Transferred;
                hangup.reason = format!("bridged transfer ended: {}", hangup.reason);
            }
        }
        if let Some(to) = &self.forwarded_to {
            hangup.reason = format!("forwarded to {to}: {}", hangup.reason);
        }
        let record = CallRecord {
            id: self.handle.id.clone(),
            direction: self.handle.info.direction,
            from: self.handle.info.from.clone(),
            to: self.handle.info.to.clone(),
            started: self.started,
            answered: self.answered,
            ended: SystemTime::now(),
            hangup,
            sip_call_id: self.sip_call_id.clone(),
            bridged_with: self.bridged_with.clone(),
        };
        info!(
            call = %record.id,
            outcome = ?record.hangup.outcome,
            by = ?record.hangup.by,
            sip_code = record.hangup.sip_code,
            reason = %record.hangup.reason,
            answered = record.answered.is_some(),
            rtp_sent = stats.map(|s| s.rtp_sent),
            rtp_received = stats.map(|s| s.rtp_received),
            "call ended"
        );
        self.emit(CallEvent::Ended(Box::new(record)));
        self.to_engine(ToEngine::Detach {
            call_id: self.sip_call_id.clone(),
        })
        .await;
    }
}

/// A hang-up by Hotline.
fn local(outcome: Outcome, reason: &str) -> Hangup {
    Hangup {
        outcome,
        by: Party::Local,
        sip_code: None,
        reason: reason.into(),
    }
}

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// `sip:hotline@host:port`, with the transport for streams.
pub(crate) fn contact_uri(host: &str, port: u16, transport: Transport) -> String {
    match transport {
        Transport::Udp => format!("sip:hotline@{host}:{port}"),
        t => format!(
            "sip:hotline@{host}:{port};transport={}",
            t.via_token().to_ascii_lowercase()
        ),
    }
}

/// Our advertised SIP host and port for a call with `peer`.
pub(crate) fn advertised(ctx: &Ctx, transport: Transport, peer: std::net::IpAddr) -> (String, u16) {
    let bound = ctx
        .transport
        .local_addr(transport)
        .or_else(|| ctx.transport.local_addr(Transport::Udp));
    let (ip, port) = match bound {
        Some(b) => (
            super::net::advertised_ip(ctx.config.sip.public_ip, b.ip(), peer),
            b.port(),
        ),
        None => (peer, 5060),
    };
    (uri_host(ip), port)
}

/// Our RTP address for SDP.
pub(crate) fn rtp_address(ctx: &Ctx, peer: std::net::IpAddr) -> std::net::IpAddr {
    super::net::advertised_ip(
        ctx.config.rtp.public_ip.or(ctx.config.sip.public_ip),
        ctx.config.rtp.bind_ip,
        peer,
    )
}
