//! `parse`, `bad_request` and the framer never panic, on arbitrary bytes
//! and on real messages with random mutations.

use hotline_sip::message::{self, Frame, StreamFramer};
use proptest::prelude::*;
use std::path::PathBuf;

fn corpus() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/sip");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    out.sort();
    out
}

/// One edit to a message: overwrite, insert or delete a byte, or splice in
/// a SIP-significant token.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Splice(usize, &'static str),
}

fn edit() -> impl Strategy<Value = Edit> {
    let tokens = prop::sample::select(vec![
        "\r\n",
        "\r\n\r\n",
        ":",
        ";",
        ",",
        "<",
        ">",
        "\"",
        "[",
        "]",
        " ",
        "\t",
        "\n ",
        "SIP/2.0",
        "Content-Length: 99999999999999999999",
        "l: 5",
        "v: SIP/2.0/UDP [::1",
        "\u{fffd}",
        "\\",
    ]);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), tokens).prop_map(|(i, t)| Edit::Splice(i, t)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = bytes.len().max(1);
        match *e {
            Edit::Set(i, b) => {
                if !bytes.is_empty() {
                    bytes[i % n] = b
                }
            }
            Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Edit::Delete(i) => {
                if !bytes.is_empty() {
                    bytes.remove(i % n);
                }
            }
            Edit::Splice(i, t) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, t.bytes());
            }
        }
    }
    bytes
}

fn exercise(bytes: &[u8]) {
    match message::parse(bytes) {
        Ok(m) => {
            // Whatever parses must survive our accessors and re-serialise.
            let _ = message::method(&m);
            let _ = message::cseq(&m);
            let _ = message::top_via_branch(&m);
            let _ = message::from_tag(&m);
            let _ = message::to_tag(&m);
            if let rsip::SipMessage::Request(mut r) = m {
                let _ = message::request_user(&r).map(|u| message::normalize_e164(u, Some("1")));
                message::apply_received(&mut r, "192.0.2.1:5060".parse().unwrap());
                let resp = message::response(&r, 200, Some("OK"), Some("t"));
                let _ = message::response_destination(&resp);
            }
        }
        Err(e) => {
            if let Some(reply) = message::reject(bytes, e.status_code(), &e.to_string()) {
                // Our answer must always be a well-formed response.
                assert!(
                    rsip::SipMessage::try_from(&reply[..]).is_ok(),
                    "{:?}",
                    String::from_utf8_lossy(&reply)
                );
            }
        }
    }
    let _ = message::bad_request(bytes, "fuzz");
    let mut framer = StreamFramer::default();
    framer.push(bytes);
    for _ in 0..64 {
        match framer.next_frame() {
            Ok(Some(Frame::Message(m))) => {
                let _ = message::parse(&m);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&bytes);
    }

    #[test]
    fn mutated_real_messages_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let corpus = corpus();
        let base = corpus[pick.index(corpus.len())].clone();
        exercise(&apply(base, &edits));
    }

    #[test]
    fn framer_recovers_messages_from_any_chunking(
        picks in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 1..6),
        chunks in prop::collection::vec(1usize..300, 1..40),
    ) {
        let corpus = corpus();
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (pick, ping) in &picks {
            let m = corpus[pick.index(corpus.len())].clone();
            stream.extend_from_slice(&m);
            expected.push(Frame::Message(m.into()));
            if *ping {
                stream.extend_from_slice(b"\r\n\r\n");
                expected.push(Frame::Ping);
            }
        }
        let mut framer = StreamFramer::default();
        let mut got = Vec::new();
        let mut at = 0;
        let mut sizes = chunks.iter().cycle();
        while at < stream.len() {
            let end = (at + sizes.next().unwrap()).min(stream.len());
            framer.push(&stream[at..end]);
            at = end;
            while let Some(f) = framer.next_frame().unwrap() {
                got.push(f);
            }
        }
        prop_assert_eq!(got, expected);
        prop_assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn e164_never_panics(s in "\\PC{0,40}", cc in prop::option::of("[0-9]{1,3}")) {
        if let Some(d) = message::normalize_e164(&s, cc.as_deref()) {
            prop_assert!(d.bytes().all(|b| b.is_ascii_digit()) && (7..=15).contains(&d.len()));
        }
    }
}
