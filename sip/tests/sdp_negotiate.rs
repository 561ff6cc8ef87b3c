//! RFC 3264 offer/answer against real offers, and the per-call session.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use hotline_sip::sdp::{
    Codec, Direction, LocalCapabilities, MediaSession, NegotiatedMedia, NegotiationError,
    SessionDescription, answer_offer, negotiate::our_origin, process_answer, warning_304,
};

const OUR_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
const OUR_PORT: u16 = 40000;

fn local() -> LocalCapabilities {
    LocalCapabilities::new(OUR_IP, OUR_PORT)
}

fn fixture(name: &str) -> SessionDescription {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/sdp")
        .join(name);
    SessionDescription::parse(&std::fs::read(path).expect("fixture")).expect("parses")
}

/// Answers a fixture with fresh session state and checks the answer reads
/// back through our own parser to the same description.
fn answer(name: &str) -> (SessionDescription, NegotiatedMedia) {
    answer_with(name, local())
}

fn answer_with(name: &str, caps: LocalCapabilities) -> (SessionDescription, NegotiatedMedia) {
    let offer = fixture(name);
    let mut session = MediaSession::new(caps, 42);
    let (sdp, media, change) = session.receive_offer(&offer).expect("answerable");
    assert!(change.initial);
    let text = sdp.to_string();
    let reparsed = SessionDescription::parse(text.as_bytes()).expect("own answer parses");
    assert_eq!(reparsed, sdp);
    assert_eq!(
        reparsed.media.len(),
        offer.media.len(),
        "RFC 3264 §6 m-line count"
    );
    for (a, o) in reparsed.media.iter().zip(&offer.media) {
        assert_eq!(a.media, o.media, "RFC 3264 §6 m-line order");
    }
    (reparsed, media)
}

fn addr(s: &str) -> Option<SocketAddr> {
    Some(s.parse().expect("socket addr"))
}

#[test]
fn sipp_pcmu_with_telephone_event() {
    let (sdp, media) = answer("sipp_uac_pcm.sdp");
    assert_eq!(media.codec, Codec::Pcmu);
    assert_eq!(
        (media.payload_type, media.clock_rate, media.channels),
        (0, 8000, 1)
    );
    assert_eq!(media.telephone_event_pt, Some(101));
    assert_eq!(media.ptime, 20);
    assert_eq!(media.remote_addr, addr("127.0.1.1:6000"));
    assert_eq!(media.remote_rtcp_addr, addr("127.0.1.1:6001"));
    assert!(!media.rtcp_mux);
    assert_eq!(media.direction, Direction::SendRecv);
    assert!(!media.remote_hold);
    assert_eq!(
        sdp.to_string(),
        "v=0\r\n\
         o=hotline 42 42 IN IP4 203.0.113.1\r\n\
         s=Hotline\r\n\
         c=IN IP4 203.0.113.1\r\n\
         t=0 0\r\n\
         m=audio 40000 RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-11,16\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n"
    );
}

#[test]
fn baresip_opus_first_keeps_dynamic_pt_and_rtcp_mux() {
    let (sdp, media) = answer("baresip.sdp");
    assert_eq!(media.codec, Codec::Opus);
    assert_eq!(
        (media.payload_type, media.clock_rate, media.channels),
        (96, 48000, 2)
    );
    // Only telephone-event/8000 was offered: no events at Opus's 48 kHz.
    assert_eq!(media.telephone_event_pt, None);
    assert!(media.rtcp_mux);
    assert_eq!(media.remote_rtcp_addr, media.remote_addr);
    assert_eq!(media.fmtp_param("stereo"), Some("1"));
    let m = &sdp.media[0];
    assert_eq!(m.formats, ["96"]);
    assert_eq!(m.rtpmap(96).expect("rtpmap").encoding, "opus");
    assert_eq!(m.fmtp(96), Some("useinbandfec=1"));
    assert!(m.rtcp_mux());
}

