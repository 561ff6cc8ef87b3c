//! Self-tests of the SIP peer harness (`tests/peers/`): the real peers
//! (sipp, baresip) against each other on 127.0.0.1, no Hotline involved.
//! They need `scripts/deps` (sipp, baresip, espeak-ng, sox) and root for
//! sipp's `play_pcap_audio`.

mod peers;

use std::time::Duration;

use peers::audio;
use peers::baresip::{Baresip, BaresipConfig};
use peers::pcap::{self, StreamSpec};
use peers::rtp::{Capture, RtpSink};
use peers::sipp::{Scenario, SippRun};

const SPEECH: &str = "Testing the loopback line, one two three.";

fn speech_pcm() -> Vec<i16> {
    let wav = peers::media::speech_wav(SPEECH, 8000).unwrap();
    peers::media::read_pcm(&wav).unwrap().1
}

#[test]
fn pcap_writer_output_parses_back_with_continuous_rtp_and_digits() {
    let wav = peers::media::speech_wav(SPEECH, 8000).unwrap();
    let ulaw = peers::media::g711_bytes(&wav, hotline_media::codec::g711::Law::Mu).unwrap();
    let spec = StreamSpec::default();
    let packets = pcap::rtp_packets(&ulaw, "1234#", &spec).unwrap();
    let dir = peers::run_dir("pcap").unwrap();
    let path = dir.join("speech.pcap");
    pcap::write_pcap(&path, &packets).unwrap();

    let read = pcap::read_pcap(&path).unwrap();
    assert_eq!(read.len(), packets.len());
    for (r, p) in read.iter().zip(&packets) {
        assert_eq!(r.payload, p.rtp);
        assert_eq!(r.at_us - read[0].at_us, p.at_us);
    }
    let cap = Capture::new(read.into_iter().map(|u| u.payload));
    assert_eq!(cap.other, 0);
    assert_eq!(cap.ssrcs(), vec![spec.ssrc]);
    // Sequence numbers step by one; 20 ms packets are 20 ms apart.
    for (i, p) in cap.packets.iter().enumerate() {
        assert_eq!(p.seq, spec.seq.wrapping_add(i as u16));
    }
    for w in packets.windows(2) {
        assert_eq!(w[1].at_us - w[0].at_us, 20_000);
    }
    // Audio timestamps advance 160 per packet, events hold one timestamp.
    let audio_ts: Vec<u32> = cap
        .packets
        .iter()
        .filter(|p| p.pt == 0)
        .map(|p| p.ts)
        .collect();
    assert!(
        audio_ts
            .windows(2)
            .all(|w| w[1].wrapping_sub(w[0]) >= 160 && w[1].wrapping_sub(w[0]) % 160 == 0)
    );
    assert_eq!(cap.digits(Some(101)), "1234#");
    assert_eq!(cap.digits(None), "1234#");
    let ends = cap
        .packets
        .iter()
        .filter(|p| p.pt == 101 && p.payload[1] & 0x80 != 0)
        .count();
    assert_eq!(ends, 5 * 3, "three end packets per digit");
    // The speech survives G.711: same envelope as the source.
    let pcm = cap.g711_pcm();
    let c = audio::correlate(&speech_pcm(), 8000, &pcm, 8000, 200);
    assert!(c.coefficient > 0.95 && c.lag_ms == 0, "{c:?}");
}

#[test]
fn audio_checks_tell_speech_from_silence_and_from_other_audio() {
    let speech = speech_pcm();
    assert!(audio::is_non_silent(&speech));
    assert!(!audio::is_non_silent(&vec![0i16; 8000]));
    assert!(audio::duration_secs(&speech, 8000) > 1.0);
    // Delayed by 300 ms: found at that lag.
    let mut delayed = vec![0i16; 2400];
    delayed.extend_from_slice(&speech);
    let c = audio::correlate(&speech, 8000, &delayed, 8000, 500);
    assert_eq!(c.lag_ms, 300);
    assert!(c.coefficient > 0.99, "{c:?}");
    // A steady tone does not look like speech.
    let tone = peers::media::read_pcm(&peers::media::tone_wav(1000, 3.0, 8000).unwrap())
        .unwrap()
        .1;
    let c = audio::correlate(&speech, 8000, &tone, 8000, 500);
    assert!(c.coefficient < 0.5, "{c:?}");
}

