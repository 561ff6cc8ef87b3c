//! SDP parsing and serialization against real user agents' bodies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use hotline_sip::sdp::{Direction, RtpMap, SdpParseError, SessionDescription};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/sdp")
}

fn fixture(name: &str) -> SessionDescription {
    let bytes = std::fs::read(fixture_dir().join(name)).expect("fixture exists");
    SessionDescription::parse(&bytes).expect("fixture parses")
}

#[test]
fn every_fixture_parses_and_reserializes_stably() {
    let mut count = 0;
    for entry in std::fs::read_dir(fixture_dir()).expect("fixture dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "sdp") {
            continue;
        }
        count += 1;
        let bytes = std::fs::read(&path).expect("read");
        let sdp =
            SessionDescription::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!sdp.media.is_empty(), "{}", path.display());
        let text = sdp.to_string();
        assert!(text.ends_with("\r\n"));
        assert!(!text.replace("\r\n", "").contains('\n'), "bare LF written");
        let again = SessionDescription::parse(text.as_bytes()).expect("own output parses");
        // Equal but for what the writer fills in (`s=-`, `t=0 0`).
        assert_eq!(again.media, sdp.media, "{}", path.display());
        assert_eq!(again.attributes, sdp.attributes);
        assert_eq!(again.origin, sdp.origin);
        assert_eq!(again.to_string(), text);
    }
    assert!(count >= 10, "only {count} fixtures");
}

#[test]
fn canonical_input_serializes_byte_exact() {
    let bytes = std::fs::read(fixture_dir().join("freeswitch.sdp")).expect("read");
    let sdp = SessionDescription::parse(&bytes).expect("parse");
    assert_eq!(sdp.to_string().as_bytes(), bytes.as_slice());

    let bytes = std::fs::read(fixture_dir().join("baresip.sdp")).expect("read");
    let sdp = SessionDescription::parse(&bytes).expect("parse");
    assert_eq!(sdp.to_string().as_bytes(), bytes.as_slice());
}

#[test]
fn typed_fields_of_a_freeswitch_offer() {
    let sdp = fixture("freeswitch.sdp");
    let o = sdp.origin.as_ref().expect("origin");
    assert_eq!(o.username, "FreeSWITCH");
    assert_eq!(o.session_id, "1700000000");
    assert_eq!(o.session_version, 1_700_000_001);
    assert_eq!(sdp.session_name.as_deref(), Some("FreeSWITCH"));
    let c = sdp.connection.as_ref().expect("c=");
    assert_eq!(c.ip(), Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 30))));
    assert!(!c.is_hold_address());
    let m = &sdp.media[0];
    assert_eq!(
        (m.media.as_str(), m.port, m.protocol.as_str()),
        ("audio", 21450, "RTP/AVP")
    );
    assert_eq!(m.formats, ["102", "9", "0", "8", "103", "101"]);
    assert_eq!(
        m.rtpmap(102),
        Some(RtpMap {
            payload_type: 102,
            encoding: "opus".into(),
            clock_rate: 48000,
            channels: Some(2)
        })
    );
    assert!(m.fmtp(102).expect("fmtp").starts_with("useinbandfec=1;"));
    assert_eq!(m.fmtp(101), Some("0-16"));
    assert_eq!(m.ptime(), Some(20));
    assert_eq!(m.direction(), Some(Direction::SendRecv));
    let rtcp = m.rtcp().expect("a=rtcp");
    assert_eq!(rtcp.port, 21451);
    assert_eq!(rtcp.connection.expect("addr").address, "203.0.113.30");
}

#[test]
fn baresip_attributes_and_bandwidth() {
    let sdp = fixture("baresip.sdp");
    let m = &sdp.media[0];
    assert_eq!(m.bandwidths[0].bw_type, "AS");
    assert_eq!(m.bandwidths[0].bandwidth, 125);
    assert!(m.rtcp_mux());
    assert_eq!(m.label(), Some("1"));
    // Unknown attributes survive verbatim.
    assert_eq!(
        m.attribute("ssrc").and_then(|a| a.value.as_deref()),
        Some("1426421826 cname:3b2e1f20-4e55-4a9d-a2c4-1d6e9a0b7f1c")
    );
    assert_eq!(m.rtpmaps().count(), 6);
}

#[test]
fn ipv6_and_hold_addresses() {
    let sdp = fixture("opus_only.sdp");
    assert_eq!(
        sdp.connection_for(0).and_then(|c| c.ip()),
        Some(IpAddr::V6("2001:db8::7".parse::<Ipv6Addr>().expect("ip")))
    );
    let held = fixture("hold_rfc2543.sdp");
    assert!(held.connection_for(0).expect("c").is_hold_address());
}