#[test]
fn baresip_without_opus_support_picks_pcmu_and_pt_101() {
    let mut caps = local();
    caps.codecs = vec![Codec::Pcma, Codec::Pcmu];
    let (sdp, media) = answer_with("baresip.sdp", caps);
    // The caller's order wins over ours: 0 comes before 8 in its list.
    assert_eq!(media.codec, Codec::Pcmu);
    assert_eq!(media.telephone_event_pt, Some(101));
    assert_eq!(sdp.media[0].formats, ["0", "101"]);
    assert_eq!(sdp.media[0].fmtp(101), Some("0-15"));
}

#[test]
fn asterisk_pcmu_and_maxptime() {
    let (sdp, media) = answer("asterisk.sdp");
    assert_eq!(media.codec, Codec::Pcmu);
    assert_eq!(media.telephone_event_pt, Some(101));
    assert_eq!(media.ptime, 20);
    assert_eq!(sdp.media[0].ptime(), Some(20));
}

#[test]
fn freeswitch_opus_with_48k_events_and_rtcp_attribute() {
    let (sdp, media) = answer("freeswitch.sdp");
    assert_eq!((media.codec, media.payload_type), (Codec::Opus, 102));
    assert_eq!(media.telephone_event_pt, Some(103));
    assert_eq!(media.fmtp_param("maxplaybackrate"), Some("48000"));
    assert_eq!(media.fmtp_param("useinbandfec"), Some("1"));
    assert!(!media.rtcp_mux);
    assert_eq!(media.remote_rtcp_addr, addr("203.0.113.30:21451"));
    let m = &sdp.media[0];
    assert_eq!(m.formats, ["102", "103"]);
    assert_eq!(m.rtpmap(103).expect("te").clock_rate, 48000);
    assert!(!m.rtcp_mux());
}

#[test]
fn carrier_offers() {
    let (_, media) = answer("twilio_like.sdp");
    assert_eq!(
        (media.codec, media.telephone_event_pt),
        (Codec::Pcmu, Some(101))
    );
    assert_eq!(media.remote_addr, addr("198.51.100.44:16458"));
    let (_, media) = answer("telnyx_like.sdp");
    assert_eq!(
        (media.codec, media.telephone_event_pt),
        (Codec::Pcmu, Some(101))
    );
    assert_eq!(media.ptime, 20);
}

#[test]
fn chrome_style_opus_over_avpf_with_rtcp_mux() {
    let (sdp, media) = answer("chrome_opus_avp.sdp");
    assert_eq!((media.codec, media.payload_type), (Codec::Opus, 111));
    assert_eq!(media.telephone_event_pt, Some(110));
    assert!(media.rtcp_mux);
    assert_eq!(media.remote_addr, addr("192.0.2.50:50004"));
    assert_eq!(media.fmtp_param("minptime"), Some("10"));
    assert_eq!(sdp.media[0].protocol, "RTP/AVPF");
}

#[test]
fn dtls_srtp_only_offer_is_refused_for_its_transport() {
    let offer = fixture("webrtc_dtls.sdp");
    let err = answer_offer(&offer, &local(), our_origin(&local(), 1, 1)).expect_err("no SRTP");
    assert_eq!(
        err,
        NegotiationError::UnsupportedTransport("UDP/TLS/RTP/SAVPF".into())
    );
    assert_eq!(err.status_code(), 488);
    assert_eq!(err.warning_code(), 302);
}

#[test]
fn pcma_only_and_ptime_30() {
    let (sdp, media) = answer("pcma_only.sdp");
    assert_eq!((media.codec, media.payload_type), (Codec::Pcma, 8));
    assert_eq!(media.telephone_event_pt, None);
    assert_eq!(media.ptime, 30);
    assert_eq!(sdp.media[0].ptime(), Some(30));
    assert_eq!(sdp.media[0].formats, ["8"]);
}

#[test]
fn opus_only_over_ipv6_with_ptime_40() {
    let (sdp, media) = answer("opus_only.sdp");
    assert_eq!((media.codec, media.payload_type), (Codec::Opus, 109));
    assert_eq!(media.telephone_event_pt, Some(98));
    assert_eq!(media.ptime, 40);
    assert_eq!(media.remote_addr, addr("[2001:db8::7]:5004"));
    assert_eq!(media.fmtp_param("maxplaybackrate"), Some("16000"));
    assert_eq!(sdp.media[0].fmtp(98), Some("0-15"));
}

