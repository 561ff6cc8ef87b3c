//! Transaction identity (§17.1.3, §17.2.3).

use rsip::prelude::*;
use rsip::{Method, Request, SipMessage};

use super::Error;
use crate::message::{self, BRANCH_COOKIE};

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

/// The top Via as [`message::ViaInfo`] reads it (rsip's typed Via cannot
/// read an IPv6 sent-by, RFC 5118).
fn top_via<H: HasHeaders>(msg: &H) -> Result<message::ViaInfo, Error> {
    message::top_via(msg).ok_or(Error::Header("Via"))
}

impl TransactionKey {
    /// The client key of a request we send or of a response we receive.
    pub fn client(msg: &SipMessage) -> Result<Self, Error> {
        let via = top_via(msg)?;
        let branch = via.branch().ok_or(Error::Header("Via branch"))?.to_string();
        let method = message::method(msg).ok_or(Error::Header("CSeq"))?;
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
        let via = top_via(request)?;
        let sent_by = via.sent_by().to_ascii_lowercase();
        let branch = via.branch().map(str::to_string).unwrap_or_default();
        let branch = if branch.starts_with(BRANCH_COOKIE) {
            branch
        } else {
            let call_id = message::call_id(request).ok_or(Error::Header("Call-ID"))?;
            request.from_header().map_err(|_| Error::Header("From"))?;
            let from_tag = message::from_tag(request).unwrap_or_default();
            let (seq, _) = message::cseq(request).ok_or(Error::Header("CSeq"))?;
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
