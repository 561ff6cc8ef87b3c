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
    let via = invite.via_header().map_err(|_| Error::Header("Via"))?;
    let from = invite.from_header().map_err(|_| Error::Header("From"))?;
    let call_id = invite
        .call_id_header()
        .map_err(|_| Error::Header("Call-ID"))?;
    let seq = invite
        .cseq_header()
        .and_then(|c| c.seq())
        .map_err(|_| Error::Header("CSeq"))?;
    let to = response.to_header().map_err(|_| Error::Header("To"))?;
    let mut headers = rsip::Headers::default();
    headers.push(Header::Via(via.clone()));
    headers.push(Header::From(from.clone()));
    headers.push(Header::To(to.clone()));
    headers.push(Header::CallId(call_id.clone()));
    headers.push(Header::CSeq(
        rsip::typed::CSeq {
            seq,
            method: Method::Ack,
        }
        .into(),
    ));
    headers.push(Header::MaxForwards(MaxForwards::new("70")));
    for header in invite.headers.iter() {
        if let Header::Route(_) = header {
            headers.push(header.clone());
        }
    }
    headers.push(Header::ContentLength(ContentLength::new("0")));
    Ok(Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    })
}

/// Builds a CANCEL for `invite` (§9.1): same Request-URI, Call-ID, To, From,
/// CSeq number and top Via (so it has the INVITE's branch), the INVITE's
/// Route headers, method CANCEL.
pub fn build_cancel(invite: &Request) -> Result<Request, Error> {
    let via = invite.via_header().map_err(|_| Error::Header("Via"))?;
    let from = invite.from_header().map_err(|_| Error::Header("From"))?;
    let to = invite.to_header().map_err(|_| Error::Header("To"))?;
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
    headers.push(Header::CSeq(
        rsip::typed::CSeq {
            seq,
            method: Method::Cancel,
        }
        .into(),
    ));
    headers.push(Header::MaxForwards(MaxForwards::new("70")));
    for header in invite.headers.iter() {
        if let Header::Route(_) = header {
            headers.push(header.clone());
        }
    }
    headers.push(Header::ContentLength(ContentLength::new("0")));
    Ok(Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    })
}
