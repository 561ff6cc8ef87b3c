//! RFC 3261 §12 dialogs: identification, creation as UAC and UAS, building
//! in-dialog requests with the route set, and the checks on requests the
//! peer sends within the dialog. Plus RFC 4028 session-timer bookkeeping in
//! [`session_timer`].
//!
//! The [`Dialog`] is plain state: it sends nothing and reads no clock. The
//! call engine feeds it the messages its transactions carry.

pub mod headers;
pub mod session_timer;

pub use headers::replace_branch;

use crate::message::split_list;
use headers::{Name, addr_param, addr_uri, first, uri_has_lr, values};
use rsip::headers::UntypedHeader;
use rsip::{Header, Method, Request, Response};

/// Why a dialog could not be created or a request built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// A header the operation needs is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header is present but unparseable.
    #[error("malformed {0} header")]
    BadHeader(&'static str),
    /// A From or To without the tag a dialog needs.
    #[error("no tag in {0}")]
    MissingTag(&'static str),
    /// The response cannot create a dialog (100, or a non-2xx final).
    #[error("status {0} does not create a dialog")]
    NotDialogCreating(u16),
    /// A URI from the route set or remote target does not parse.
    #[error("unparseable URI {0:?}")]
    BadUri(String),
}

/// Dialog ID (§12): Call-ID plus both tags, seen from our side.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag (From tag of requests we send).
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The ID a request received from the peer belongs to: the To tag is
    /// ours, the From tag theirs (§12.2.2). `None` without both tags: an
    /// out-of-dialog request.
    pub fn of_received_request(request: &Request) -> Option<Self> {
        Some(Self {
            call_id: first(&request.headers, Name::CallId)?.trim().to_owned(),
            local_tag: tag_of(first(&request.headers, Name::To)?, "To").ok()?,
            remote_tag: tag_of(first(&request.headers, Name::From)?, "From").ok()?,
        })
    }

    /// The ID a response to one of our requests belongs to: the From tag
    /// is ours, the To tag theirs (§12.1.2). Forked answers to one INVITE
    /// differ in the To tag, so each gets its own ID (§13.2.2.4).
    pub fn of_received_response(response: &Response) -> Option<Self> {
        Some(Self {
            call_id: first(&response.headers, Name::CallId)?.trim().to_owned(),
            local_tag: tag_of(first(&response.headers, Name::From)?, "From").ok()?,
            remote_tag: tag_of(first(&response.headers, Name::To)?, "To").ok()?,
        })
    }
}

/// Where the dialog is in its life (§12: early dialogs come from 1xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
    /// Ended by BYE, a non-2xx final to the initial INVITE, or 481/408.
    Terminated,
}

/// Which side of the dialog-creating INVITE we were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the INVITE.
    Uac,
    /// We received it.
    Uas,
}

/// What to do with a request the peer sent within the dialog (§12.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestCheck {
    /// Process it. `target_refreshed` tells that its Contact replaced the
    /// remote target.
    Accept {
        /// Whether the remote target changed.
        target_refreshed: bool,
    },
    /// Its CSeq is below the remote CSeq: answer `500 Server Internal
    /// Error` (§12.2.2) and do not process it.
    RejectOutOfOrder,
}

/// Dialog state (§12.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID and tags.
    pub id: DialogId,
    /// Early, confirmed or terminated.
    pub state: DialogState,
    /// Our side of the initial INVITE.
    pub role: Role,
    /// CSeq of the last request we sent in the dialog; empty until we send one (UAS).
    pub local_seq: Option<u32>,
    /// CSeq of the last request the peer sent; empty until they send one (UAC).
    pub remote_seq: Option<u32>,
    /// Our From value in requests we send, with our tag (the name-addr as first sent).
    pub local_addr: String,
    /// Our To value in requests we send, with the peer's tag.
    pub remote_addr: String,
    /// The peer's Contact URI: the Request-URI (or last Route) of our requests.
    pub remote_target: String,
    /// Route set, in the order Route headers are sent, as name-addrs.
    pub route_set: Vec<String>,
    /// Whether the dialog was created over `sips:` (§12.1.1).
    pub secure: bool,
    /// Our Contact value, sent in target-refresh requests and 2xx.
    pub local_contact: String,
    /// CSeq number of our last INVITE, which the ACK for its 2xx reuses (§13.2.2.4).
    pub invite_seq: Option<u32>,
}

