//! Transaction identity (§17.1.3, §17.2.3).

use rsip::headers::UntypedHeader;
use rsip::prelude::*;
use rsip::{Method, Request, SipMessage};

use super::Error;
use crate::message::BRANCH_COOKIE;

/// Which side of the transaction we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We sent the request.
    Client,
    /// We received the request.
    Server,
}

/// Identifies one transaction.
///
/// Client side (§17.1.3): top Via branch + CSeq method. Server side
/// (§17.2.3): top Via branch + sent-by + method, ACK counting as INVITE.
/// For requests whose branch lacks the `z9hG4bK` cookie (RFC 2543 peers) the
/// server key falls back on Request-URI, From tag, Call-ID, CSeq number and
/// top Via (§17.2.3's backwards-compatible rule, without the To tag so that
/// the ACK finds its INVITE).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// Client or server.
    pub role: Role,
    /// The branch, or for RFC 2543 requests the fallback identity.
    pub branch: String,
    /// Top Via sent-by (lowercased); empty for client keys.
    pub sent_by: String,
    /// Method; ACK is folded into INVITE.
    pub method: String,
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Ack => Method::Invite.to_string(),
        m => m.to_string(),
    }
}

fn top_via(msg: &SipMessage) -> Result<rsip::typed::Via, Error> {
    msg.via_header()
        .and_then(|v| v.typed())
        .map_err(|_| Error::Header("Via"))
}

fn cseq(msg: &SipMessage) -> Result<rsip::typed::CSeq, Error> {
    msg.cseq_header()
        .and_then(|c| c.typed())
        .map_err(|_| Error::Header("CSeq"))
}

impl TransactionKey {
    /// The client key of a request we send or of a response we receive.
    pub fn client(msg: &SipMessage) -> Result<Self, Error> {
        let via = top_via(msg)?;
        let branch = via.branch().ok_or(Error::Header("Via branch"))?.to_string();
        let method = match msg {
            SipMessage::Request(r) => r.method,
            SipMessage::Response(_) => cseq(msg)?.method,
        };
        Ok(TransactionKey {
            role: Role::Client,
            branch,
            sent_by: String::new(),
            method: method_name(&method),
        })
    }

    /// The server key of a received request.
    pub fn server(request: &Request) -> Result<Self, Error> {
        Self::server_with_method(request, request.method)
    }

    /// The server key `request` would have with another method: the INVITE a
    /// CANCEL targets (§9.2) has the CANCEL's key with method INVITE.
    pub fn server_with_method(request: &Request, method: Method) -> Result<Self, Error> {
        let msg = SipMessage::Request(request.clone());
        let via = top_via(&msg)?;
        let sent_by = via.uri.host_with_port.to_string().to_ascii_lowercase();
        let branch = via.branch().map(|b| b.to_string()).unwrap_or_default();
        let branch = if branch.starts_with(BRANCH_COOKIE) {
            branch
        } else {
            let call_id = request
                .call_id_header()
                .map_err(|_| Error::Header("Call-ID"))?
                .value()
                .to_string();
            let from_tag = request
                .from_header()
                .and_then(|f| f.tag())
                .map_err(|_| Error::Header("From"))?
                .map(|t| t.to_string())
                .unwrap_or_default();
            let seq = cseq(&msg)?.seq;
            format!(
                "rfc2543;{};{call_id};{from_tag};{seq};{branch}",
                request.uri
            )
        };
        Ok(TransactionKey {
            role: Role::Server,
            branch,
            sent_by,
            method: method_name(&method),
        })
    }
}