#[test]
fn session_and_media_level_directions() {
    let sdp = fixture("hold_inactive_session_level.sdp");
    assert_eq!(sdp.direction(), Some(Direction::Inactive));
    assert_eq!(sdp.media[0].direction(), None);
    assert_eq!(sdp.direction_for(0), Direction::Inactive);
    let sdp = fixture("hold_sendonly.sdp");
    assert_eq!(sdp.direction_for(0), Direction::SendOnly);
    let sdp = fixture("sipp_uac_pcm.sdp");
    assert_eq!(sdp.direction_for(0), Direction::SendRecv);
}

#[test]
fn media_level_connection_overrides_session_level() {
    let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                m=audio 4000 RTP/AVP 0\r\nc=IN IP4 192.0.2.2\r\nm=audio 4002 RTP/AVP 0\r\n";
    let sdp: SessionDescription = text.parse().expect("parse");
    assert_eq!(sdp.connection_for(0).expect("c").address, "192.0.2.2");
    assert_eq!(sdp.connection_for(1).expect("c").address, "192.0.2.1");
}

#[test]
fn sloppy_real_world_input_is_accepted() {
    // LF endings, trailing blanks, no v= and no s=, c= and t= after a=.
    let sdp = fixture("sloppy_order.sdp");
    assert_eq!(sdp.session_name, None);
    assert_eq!(sdp.timings.len(), 1);
    let m = &sdp.media[0];
    assert_eq!(m.formats, ["8", "0", "101"]);
    assert_eq!(m.connection.as_ref().expect("c").address, "192.0.2.99");
    assert_eq!(m.ptime(), Some(20));
    // Written back in RFC order with the missing lines filled in.
    let text = sdp.to_string();
    assert!(text.starts_with("v=0\r\no=- 998 998 IN IP4 192.0.2.99\r\ns=-\r\nt=0 0\r\nm=audio"));
    assert!(text.contains("m=audio 30000 RTP/AVP 8 0 101\r\nc=IN IP4 192.0.2.99\r\na=rtpmap"));

    let no_t = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=x\nc=IN IP4 192.0.2.1\nm=audio 1 RTP/AVP 0\n";
    let sdp: SessionDescription = no_t.parse().expect("no t=");
    assert!(sdp.timings.is_empty());
    assert!(sdp.to_string().contains("\r\nt=0 0\r\n"));
}

#[test]
fn port_count_fractional_ptime_and_case() {
    let text = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n\
                m=audio 49170/2 RTP/AVP 0\na=PTime:20.0\na=SendOnly\n";
    let sdp: SessionDescription = text.parse().expect("parse");
    let m = &sdp.media[0];
    assert_eq!((m.port, m.port_count), (49170, Some(2)));
    assert_eq!(m.ptime(), Some(20));
    assert_eq!(m.direction(), Some(Direction::SendOnly));
    assert!(sdp.to_string().contains("m=audio 49170/2 RTP/AVP 0\r\n"));
}

#[test]
fn other_lines_are_kept_in_rfc_order() {
    let text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=call\r\nt=0 0\r\nu=http://example.com\r\n\
                i=info\r\ne=a@example.com\r\nr=7d 1h 0 25h\r\nm=audio 4000 RTP/AVP 0\r\n\
                a=x-foo\r\nk=prompt\r\ni=media info\r\n";
    let sdp: SessionDescription = text.parse().expect("parse");
    assert_eq!(
        sdp.to_string(),
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=call\r\ni=info\r\nu=http://example.com\r\n\
         e=a@example.com\r\nt=0 0\r\nr=7d 1h 0 25h\r\nm=audio 4000 RTP/AVP 0\r\n\
         i=media info\r\nk=prompt\r\na=x-foo\r\n"
    );
}

#[test]
fn malformed_input_is_a_clear_error() {
    assert_eq!(SessionDescription::parse(b""), Err(SdpParseError::Empty));
    assert_eq!(
        SessionDescription::parse(b"\r\n \n"),
        Err(SdpParseError::Empty)
    );
    assert_eq!(
        SessionDescription::parse(b"v=0\nhello\n"),
        Err(SdpParseError::NotALine { line: 2 })
    );
    assert_eq!(
        SessionDescription::parse(b"v=0\nm=audio port RTP/AVP 0\n"),
        Err(SdpParseError::Malformed { line: 2, kind: 'm' })
    );
    assert_eq!(
        SessionDescription::parse(b"v=0\nc=IN IP4\n"),
        Err(SdpParseError::Malformed { line: 2, kind: 'c' })
    );
    assert_eq!(
        SessionDescription::parse(b"v=0\no=- 1 IN IP4 1.2.3.4\n"),
        Err(SdpParseError::Malformed { line: 2, kind: 'o' })
    );
    assert_eq!(
        SessionDescription::parse(b"v=x\n"),
        Err(SdpParseError::Malformed { line: 1, kind: 'v' })
    );
    // A broken rtpmap is skipped by the typed accessor, not fatal.
    let sdp = SessionDescription::parse(b"m=audio 1 RTP/AVP 0\na=rtpmap:zz PCMU\n").expect("ok");
    assert_eq!(sdp.media[0].rtpmaps().count(), 0);
}