fn tag_of(value: &str, which: &'static str) -> Result<String, DialogError> {
    addr_param(value, "tag")
        .filter(|t| !t.is_empty())
        .ok_or(DialogError::MissingTag(which))
}

fn header<'a>(
    headers: &'a rsip::Headers,
    name: Name,
    label: &'static str,
) -> Result<&'a str, DialogError> {
    first(headers, name).ok_or(DialogError::MissingHeader(label))
}

fn cseq_of(headers: &rsip::Headers) -> Result<(u32, String), DialogError> {
    let (seq, method) = crate::message::cseq_parts(header(headers, Name::CSeq, "CSeq")?)
        .ok_or(DialogError::BadHeader("CSeq"))?;
    Ok((seq, method.to_owned()))
}

fn contact_uri(headers: &rsip::Headers) -> Option<String> {
    let contact = first(headers, Name::Contact)?;
    let element = split_list(contact).into_iter().next()?;
    let uri = addr_uri(element);
    (!uri.is_empty() && uri != "*").then(|| uri.to_owned())
}

fn record_route(headers: &rsip::Headers) -> Vec<String> {
    values(headers, Name::RecordRoute)
        .into_iter()
        .flat_map(split_list)
        .map(|element| format!("<{}>", addr_uri(element)))
        .collect()
}

fn is_sips(uri: &str) -> bool {
    uri.trim()
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
}

fn parse_uri(uri: &str) -> Result<rsip::Uri, DialogError> {
    rsip::Uri::try_from(uri).map_err(|_| DialogError::BadUri(uri.chars().take(200).collect()))
}

impl Dialog {
    /// The dialog a UAS creates when it answers `invite` with `response`
    /// (a 101–199 or 2xx carrying our To tag), §12.1.1: route set from the
    /// request's Record-Route in order, remote target from its Contact,
    /// remote CSeq from its CSeq, local CSeq empty.
    pub fn new_uas(
        invite: &Request,
        response: &Response,
        local_contact: &str,
    ) -> Result<Self, DialogError> {
        let code = response.status_code.code();
        let state = match code {
            101..=199 => DialogState::Early,
            200..=299 => DialogState::Confirmed,
            _ => return Err(DialogError::NotDialogCreating(code)),
        };
        let to = header(&response.headers, Name::To, "To")?;
        let from = header(&invite.headers, Name::From, "From")?;
        let (seq, _) = cseq_of(&invite.headers)?;
        Ok(Self {
            id: DialogId {
                call_id: header(&invite.headers, Name::CallId, "Call-ID")?
                    .trim()
                    .to_owned(),
                local_tag: tag_of(to, "To")?,
                remote_tag: tag_of(from, "From")?,
            },
            state,
            role: Role::Uas,
            local_seq: None,
            remote_seq: Some(seq),
            local_addr: to.trim().to_owned(),
            remote_addr: from.trim().to_owned(),
            remote_target: contact_uri(&invite.headers)
                .ok_or(DialogError::MissingHeader("Contact"))?,
            route_set: record_route(&invite.headers),
            secure: is_sips(&invite.uri.to_string()),
            local_contact: local_contact.to_owned(),
            invite_seq: None,
        })
    }

