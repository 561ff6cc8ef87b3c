#![no_main]

//! Parse, 400 construction and TCP framing on arbitrary bytes. Seed corpus:
//! `fixtures/sip/*.sip`.

use hotline_sip::message::{self, Frame, StreamFramer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match message::parse(data) {
        Ok(m) => {
            let _ = message::method(&m);
            let _ = message::cseq(&m);
            let _ = message::top_via_branch(&m);
            let _ = message::from_tag(&m);
            let _ = message::to_tag(&m);
            let text = m.to_string();
            if let rsip::SipMessage::Request(mut r) = m {
                if let Some(u) = message::request_user(&r) {
                    let _ = message::normalize_e164(u, Some("44"));
                }
                message::apply_received(&mut r, "192.0.2.1:5060".parse().unwrap());
                let resp = message::response(&r, 180, None, Some("tag"));
                let _ = message::response_destination(&resp);
            }
            let _ = text;
        }
        Err(e) => {
            if let Some(reply) = message::reject(data, e.status_code(), &e.to_string()) {
                // Whatever we answer must be a well-formed SIP response.
                assert!(rsip::SipMessage::try_from(&reply[..]).is_ok());
            }
        }
    }
    let _ = message::bad_request(data, "fuzz");

    // Frame the input fed in two pieces, split at a data-derived point.
    let cut = data
        .first()
        .map(|b| *b as usize % (data.len() + 1))
        .unwrap_or(0);
    let mut framer = StreamFramer::new(8 * 1024);
    let mut total = 0usize;
    for piece in [&data[..cut], &data[cut..]] {
        framer.push(piece);
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(m))) => {
                    total += m.len();
                    let _ = message::parse(&m);
                }
                Ok(Some(Frame::Ping)) => total += 4,
                Ok(Some(Frame::Pong)) => total += 2,
                Ok(None) | Err(_) => break,
            }
        }
    }
    assert!(total <= data.len());
});
