//! TCP framing (RFC 3261 §18.3) and RFC 5626 keep-alives.

use hotline_sip::message::{self, Frame, FrameError, StreamFramer};
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/sip")
            .join(name),
    )
    .unwrap()
}

fn drain(f: &mut StreamFramer) -> Result<Vec<Frame>, FrameError> {
    let mut out = Vec::new();
    for _ in 0..100 {
        match f.next_frame()? {
            Some(frame) => out.push(frame),
            None => return Ok(out),
        }
    }
    panic!("framer did not settle");
}

#[test]
fn split_at_every_byte_boundary() {
    let a = fixture("sipp_invite.sip");
    let b = fixture("options.sip");
    let mut stream = a.clone();
    stream.extend_from_slice(b"\r\n\r\n");
    stream.extend_from_slice(&b);
    for cut in 0..=stream.len() {
        let mut f = StreamFramer::default();
        let mut frames = Vec::new();
        f.push(&stream[..cut]);
        frames.extend(drain(&mut f).unwrap());
        f.push(&stream[cut..]);
        frames.extend(drain(&mut f).unwrap());
        assert_eq!(
            frames,
            vec![
                Frame::Message(a.clone().into()),
                Frame::Ping,
                Frame::Message(b.clone().into())
            ],
            "cut at {cut}"
        );
        assert_eq!(f.buffered(), 0);
    }
}

#[test]
fn byte_by_byte() {
    let a = fixture("baresip_invite.sip");
    let mut f = StreamFramer::default();
    let mut frames = Vec::new();
    for b in &a {
        f.push(std::slice::from_ref(b));
        frames.extend(drain(&mut f).unwrap());
    }
    assert_eq!(frames, vec![Frame::Message(a.clone().into())]);
    assert!(message::parse(&a).is_ok());
}

#[test]
fn two_messages_in_one_read() {
    let a = fixture("register.sip");
    let b = fixture("info_dtmf.sip");
    let mut f = StreamFramer::default();
    f.push(&[a.clone(), b.clone()].concat());
    let frames = drain(&mut f).unwrap();
    assert_eq!(
        frames,
        vec![Frame::Message(a.into()), Frame::Message(b.clone().into())]
    );
    // The body was cut exactly at Content-Length.
    let Frame::Message(m) = &frames[1] else {
        unreachable!()
    };
    assert!(m.ends_with(b"Duration=160\r\n"));
}

#[test]
fn keep_alives() {
    let a = fixture("options.sip");
    let mut f = StreamFramer::default();
    f.push(b"\r\n\r\n\r\n\r\n");
    assert_eq!(drain(&mut f).unwrap(), vec![Frame::Ping, Frame::Ping]);
    // A lone CRLF waits until the next byte tells pong from ping.
    f.push(b"\r\n");
    assert_eq!(drain(&mut f).unwrap(), vec![]);
    f.push(&a);
    assert_eq!(
        drain(&mut f).unwrap(),
        vec![Frame::Pong, Frame::Message(a.into())]
    );
}

#[test]
fn compact_content_length() {
    let a = fixture("compact_invite.sip");
    let mut f = StreamFramer::default();
    f.push(&a);
    f.push(b"\r\n\r\n");
    assert_eq!(
        drain(&mut f).unwrap(),
        vec![Frame::Message(a.into()), Frame::Ping]
    );
}

#[test]
fn missing_content_length_is_fatal() {
    let a = String::from_utf8(fixture("options.sip"))
        .unwrap()
        .replace("Content-Length: 0\r\n", "");
    let mut f = StreamFramer::default();
    f.push(a.as_bytes());
    assert_eq!(drain(&mut f), Err(FrameError::MissingContentLength));
}

#[test]
fn bad_content_length_is_fatal() {
    let a = String::from_utf8(fixture("options.sip"))
        .unwrap()
        .replace("Content-Length: 0", "Content-Length: -1");
    let mut f = StreamFramer::default();
    f.push(a.as_bytes());
    assert_eq!(drain(&mut f), Err(FrameError::BadContentLength));
}

#[test]
fn oversize_declared_body_is_fatal() {
    let a = String::from_utf8(fixture("options.sip"))
        .unwrap()
        .replace("Content-Length: 0", "Content-Length: 70000");
    let mut f = StreamFramer::default();
    f.push(a.as_bytes());
    assert_eq!(
        drain(&mut f),
        Err(FrameError::TooLarge(message::MAX_MESSAGE_SIZE))
    );
    let a = String::from_utf8(fixture("options.sip")).unwrap().replace(
        "Content-Length: 0",
        "Content-Length: 99999999999999999999999",
    );
    let mut f = StreamFramer::default();
    f.push(a.as_bytes());
    assert!(drain(&mut f).is_err());
}

#[test]
fn oversize_unterminated_head_is_fatal() {
    let mut f = StreamFramer::new(1024);
    f.push(b"INVITE sip:a@b SIP/2.0\r\nX-Long: ");
    for _ in 0..20 {
        f.push(&[b'a'; 64]);
        if f.next_frame().is_err() {
            return;
        }
    }
    panic!("an endless head was never rejected");
}