#[test]
fn sipp_stat_and_rtt_parsing() {
    let stat = "StartTime;SuccessfulCall(C);FailedCall(C);\n1;0;0;\n2;3;1;\n";
    let m = peers::sipp::parse_stat_csv(stat);
    assert_eq!(m["SuccessfulCall(C)"], "3");
    assert_eq!(m["FailedCall(C)"], "1");
    let rtt = peers::sipp::parse_rtt_csv(
        "Date_ms;response_time_ms;rtd_no\n10;1.5;1\n11;0.5;1\n12;9.0;1\n",
    );
    assert_eq!(rtt, vec![1.5, 0.5, 9.0]);
    assert_eq!(peers::sipp::percentile(&rtt, 50.0), Some(1.5));
    assert_eq!(peers::sipp::percentile(&rtt, 100.0), Some(9.0));
    assert_eq!(peers::sipp::percentile(&[], 50.0), None);
    assert!(
        Scenario::from_fixture("uac_pcap.xml").render().is_err(),
        "unsubstituted placeholders are refused"
    );
}

#[test]
fn sipp_uac_plays_pcap_to_sipp_uas_and_both_count_one_call() {
    let pcap_path = pcap::speech_dtmf_pcap(SPEECH, "1234#").unwrap();
    let sent = pcap::read_pcap(&pcap_path).unwrap();
    let pcap_ms = (sent.last().unwrap().at_us - sent[0].at_us) / 1000;

    let sink = RtpSink::bind(0, false).unwrap();
    let mut uas = SippRun::uas(Scenario::uas_answer(Some(sink.port()), 15_000))
        .spawn()
        .unwrap();
    uas.wait_ready(Duration::from_secs(5)).unwrap();
    let uac = SippRun::uac(
        Scenario::uac_pcap(&pcap_path, pcap_ms + 500),
        uas.sip_addr(),
    )
    .spawn()
    .unwrap();

    let uac = uac.wait().unwrap();
    let uas = uas.wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    assert_eq!((uac.successful, uac.failed), (1, 0));
    assert_eq!(uac.rtt_ms.len(), 1, "one INVITE->200 time");
    assert!(uac.rtt_percentile(95.0).is_some());

    // Everything sipp replayed reached the UAS's SDP port, intact.
    let cap = sink.finish();
    assert_eq!(cap.packets.len(), sent.len());
    assert_eq!(cap.digits(Some(101)), "1234#");
    let c = audio::correlate(&speech_pcm(), 8000, &cap.g711_pcm(), 8000, 200);
    assert!(c.coefficient > 0.95, "{c:?}");
}

#[test]
fn sipp_uac_answers_sipp_uas_digest_challenge() {
    let mut uas = SippRun::uas(Scenario::uas_auth("alice", "s3cret", None, 5_000))
        .spawn()
        .unwrap();
    uas.wait_ready(Duration::from_secs(5)).unwrap();
    let mut run = SippRun::uac(Scenario::uac_auth(300), uas.sip_addr());
    run.auth = Some(("alice".into(), "s3cret".into()));
    let uac = run.spawn().unwrap().wait().unwrap();
    let uas = uas.wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    assert!(uac.file("messages.log").contains("Authorization: Digest"));
}

#[test]
fn sipp_uas_rejects_wrong_digest_password() {
    let mut uas = SippRun::uas(Scenario::uas_auth("alice", "s3cret", None, 5_000))
        .spawn()
        .unwrap();
    uas.wait_ready(Duration::from_secs(5)).unwrap();
    let mut run = SippRun::uac(Scenario::uac_auth(300), uas.sip_addr());
    run.auth = Some(("alice".into(), "wrong".into()));
    run.timeout = Duration::from_secs(5);
    let uac = run.spawn().unwrap().wait().unwrap();
    let uas = uas.wait().unwrap();
    assert_eq!(uac.failed, 1, "{}", uac.diagnostics());
    assert_eq!(uas.failed, 1, "{}", uas.diagnostics());
    assert!(uac.file("messages.log").contains("403 Forbidden"));
}