#[test]
fn video_is_rejected_with_port_zero_and_audio_accepted() {
    let (sdp, media) = answer("video_audio.sdp");
    assert_eq!(media.media_index, 1);
    assert_eq!((media.codec, media.payload_type), (Codec::Opus, 96));
    assert_eq!(media.telephone_event_pt, Some(101));
    assert_eq!(sdp.media[0].media, "video");
    assert_eq!(sdp.media[0].port, 0);
    assert_eq!(sdp.media[0].formats, ["96", "97"]);
    assert_eq!(sdp.media[1].port, OUR_PORT);
}

#[test]
fn no_common_codec_is_488_with_a_warning() {
    let offer = fixture("no_common_codec.sdp");
    let mut session = MediaSession::new(local(), 7);
    let err = session
        .receive_offer(&offer)
        .expect_err("nothing in common");
    assert_eq!(err, NegotiationError::NoCommonCodec);
    assert_eq!(err.status_code(), 488);
    assert_eq!(
        err.warning("hotline"),
        "305 hotline \"Incompatible media format\""
    );
    assert_eq!(
        warning_304("hotline"),
        "304 hotline \"Media type not available\""
    );
    assert!(session.current().is_none());
}

#[test]
fn offer_without_audio_is_refused() {
    let text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                m=image 4000 udptl t38\r\n";
    let offer: SessionDescription = text.parse().expect("parse");
    let err = answer_offer(&offer, &local(), our_origin(&local(), 1, 1)).expect_err("no audio");
    assert_eq!(err, NegotiationError::NoAudioStream);
    assert_eq!(err.warning_code(), 304);
}

#[test]
fn second_audio_stream_is_rejected() {
    let text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                m=audio 4000 RTP/SAVP 0\r\nm=audio 4002 RTP/AVP 8\r\nm=audio 4004 RTP/AVP 0\r\n";
    let offer: SessionDescription = text.parse().expect("parse");
    let answer = answer_offer(&offer, &local(), our_origin(&local(), 1, 1)).expect("answer");
    let ports: Vec<u16> = answer.sdp.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, [0, OUR_PORT, 0]);
    assert_eq!(answer.media.codec, Codec::Pcma);
    assert_eq!(answer.media.media_index, 1);
}

#[test]
fn unsupported_ptime_falls_back_to_ours() {
    let text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                m=audio 4000 RTP/AVP 0\r\na=ptime:25\r\n";
    let offer: SessionDescription = text.parse().expect("parse");
    let answer = answer_offer(&offer, &local(), our_origin(&local(), 1, 1)).expect("answer");
    assert_eq!(answer.media.ptime, 20);
    let text = text.replace("a=ptime:25", "a=maxptime:10");
    let offer: SessionDescription = text.parse().expect("parse");
    let answer = answer_offer(&offer, &local(), our_origin(&local(), 1, 1)).expect("answer");
    assert_eq!(answer.media.ptime, 10);
}

#[test]
fn directions_follow_rfc_3264_section_6_1() {
    let base = fixture("sipp_uac_pcm.sdp");
    let cases = [
        (Direction::SendRecv, Direction::SendRecv, false),
        (Direction::SendOnly, Direction::RecvOnly, true),
        (Direction::RecvOnly, Direction::SendOnly, false),
        (Direction::Inactive, Direction::Inactive, true),
    ];
    for (offered, answered, hold) in cases {
        let mut offer = base.clone();
        offer.media[0].set_direction(offered);
        let answer = answer_offer(&offer, &local(), our_origin(&local(), 1, 1)).expect("answer");
        assert_eq!(answer.media.direction, answered, "offer {offered}");
        assert_eq!(answer.sdp.media[0].direction(), Some(answered));
        assert_eq!(answer.media.remote_hold, hold, "offer {offered}");
    }
    // Our own preference narrows a sendrecv offer.
    let mut caps = local();
    caps.direction = Direction::SendOnly;
    let answer = answer_offer(&base, &caps, our_origin(&caps, 1, 1)).expect("answer");
    assert_eq!(answer.media.direction, Direction::SendOnly);
}