    /// The dialog a UAC creates from a 101–199 or 2xx with a To tag to
    /// the `invite` it sent (§12.1.2): route set from the response's
    /// Record-Route reversed, remote target from its Contact, local CSeq
    /// from the request. A response whose [`DialogId`] matches no existing
    /// dialog (a forked 2xx, §13.2.2.4) creates another one.
    pub fn new_uac(invite: &Request, response: &Response) -> Result<Self, DialogError> {
        let code = response.status_code.code();
        let state = match code {
            101..=199 => DialogState::Early,
            200..=299 => DialogState::Confirmed,
            _ => return Err(DialogError::NotDialogCreating(code)),
        };
        let from = header(&invite.headers, Name::From, "From")?;
        let to = header(&response.headers, Name::To, "To")?;
        let (seq, _) = cseq_of(&invite.headers)?;
        let mut route_set = record_route(&response.headers);
        route_set.reverse();
        // A 1xx may lack Contact (liberal); the INVITE's Request-URI is then
        // the best target until a response carries one.
        let remote_target = match contact_uri(&response.headers) {
            Some(c) => c,
            None if state == DialogState::Early => invite.uri.to_string(),
            None => return Err(DialogError::MissingHeader("Contact")),
        };
        Ok(Self {
            id: DialogId {
                call_id: header(&invite.headers, Name::CallId, "Call-ID")?
                    .trim()
                    .to_owned(),
                local_tag: tag_of(from, "From")?,
                remote_tag: tag_of(to, "To")?,
            },
            state,
            role: Role::Uac,
            local_seq: Some(seq),
            remote_seq: None,
            local_addr: from.trim().to_owned(),
            remote_addr: to.trim().to_owned(),
            remote_target,
            route_set,
            secure: is_sips(&invite.uri.to_string()),
            local_contact: first(&invite.headers, Name::Contact)
                .unwrap_or("")
                .trim()
                .to_owned(),
            invite_seq: Some(seq),
        })
    }

    /// Whether a request from the peer belongs to this dialog.
    pub fn matches_request(&self, request: &Request) -> bool {
        DialogId::of_received_request(request).as_ref() == Some(&self.id)
    }

    /// Whether a response to our request belongs to this dialog.
    pub fn matches_response(&self, response: &Response) -> bool {
        DialogId::of_received_response(response).as_ref() == Some(&self.id)
    }

    /// Our URI (the local URI of §12.1).
    pub fn local_uri(&self) -> &str {
        addr_uri(&self.local_addr)
    }

    /// The peer's URI (the remote URI of §12.1).
    pub fn remote_uri(&self) -> &str {
        addr_uri(&self.remote_addr)
    }

    /// Builds an in-dialog request (§12.2.1.1): Request-URI and Route from
    /// the route set, CSeq one above the last, From/To with tags, Call-ID,
    /// Max-Forwards 70, Contact on methods that carry one. `via` is the Via
    /// value without a branch (e.g. `SIP/2.0/UDP 192.0.2.10:5060;rport`); a
    /// new branch is added. `extra` headers (Content-Type, Refer-To,
    /// Event, Session-Expires…) go before Content-Length.
    ///
    /// For `ACK` use [`ack`](Self::ack); for `CANCEL`, which is not an
    /// in-dialog request, the transaction layer copies the INVITE.
    pub fn request(
        &mut self,
        method: Method,
        via: &str,
        extra: Vec<Header>,
        body: Vec<u8>,
    ) -> Result<Request, DialogError> {
        let seq = match self.local_seq {
            Some(s) => s.wrapping_add(1),
            // §8.1.1.5: a fresh local sequence starts below 2^31.
            None => rand::random::<u32>() & 0x7fff_ffff,
        };
        let request = self.build(method, seq, via, extra, body)?;
        self.local_seq = Some(seq);
        if method == Method::Invite {
            self.invite_seq = Some(seq);
        }
        Ok(request)
    }

    /// The ACK for a 2xx to our last INVITE (§13.2.2.4): same CSeq number,
    /// method ACK, a new branch, same Request-URI and Route as any
    /// in-dialog request. `body` carries the answer when the INVITE had no
    /// offer.
    pub fn ack(
        &self,
        via: &str,
        extra: Vec<Header>,
        body: Vec<u8>,
    ) -> Result<Request, DialogError> {
        let seq = self
            .invite_seq
            .or(self.local_seq)
            .ok_or(DialogError::MissingHeader("CSeq"))?;
        self.build(Method::Ack, seq, via, extra, body)
    }

