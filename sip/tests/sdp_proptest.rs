//! Property tests: the SDP parser and offer/answer never panic on network
//! input, and serialization is a fixed point after one parse.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use hotline_sip::sdp::{LocalCapabilities, MediaSession, SessionDescription};
use proptest::prelude::*;

fn fixtures() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/sdp");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .expect("fixture dir")
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "sdp").then(|| std::fs::read(p).ok())?
        })
        .collect();
    out.sort();
    out
}

fn local() -> LocalCapabilities {
    LocalCapabilities::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000)
}

/// Everything the call path does with a received body, none of which may
/// panic; whatever parses must reach a serialization fixed point.
fn exercise(bytes: &[u8]) {
    let Ok(sdp) = SessionDescription::parse(bytes) else {
        return;
    };
    let text = sdp.to_string();
    let again = SessionDescription::parse(text.as_bytes()).expect("own output parses");
    assert_eq!(again.to_string(), text);

    let mut session = MediaSession::new(local(), 1);
    if let Ok((answer, media, _)) = session.receive_offer(&sdp) {
        assert_eq!(answer.media.len(), sdp.media.len());
        let reparsed = SessionDescription::parse(answer.to_string().as_bytes()).expect("answer");
        assert_eq!(reparsed, answer);
        assert!(media.media_index < sdp.media.len());
    }
    let mut caller = MediaSession::new(local(), 2);
    caller.create_offer();
    let _ = caller.receive_answer(&sdp);
}

/// One mutation of a real body: flip, insert or delete a byte, or splice a
/// line-level token in, which reaches deeper than random bytes do.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Token(usize, &'static str),
}

const TOKENS: &[&str] = &[
    "\r\n",
    "\n",
    "=",
    ":",
    "/",
    " ",
    "m=audio 0 RTP/AVP",
    "c=IN IP4 0.0.0.0",
    "a=rtpmap:",
    "a=fmtp:",
    "a=inactive",
    "a=sendonly",
    "a=ptime:",
    "65536",
    "255",
    "-1",
    "\0",
    "é",
    "o=",
    "a=rtcp:",
    "a=rtcp-mux",
    "telephone-event/48000",
    "opus/48000/2",
    "IP6 ::",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), prop::sample::select(TOKENS)).prop_map(|(i, t)| Mutation::Token(i, t)),
    ]
}

fn apply(mut body: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = body.len();
        match *m {
            Mutation::Flip(i, b) if len > 0 => body[i % len] ^= b,
            Mutation::Insert(i, b) => body.insert(i % (len + 1), b),
            Mutation::Delete(i) if len > 0 => {
                body.remove(i % len);
            }
            Mutation::Token(i, t) => {
                let at = i % (len + 1);
                body.splice(at..at, t.bytes());
            }
            _ => {}
        }
    }
    body
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    #[test]
    fn sdp_shaped_lines_never_panic(
        lines in prop::collection::vec("[vosctbmaxk]=[ -~]{0,40}", 0..20)
    ) {
        exercise(lines.join("\r\n").as_bytes());
    }

    #[test]
    fn mutated_real_bodies_never_panic(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let corpus = fixtures();
        let body = corpus[which.index(corpus.len())].clone();
        exercise(&apply(body, &mutations));
    }
}