#[test]
fn hold_and_resume_re_offers_from_the_peer() {
    let mut session = MediaSession::new(local(), 1000);
    let (first, media, _) = session
        .receive_offer(&fixture("sipp_uac_pcm.sdp"))
        .expect("ok");
    assert!(media.should_send());

    let (held, media, change) = session
        .receive_offer(&fixture("hold_sendonly.sdp"))
        .expect("ok");
    assert!(media.remote_hold && !media.should_send());
    assert_eq!(media.direction, Direction::RecvOnly);
    assert!(change.direction_changed && change.remote_hold_changed && !change.codec_changed);
    let v = |s: &SessionDescription| s.origin.as_ref().expect("o").session_version;
    assert_eq!(v(&held), v(&first) + 1, "changed answer bumps o= version");

    let (_, media, _) = session
        .receive_offer(&fixture("hold_rfc2543.sdp"))
        .expect("ok");
    assert!(media.remote_hold);
    assert_eq!(media.remote_addr, None);
    assert_eq!(media.direction, Direction::RecvOnly);

    let (_, media, _) = session
        .receive_offer(&fixture("hold_inactive_session_level.sdp"))
        .expect("ok");
    assert!(media.remote_hold);
    assert_eq!(media.direction, Direction::Inactive);

    let (resumed, media, change) = session
        .receive_offer(&fixture("sipp_uac_pcm.sdp"))
        .expect("ok");
    assert!(!media.remote_hold && media.should_send());
    assert!(change.remote_hold_changed && change.direction_changed);
    // Same answer again: same version (RFC 3264 §8).
    let (again, _, change) = session
        .receive_offer(&fixture("sipp_uac_pcm.sdp"))
        .expect("ok");
    assert_eq!(v(&again), v(&resumed));
    assert!(!change.any());
}

#[test]
fn mid_call_codec_change_is_reported_and_failed_re_offer_keeps_session() {
    let mut session = MediaSession::new(local(), 5);
    session
        .receive_offer(&fixture("sipp_uac_pcm.sdp"))
        .expect("ok");
    let (_, media, change) = session
        .receive_offer(&fixture("pcma_only.sdp"))
        .expect("ok");
    assert_eq!(media.codec, Codec::Pcma);
    assert!(change.codec_changed && change.remote_addr_changed);
    let err = session
        .receive_offer(&fixture("no_common_codec.sdp"))
        .expect_err("488");
    assert_eq!(err, NegotiationError::NoCommonCodec);
    assert_eq!(session.current().expect("kept").codec, Codec::Pcma);
}

#[test]
fn our_offer_answered_by_peer() {
    let mut session = MediaSession::new(local(), 99);
    let offer = session.create_offer();
    assert_eq!(
        offer.to_string(),
        "v=0\r\n\
         o=hotline 99 99 IN IP4 203.0.113.1\r\n\
         s=Hotline\r\n\
         c=IN IP4 203.0.113.1\r\n\
         t=0 0\r\n\
         m=audio 40000 RTP/AVP 111 0 8 110 101\r\n\
         a=rtpmap:111 opus/48000/2\r\n\
         a=fmtp:111 useinbandfec=1\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:110 telephone-event/48000\r\n\
         a=fmtp:110 0-16\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=rtcp-mux\r\n\
         a=sendrecv\r\n"
    );
    // Asterisk-like answer choosing PCMU.
    let answer: SessionDescription = "v=0\r\no=- 5 5 IN IP4 198.51.100.20\r\ns=Asterisk\r\n\
        c=IN IP4 198.51.100.20\r\nt=0 0\r\nm=audio 12000 RTP/AVP 0 101\r\n\
        a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
        a=ptime:20\r\na=sendrecv\r\n"
        .parse()
        .expect("parse");
    let (media, change) = session.receive_answer(&answer).expect("accepted");
    assert!(change.initial);
    assert_eq!((media.codec, media.payload_type), (Codec::Pcmu, 0));
    assert_eq!(media.telephone_event_pt, Some(101));
    assert_eq!(media.remote_addr, addr("198.51.100.20:12000"));
    assert!(!media.rtcp_mux, "answer did not accept rtcp-mux");
    assert_eq!(media.remote_rtcp_addr, addr("198.51.100.20:12001"));
    assert_eq!(media.direction, Direction::SendRecv);
    assert!(session.pending_offer().is_none());

    // Hold: same session id, version + 1, sendonly, PCMU kept first.
    let hold = session.hold_offer();
    let o = hold.origin.as_ref().expect("o");
    assert_eq!((o.session_id.as_str(), o.session_version), ("99", 100));
    let m = &hold.media[0];
    assert_eq!(m.direction(), Some(Direction::SendOnly));
    assert_eq!(m.formats, ["0", "111", "8", "101", "110"]);
    let mut held_answer = answer.clone();
    held_answer.media[0].set_direction(Direction::RecvOnly);
    let (media, change) = session.receive_answer(&held_answer).expect("ok");
    assert_eq!(media.direction, Direction::SendOnly);
    assert!(!media.remote_hold);
    assert!(change.direction_changed && !change.codec_changed);

    let resume = session.resume_offer();
    assert_eq!(resume.origin.as_ref().expect("o").session_version, 101);
    assert_eq!(resume.media[0].direction(), Some(Direction::SendRecv));
    let (media, _) = session.receive_answer(&answer).expect("ok");
    assert_eq!(media.direction, Direction::SendRecv);
}

