//! Messages the transaction layer builds itself: ACK for non-2xx (§17.1.1.3),
//! and CANCEL (§9.1). The responses it answers on its own (100, 481, 482,
//! 503, 200 to CANCEL, the synthesized 408) come from
//! [`crate::message::response`].

use rsip::headers::{ContentLength, Header, MaxForwards, UntypedHeader};
use rsip::prelude::*;
use rsip::{Method, Request, Response};

use super::Error;

/// Builds the ACK for a non-2xx final response, inside the client INVITE
/// transaction (§17.1.1.3): Request-URI, Call-ID, From, CSeq number, the top
/// Via only and the Route headers of the INVITE; To from the response.
pub fn build_ack(invite: &Request, response: &Response) -> Result<Request, Error> {
    let to = response.to_header().map_err(|_| Error::Header("To"))?;
    copy_of_invite(invite, Method::Ack, to)
}

/// Builds a CANCEL for `invite` (§9.1): same Request-URI, Call-ID, To, From,
/// CSeq number and top Via (so it has the INVITE's branch), the INVITE's
/// Route headers, method CANCEL.
pub fn build_cancel(invite: &Request) -> Result<Request, Error> {
    let to = invite.to_header().map_err(|_| Error::Header("To"))?;
    copy_of_invite(invite, Method::Cancel, to)
}

/// The request ACK (§17.1.1.3) and CANCEL (§9.1) both are: the INVITE's
/// Request-URI, top Via, From, Call-ID, CSeq number and Route headers,
/// with `method` and the given To.
fn copy_of_invite(
    invite: &Request,
    method: Method,
    to: &rsip::headers::To,
) -> Result<Request, Error> {
    let via = invite.via_header().map_err(|_| Error::Header("Via"))?;
    let from = invite.from_header().map_err(|_| Error::Header("From"))?;
    let call_id = invite
        .call_id_header()
        .map_err(|_| Error::Header("Call-ID"))?;
    let seq = invite
        .cseq_header()
        .and_then(|c| c.seq())
        .map_err(|_| Error::Header("CSeq"))?;
    let mut headers = rsip::Headers::default();
    headers.push(Header::Via(via.clone()));
    headers.push(Header::From(from.clone()));
    headers.push(Header::To(to.clone()));
    headers.push(Header::CallId(call_id.clone()));
    headers.push(Header::CSeq(rsip::typed::CSeq { seq, method }.into()));
    headers.push(Header::MaxForwards(MaxForwards::new("70")));
    for header in invite.headers.iter() {
        if let Header::Route(_) = header {
            headers.push(header.clone());
        }
    }
    headers.push(Header::ContentLength(ContentLength::new("0")));
    Ok(Request {
        method,
        uri: invite.uri.clone(),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    })
}