    fn build(
        &self,
        method: Method,
        seq: u32,
        via: &str,
        extra: Vec<Header>,
        body: Vec<u8>,
    ) -> Result<Request, DialogError> {
        let (uri, routes) = self.request_target()?;
        let mut h = rsip::Headers::default();
        h.push(rsip::headers::Via::new(replace_branch(via, &crate::message::new_branch())).into());
        h.push(rsip::headers::MaxForwards::new("70").into());
        h.push(rsip::headers::From::new(self.local_addr.clone()).into());
        h.push(rsip::headers::To::new(self.remote_addr.clone()).into());
        h.push(rsip::headers::CallId::new(self.id.call_id.clone()).into());
        h.push(rsip::headers::CSeq::new(format!("{seq} {method}")).into());
        for r in routes {
            h.push(rsip::headers::Route::new(r).into());
        }
        if carries_contact(method) && !self.local_contact.is_empty() {
            h.push(rsip::headers::Contact::new(self.local_contact.clone()).into());
        }
        for e in extra {
            h.push(e);
        }
        h.push(rsip::headers::ContentLength::new(body.len().to_string()).into());
        Ok(Request {
            method,
            uri,
            version: rsip::Version::V2,
            headers: h,
            body,
        })
    }

    /// The Request-URI and Route values for a request in this dialog
    /// (§12.2.1.1): loose routing keeps the remote target as Request-URI;
    /// a strict first route becomes the Request-URI and the remote target
    /// is appended as the last Route.
    pub fn request_target(&self) -> Result<(rsip::Uri, Vec<String>), DialogError> {
        match self.route_set.first() {
            None => Ok((parse_uri(&self.remote_target)?, Vec::new())),
            Some(first) if uri_has_lr(addr_uri(first)) => {
                Ok((parse_uri(&self.remote_target)?, self.route_set.clone()))
            }
            Some(first) => {
                let mut routes: Vec<String> = self.route_set[1..].to_vec();
                routes.push(format!("<{}>", self.remote_target));
                Ok((parse_uri(addr_uri(first))?, routes))
            }
        }
    }

    /// Checks and applies a request the peer sent in this dialog
    /// (§12.2.2): a CSeq below the remote CSeq is out of order (answer
    /// 500); otherwise the remote CSeq advances, and a target refresh
    /// (re-INVITE, UPDATE, §12.2; SUBSCRIBE/NOTIFY, RFC 6665 §4.3) with a
    /// Contact replaces the remote target. A BYE terminates the dialog.
    pub fn receive_request(&mut self, request: &Request) -> Result<RequestCheck, DialogError> {
        let (seq, _) = cseq_of(&request.headers)?;
        let method = request.method;
        // ACK and CANCEL reuse the INVITE's number and are not ordered here.
        if !matches!(method, Method::Ack | Method::Cancel) {
            if self.remote_seq.is_some_and(|r| seq < r) {
                return Ok(RequestCheck::RejectOutOfOrder);
            }
            self.remote_seq = Some(seq);
        }
        let mut target_refreshed = false;
        let refresh = is_target_refresh(method)
            .then(|| contact_uri(&request.headers))
            .flatten();
        if let Some(c) = refresh {
            target_refreshed = c != self.remote_target;
            self.remote_target = c;
        }
        if method == Method::Bye {
            self.state = DialogState::Terminated;
        }
        Ok(RequestCheck::Accept { target_refreshed })
    }