#[test]
fn answer_with_opus_and_missing_rtpmap_uses_our_mapping() {
    let mut session = MediaSession::new(local(), 1);
    let offer = session.create_offer();
    let answer: SessionDescription = "v=0\r\no=- 5 5 IN IP4 192.0.2.9\r\ns=-\r\n\
        c=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 3000 RTP/AVP 111 110\r\n\
        a=fmtp:111 useinbandfec=1;maxplaybackrate=16000\r\na=rtcp-mux\r\n"
        .parse()
        .expect("parse");
    let media = process_answer(&offer, &answer, session.local()).expect("ok");
    assert_eq!((media.codec, media.payload_type), (Codec::Opus, 111));
    assert_eq!(media.telephone_event_pt, Some(110));
    assert!(media.rtcp_mux);
    assert_eq!(media.fmtp_param("maxplaybackrate"), Some("16000"));
}

#[test]
fn rejected_or_mismatched_answers_are_errors() {
    let mut session = MediaSession::new(local(), 1);
    let offer = session.create_offer();
    let mut answer = offer.clone();
    answer.media[0].port = 0;
    assert_eq!(
        process_answer(&offer, &answer, &local()),
        Err(NegotiationError::Rejected)
    );
    answer.media.clear();
    assert!(matches!(
        process_answer(&offer, &answer, &local()),
        Err(NegotiationError::MediaCountMismatch {
            offered: 1,
            answered: 0
        })
    ));
    let mut answer = offer.clone();
    answer.media[0].formats = vec!["18".into()];
    assert_eq!(
        process_answer(&offer, &answer, &local()),
        Err(NegotiationError::NoCommonCodec)
    );
    session.cancel_offer();
    assert_eq!(
        session.receive_answer(&offer).map(|_| ()),
        Err(NegotiationError::NoAudioStream)
    );
}

#[test]
fn offer_and_answer_between_two_hotlines() {
    let mut caller = MediaSession::new(LocalCapabilities::new(OUR_IP, 30000), 1);
    let mut callee_caps = LocalCapabilities::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 31000);
    callee_caps.codecs = vec![Codec::Pcma];
    let mut callee = MediaSession::new(callee_caps, 2);
    let offer = caller.create_offer();
    let wire = offer.to_string();
    let (answer, theirs, _) = callee
        .receive_offer(&SessionDescription::parse(wire.as_bytes()).expect("parse"))
        .expect("answer");
    let (ours, _) = caller
        .receive_answer(&SessionDescription::parse(answer.to_string().as_bytes()).expect("p"))
        .expect("ok");
    assert_eq!((ours.codec, theirs.codec), (Codec::Pcma, Codec::Pcma));
    assert_eq!(ours.telephone_event_pt, Some(101));
    assert_eq!(theirs.telephone_event_pt, Some(101));
    assert_eq!(ours.remote_addr, addr("192.0.2.2:31000"));
    assert_eq!(theirs.remote_addr, addr("203.0.113.1:30000"));
    assert!(ours.rtcp_mux && theirs.rtcp_mux);
}