#[test]
fn sipp_uac_with_lost_ack_sees_the_200_retransmitted() {
    let mut uas = SippRun::uas(Scenario::uas_answer(None, 5_000))
        .spawn()
        .unwrap();
    uas.wait_ready(Duration::from_secs(5)).unwrap();
    let uac = SippRun::uac(Scenario::uac_lost_200(1_200, 200), uas.sip_addr())
        .spawn()
        .unwrap()
        .wait()
        .unwrap();
    let uas = uas.wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    // sipp's UAS retransmits after 500 ms, then 1 s later, until the ACK:
    // the first 200 and at least one retransmission in 1.2 s.
    let invite_200s = uac.count_received("SIP/2.0 200 OK", "CSeq: 1 INVITE");
    assert!(
        invite_200s >= 2,
        "{invite_200s} 200s for the INVITE\n{}",
        uac.diagnostics()
    );
    assert_eq!(uac.count_received("SIP/2.0 200 OK", "CSeq: 2 BYE"), 1);
}

#[test]
fn sipp_uas_hangs_up_itself_after_hold_time() {
    let mut uas = SippRun::uas(Scenario::uas_answer(None, 300))
        .spawn()
        .unwrap();
    uas.wait_ready(Duration::from_secs(5)).unwrap();
    // The UAC holds much longer than the UAS: the UAS's BYE ends the call,
    // which the sipp UAC sees as an unexpected BYE.
    let mut run = SippRun::uac(
        Scenario::uac_offer(peers::sipp::Offer::Pcma, 3_000),
        uas.sip_addr(),
    );
    run.timeout = Duration::from_secs(8);
    let uac = run.spawn().unwrap().wait().unwrap();
    let uas = uas.wait().unwrap();
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    assert!(
        uas.file("messages.log").contains("BYE sip:"),
        "{}",
        uas.diagnostics()
    );
    assert!(uac.file("messages.log").contains("RTP/AVP 8"));
}

#[test]
fn baresip_uac_calls_sipp_uas_with_audio_and_dtmf_both_ways() {
    let pcap_path = pcap::speech_dtmf_pcap(SPEECH, "1234#").unwrap();
    let sink = RtpSink::bind(0, false).unwrap();
    let mut uas =
        SippRun::uas(Scenario::uas_answer(Some(sink.port()), 15_000).play_pcap(&pcap_path))
            .spawn()
            .unwrap();
    uas.wait_ready(Duration::from_secs(5)).unwrap();

    let mut b = Baresip::start(&BaresipConfig {
        user: "caller".into(),
        ..Default::default()
    })
    .unwrap();
    b.dial(&format!("sip:test@127.0.0.1:{}", uas.sip_port))
        .unwrap();
    b.wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .unwrap();
    // baresip's speech flows while the pcap plays to baresip.
    sink.wait_for(50, Duration::from_secs(5)).unwrap();
    b.send_dtmf("42", Duration::from_millis(300)).unwrap();
    b.pump(Duration::from_millis(4_000)).unwrap();
    b.hangup().unwrap();
    b.wait_event("CALL_CLOSED", Duration::from_secs(5)).unwrap();
    let received = b.received_wav();
    b.quit().unwrap();

    let uas = uas.wait().unwrap();
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    let cap = sink.finish();
    assert_eq!(cap.digits(None), "42");
    assert!(
        audio::is_non_silent(&cap.g711_pcm()),
        "baresip's source audio arrived"
    );
    let received = received.expect("sndfile wrote a -dec.wav");
    let (rate, pcm) = audio::read_wav(&received).unwrap();
    assert!(audio::duration_secs(&pcm, rate) > 1.0);
    assert!(
        audio::is_non_silent(&pcm),
        "the pcap's speech reached baresip"
    );
}

#[test]
fn baresip_uas_auto_answers_sipp_uac() {
    let mut b = Baresip::start(&BaresipConfig {
        user: "test".into(),
        auto_answer: true,
        ..Default::default()
    })
    .unwrap();
    let target = (peers::LOOPBACK, b.sip_port).into();
    let sink = RtpSink::bind(0, false).unwrap();
    let uac = SippRun::uac(
        Scenario::uac_offer(peers::sipp::Offer::PcmuDtmf, 1_500).sdp_port(sink.port()),
        target,
    )
    .spawn()
    .unwrap();
    b.wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .unwrap();
    b.wait_event("CALL_CLOSED", Duration::from_secs(10))
        .unwrap();
    let uac = uac.wait().unwrap();
    b.quit().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let cap = sink.finish();
    assert!(
        cap.payload_types().get(&0).is_some_and(|&n| n > 20),
        "{:?}",
        cap.payload_types()
    );
    assert!(audio::is_non_silent(&cap.g711_pcm()));
}