    /// Applies a response to a request we sent in this dialog (§12.1.2,
    /// §12.2.1.2): a 2xx confirms an early dialog (taking the 2xx's route
    /// set and target), a 2xx to a target refresh updates the remote target,
    /// a non-2xx final to the initial INVITE ends an early dialog, and 481
    /// or 408 to any in-dialog request ends the dialog.
    pub fn receive_response(&mut self, response: &Response) -> Result<(), DialogError> {
        let code = response.status_code.code();
        let (_, method) = cseq_of(&response.headers)?;
        let method_is = |m: &str| method.eq_ignore_ascii_case(m);
        match code {
            200..=299 => {
                if self.state == DialogState::Early && method_is("INVITE") {
                    self.state = DialogState::Confirmed;
                    if self.role == Role::Uac {
                        let mut rr = record_route(&response.headers);
                        rr.reverse();
                        self.route_set = rr;
                    }
                }
                let refresh = ["INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"];
                let target = refresh
                    .iter()
                    .any(|m| method_is(m))
                    .then(|| contact_uri(&response.headers))
                    .flatten();
                if let Some(c) = target {
                    self.remote_target = c;
                }
            }
            101..=199 if self.state == DialogState::Early && method_is("INVITE") => {
                if let Some(c) = contact_uri(&response.headers) {
                    self.remote_target = c;
                }
            }
            481 | 408 => self.state = DialogState::Terminated,
            300..=699 if self.state == DialogState::Early && method_is("INVITE") => {
                self.state = DialogState::Terminated;
            }
            _ => {}
        }
        Ok(())
    }

    /// A response to a request the peer sent in this dialog, built by
    /// [`crate::message::response`] (§8.2.6.2: Via, From, Call-ID and CSeq
    /// copied, To with our tag), plus Contact on a 2xx to a method that
    /// carries one. From, To and Call-ID the request lacks (or carries only
    /// in compact form) come from the dialog. `extra` goes before
    /// Content-Length.
    pub fn response(
        &self,
        request: &Request,
        status: u16,
        extra: Vec<Header>,
        body: Vec<u8>,
    ) -> Response {
        let mut response =
            crate::message::response(request, status, None, Some(&self.id.local_tag));
        let h = &mut response.headers;
        h.retain(|h| !matches!(h, Header::ContentLength(_)));
        let has = |h: &rsip::Headers, pick: fn(&Header) -> bool| h.iter().any(pick);
        if !has(h, |h| matches!(h, Header::From(_))) {
            let from = first(&request.headers, Name::From).unwrap_or(&self.remote_addr);
            h.push(rsip::headers::From::new(from.trim().to_owned()).into());
        }
        if !has(h, |h| matches!(h, Header::To(_))) {
            let to = match first(&request.headers, Name::To) {
                Some(to) if addr_param(to, "tag").is_some() => to.trim().to_owned(),
                Some(to) => format!("{};tag={}", to.trim(), self.id.local_tag),
                None => self.local_addr.clone(),
            };
            h.push(rsip::headers::To::new(to).into());
        }
        if !has(h, |h| matches!(h, Header::CallId(_))) {
            h.push(rsip::headers::CallId::new(self.id.call_id.clone()).into());
        }
        if (200..300).contains(&status)
            && carries_contact(request.method)
            && !self.local_contact.is_empty()
        {
            h.push(rsip::headers::Contact::new(self.local_contact.clone()).into());
        }
        for e in extra {
            h.push(e);
        }
        h.push(rsip::headers::ContentLength::new(body.len().to_string()).into());
        response.body = body;
        response
    }

    /// Marks the dialog ended (after sending BYE, or on a timeout).
    pub fn terminate(&mut self) {
        self.state = DialogState::Terminated;
    }
}

/// Target-refresh requests (§12.2, RFC 3311 §5.1, RFC 6665 §4.3).
fn is_target_refresh(method: Method) -> bool {
    matches!(
        method,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify
    )
}

/// Methods whose requests (and 2xx) carry Contact (RFC 3261 §20.10,
/// RFC 3311, RFC 3515 §2.4.1, RFC 6665).
fn carries_contact(method: Method) -> bool {
    matches!(
        method,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
    )
}
