#![no_main]

//! Feeds arbitrary bodies through everything the call path does with a
//! received SDP: parse, re-serialize to a fixed point, answer as an offer,
//! read as an answer to our offer. Seed with `fixtures/sdp/`.

use std::net::{IpAddr, Ipv4Addr};

use hotline_sip::sdp::{LocalCapabilities, MediaSession, SessionDescription};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = SessionDescription::parse(data) else {
        return;
    };
    let text = sdp.to_string();
    let again = SessionDescription::parse(text.as_bytes()).expect("our own output parses");
    assert_eq!(again.to_string(), text, "serialization is a fixed point");

    let local = LocalCapabilities::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);
    let mut callee = MediaSession::new(local.clone(), 1);
    if let Ok((answer, media, _)) = callee.receive_offer(&sdp) {
        assert_eq!(answer.media.len(), sdp.media.len(), "RFC 3264 §6 m-line count");
        assert!(media.media_index < sdp.media.len());
        let reparsed =
            SessionDescription::parse(answer.to_string().as_bytes()).expect("answer parses");
        assert_eq!(reparsed, answer);
    }
    let mut caller = MediaSession::new(local, 2);
    caller.create_offer();
    let _ = caller.receive_answer(&sdp);
});
