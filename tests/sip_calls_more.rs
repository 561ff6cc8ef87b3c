//! More of Hotline's call engine against real SIP peers on 127.0.0.1:
//! baresip's audio through the echo number and from an outbound prompt,
//! and sipp for hold/resume, SIP INFO digits, Hotline's own BYE, TCP,
//! OPTIONS and 481, blind transfer and the RTP inactivity timeout. Every
//! test checks what the peer saw and what Hotline recorded. Needs
//! `scripts/deps` (sipp, baresip, espeak-ng, sox) and root for sipp's
//! `play_pcap_audio`.

mod peers;

use std::path::PathBuf;
use std::time::Duration;

use hotline::call::{CallCommand, CallEvent, CallId, DigitSource, Outcome, Party};
use hotline::config::NumberMode;
use hotline::engine::app::PlaySpec;
use hotline::engine::{CallApp, OutboundCall};
use hotline_sip::transport::Transport;
use peers::audio;
use peers::baresip::{Baresip, BaresipConfig};
use peers::hotline::Hotline;
use peers::pcap::{self, StreamSpec};
use peers::sipp::{Offer, Scenario, SippRun};

const WAIT: Duration = Duration::from_secs(20);

fn prompt_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/prompts/thank_you_16k.wav")
}

/// The events one call reported, in order.
fn events_of(hl: &Hotline, id: &CallId) -> Vec<CallEvent> {
    hl.seen
        .iter()
        .filter(|(c, _)| c == id)
        .map(|(_, e)| e.clone())
        .collect()
}

fn dtmf_of(hl: &Hotline, id: &CallId) -> Vec<(char, DigitSource)> {
    events_of(hl, id)
        .into_iter()
        .filter_map(|e| match e {
            CallEvent::Dtmf { digit, source } => Some((digit, source)),
            _ => None,
        })
        .collect()
}

/// The received message that starts with `start_line` and contains
/// `needle`, for assertions on its headers and body.
fn received_msg(run: &peers::sipp::SippResult, start_line: &str, needle: &str) -> String {
    run.received()
        .into_iter()
        .find(|m| m.starts_with(start_line) && m.contains(needle))
        .unwrap_or_else(|| panic!("no {start_line:?} with {needle:?}\n{}", run.diagnostics()))
}

#[test]
fn baresip_speech_comes_back_from_the_echo_number() {
    let speech = peers::media::speech_wav(
        "Echo test. The quick brown fox jumps over the lazy dog, one two three.",
        8000,
    )
    .unwrap();
    let (rate, speech_pcm) = audio::read_wav(&speech).unwrap();
    let speech_secs = audio::duration_secs(&speech_pcm, rate);
    let mut hl = Hotline::start(|_| {});
    let mut b = Baresip::start(&BaresipConfig {
        user: "caller".into(),
        source_wav: Some(speech),
        ..Default::default()
    })
    .unwrap();
    b.dial(&format!("sip:echo@{}", hl.sip_addr())).unwrap();
    b.wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .unwrap();
    // The whole utterance, plus time for it to travel there and back.
    b.pump(Duration::from_secs_f64(speech_secs + 1.5)).unwrap();
    b.hangup().unwrap();
    b.wait_event("CALL_CLOSED", Duration::from_secs(5)).unwrap();
    let sent = b.sent_wav();
    let received = b.received_wav();
    b.quit().unwrap();

    let records = hl.ended(1, WAIT);
    assert_eq!(records.len(), 1, "{:?}", hl.seen);
    let r = &records[0];
    assert_eq!(r.hangup.outcome, Outcome::Completed);
    assert_eq!(r.hangup.by, Party::Remote);
    assert!(r.answered.is_some());
    assert_eq!(r.to, "echo");

    let (sr, sent) = audio::read_wav(&sent.expect("sndfile wrote an -enc.wav")).unwrap();
    let (rr, received) = audio::read_wav(&received.expect("sndfile wrote a -dec.wav")).unwrap();
    assert!(audio::is_non_silent(&sent), "baresip sent its speech");
    assert!(audio::is_non_silent(&received), "the echo came back");
    // Both recordings start with the call, so the echo is the sent speech
    // shifted by the round trip (jitter buffers on both sides).
    let c = audio::correlate(&sent, sr, &received, rr, 1500);
    assert!(
        c.coefficient > 0.8 && (0..=1000).contains(&c.lag_ms),
        "{c:?}"
    );
}

#[test]
fn outbound_call_to_baresip_plays_the_prompt() {
    let mut b = Baresip::start(&BaresipConfig {
        user: "callee".into(),
        auto_answer: true,
        ..Default::default()
    })
    .unwrap();
    let mut hl = Hotline::start(|_| {});
    let call = hl
        .rt
        .block_on(hl.engine.place_call(OutboundCall {
            id: None,
            trunk: None,
            to: b.uri("callee"),
            from: Some("+14155550100".into()),
            app: CallApp::Play(PlaySpec {
                prompt: Some(prompt_path()),
                max_digits: 4,
                digit_timeout: Duration::from_millis(500),
                rounds: 1,
            }),
            ring_timeout: None,
        }))
        .unwrap();
    b.wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .unwrap();
    // Hotline hangs up after the prompt and the digit timeout.
    b.wait_event("CALL_CLOSED", Duration::from_secs(15))
        .unwrap();
    let received = b.received_wav();
    b.quit().unwrap();

    let records = hl.ended(1, WAIT);
    assert_eq!(records.len(), 1, "{:?}", hl.seen);
    let r = &records[0];
    assert_eq!(r.id, call.id);
    assert_eq!(r.hangup.outcome, Outcome::Completed);
    assert_eq!(r.hangup.by, Party::Local);
    assert!(r.answered.is_some());
    assert!(events_of(&hl, &call.id).contains(&CallEvent::Answered));

    let (rate, pcm) = audio::read_wav(&received.expect("sndfile wrote a -dec.wav")).unwrap();
    assert!(audio::is_non_silent(&pcm), "the prompt reached baresip");
    let (prate, prompt) = audio::read_wav(&prompt_path()).unwrap();
    let prompt_secs = audio::duration_secs(&prompt, prate);
    let active = audio::active_fraction(&pcm, rate) * audio::duration_secs(&pcm, rate);
    assert!(
        (active - prompt_secs).abs() < 0.5 * prompt_secs,
        "active {active:.2}s vs prompt {prompt_secs:.2}s"
    );
    // It is the prompt, whole: the digit timeout (500 ms) only starts once
    // it has played out, so silence follows its last sound before the BYE.
    let c = audio::correlate(&prompt, prate, &pcm, rate, 1000);
    assert!(c.coefficient > 0.8, "{c:?}");
    let last_active = pcm
        .chunks(rate as usize / 50)
        .rposition(audio::is_non_silent)
        .unwrap();
    let trailing = audio::duration_secs(&pcm, rate) - (last_active + 1) as f64 * 0.02;
    assert!(trailing >= 0.5, "only {trailing:.2}s after the prompt");
}

#[test]
fn reinvite_hold_and_resume_are_answered_and_reported() {
    let mut hl = Hotline::start(|_| {});
    // Hotline's RTP goes to a recorder, to see it stop while held.
    let sink = peers::rtp::RtpSink::bind(0, false).unwrap();
    let mut run = SippRun::uac(
        Scenario::uac_hold_resume(1_500).sdp_port(sink.port()),
        hl.sip_addr(),
    );
    run.service = "echo".into();
    let uac = run.spawn().unwrap();
    let held = |on: bool| {
        move |seen: &[(CallId, CallEvent)]| {
            seen.iter().any(|(_, e)| *e == CallEvent::Hold { held: on })
        }
    };
    assert!(hl.wait_for(WAIT, held(true)), "{:?}", hl.seen);
    let at_hold = sink.count();
    assert!(hl.wait_for(WAIT, held(false)), "{:?}", hl.seen);
    let at_resume = sink.count();
    let uac = uac.wait().unwrap();
    let at_end = sink.count();
    // 1.5 s held: at most what was already in flight; 1.5 s resumed:
    // the 20 ms stream again (75 packets; half is plenty of margin).
    assert!(
        at_resume - at_hold <= 5 && at_end - at_resume >= 35,
        "RTP packets: {at_hold} before hold, {at_resume} at resume, {at_end} at the end"
    );
    // The scenario itself insists on a=recvonly, then a=sendrecv.
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let hold = received_msg(&uac, "SIP/2.0 200 OK", "CSeq: 2 INVITE");
    assert!(
        hold.contains("a=recvonly") && hold.contains("m=audio"),
        "{hold}"
    );
    let resume = received_msg(&uac, "SIP/2.0 200 OK", "CSeq: 3 INVITE");
    assert!(resume.contains("a=sendrecv"), "{resume}");

    let records = hl.ended(1, WAIT);
    assert_eq!(records.len(), 1, "{:?}", hl.seen);
    let r = &records[0];
    assert_eq!(r.hangup.outcome, Outcome::Completed);
    assert_eq!(r.hangup.by, Party::Remote);
    let holds: Vec<CallEvent> = events_of(&hl, &r.id)
        .into_iter()
        .filter(|e| matches!(e, CallEvent::Hold { .. }))
        .collect();
    assert_eq!(
        holds,
        vec![
            CallEvent::Hold { held: true },
            CallEvent::Hold { held: false }
        ]
    );
}

#[test]
fn sip_info_digit_is_reported_and_its_rfc4733_copy_is_not() {
    let mut hl = Hotline::start(|c| {
        let mut n = Hotline::number("play", NumberMode::Play);
        n.digit_timeout_secs = 10;
        c.numbers.push(n);
    });
    // A key press by SIP INFO alone.
    let mut run = SippRun::uac(Scenario::uac_info_dtmf('5', 300, 500), hl.sip_addr());
    run.service = "play".into();
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    assert_eq!(uac.count_received("SIP/2.0 200 OK", "CSeq: 2 INFO"), 1);
    let first = hl.ended(1, WAIT);
    assert_eq!(first.len(), 1, "{:?}", hl.seen);
    assert_eq!(first[0].hangup.outcome, Outcome::Completed);
    assert_eq!(
        dtmf_of(&hl, &first[0].id),
        vec![('5', DigitSource::SipInfo)]
    );

    // The same key press by both roads, as some gateways send it: RTP
    // with 200 ms of silence, 200 ms more, then '5' as RFC 4733 (so the
    // event starts 400 ms in), and the INFO 400 ms after the ACK.
    let spec = StreamSpec::default();
    let silence = vec![0xffu8; 8 * 200];
    let packets = pcap::rtp_packets(&silence, "5", &spec).unwrap();
    let pcap_path = peers::run_dir("info-and-rfc4733")
        .unwrap()
        .join("digit5.pcap");
    pcap::write_pcap(&pcap_path, &packets).unwrap();
    let mut run = SippRun::uac(
        Scenario::uac_info_dtmf('5', 400, 1000).play_pcap(&pcap_path),
        hl.sip_addr(),
    );
    run.service = "play".into();
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let records = hl.ended(2, WAIT);
    assert_eq!(records.len(), 2, "{:?}", hl.seen);
    let digits = dtmf_of(&hl, &records[1].id);
    assert_eq!(digits.len(), 1, "one key press, reported once: {digits:?}");
    assert_eq!(digits[0].0, '5');

    // The control: the same RTP with a different key by INFO gives both,
    // so the RFC 4733 copy above did arrive and was merged, not lost.
    let mut run = SippRun::uac(
        Scenario::uac_info_dtmf('7', 400, 1000).play_pcap(&pcap_path),
        hl.sip_addr(),
    );
    run.service = "play".into();
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let records = hl.ended(3, WAIT);
    assert_eq!(records.len(), 3, "{:?}", hl.seen);
    let mut digits = dtmf_of(&hl, &records[2].id);
    digits.sort_by_key(|d| d.0);
    assert_eq!(
        digits,
        vec![('5', DigitSource::Rfc4733), ('7', DigitSource::SipInfo)]
    );
}

#[test]
fn play_number_hangs_up_with_bye_after_its_rounds() {
    let mut hl = Hotline::start(|c| {
        let mut n = Hotline::number("play", NumberMode::Play);
        n.digit_timeout_secs = 1;
        c.numbers.push(n);
    });
    let mut run = SippRun::uac(Scenario::uac_wait_bye(15_000), hl.sip_addr());
    run.service = "play".into();
    let uac = run.spawn().unwrap().wait().unwrap();
    // The scenario fails unless a BYE came and was answered.
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let bye = received_msg(&uac, "BYE sip:", "CSeq:");
    assert!(bye.contains("BYE sip:sipp@127.0.0.1:"), "{bye}");

    let records = hl.ended(1, WAIT);
    assert_eq!(records.len(), 1, "{:?}", hl.seen);
    let r = &records[0];
    assert_eq!(r.hangup.outcome, Outcome::Completed);
    assert_eq!(r.hangup.by, Party::Local);
    // Three rounds without digits: three empty collections.
    let collected: Vec<CallEvent> = events_of(&hl, &r.id)
        .into_iter()
        .filter(|e| matches!(e, CallEvent::DigitsCollected { .. }))
        .collect();
    assert_eq!(
        collected,
        vec![
            CallEvent::DigitsCollected {
                digits: String::new()
            };
            3
        ]
    );
}

#[test]
fn call_over_tcp_is_answered_with_a_tcp_contact_and_ends_with_bye() {
    let mut hl = Hotline::start(|c| {
        let mut n = Hotline::number("play", NumberMode::Play);
        n.digit_timeout_secs = 1;
        c.numbers.push(n);
    });
    let tcp = hl.engine.local_addr(Transport::Tcp).unwrap();
    let mut run = SippRun::uac(Scenario::uac_offer(Offer::PcmuDtmf, 500), tcp);
    run.service = "echo".into();
    run.extra = vec!["-t".into(), "t1".into()];
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let ok = received_msg(&uac, "SIP/2.0 200 OK", "CSeq: 1 INVITE");
    let contact = ok
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("contact:"))
        .unwrap_or_else(|| panic!("no Contact in {ok}"));
    assert!(contact.contains("transport=tcp"), "{contact}");
    assert!(ok.contains("Via: SIP/2.0/TCP"), "{ok}");
    assert_eq!(uac.count_received("SIP/2.0 200 OK", "CSeq: 2 BYE"), 1);

    let records = hl.ended(1, WAIT);
    assert_eq!(records.len(), 1, "{:?}", hl.seen);
    assert_eq!(records[0].hangup.outcome, Outcome::Completed);
    assert_eq!(records[0].hangup.by, Party::Remote);

    // Hotline's own BYE goes back over the caller's connection.
    let mut run = SippRun::uac(Scenario::uac_wait_bye(15_000), tcp);
    run.service = "play".into();
    run.extra = vec!["-t".into(), "t1".into()];
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let bye = received_msg(&uac, "BYE sip:", "CSeq:");
    assert!(bye.contains("Via: SIP/2.0/TCP"), "{bye}");
    let records = hl.ended(2, WAIT);
    assert_eq!(records.len(), 2, "{:?}", hl.seen);
    assert_eq!(records[1].hangup.outcome, Outcome::Completed);
    assert_eq!(records[1].hangup.by, Party::Local);
}

#[test]
fn options_gets_200_with_allow_and_bye_for_no_dialog_gets_481() {
    let mut hl = Hotline::start(|_| {});
    let run = SippRun::uac(Scenario::uac_options_481(), hl.sip_addr());
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let ok = received_msg(&uac, "SIP/2.0 200 OK", "CSeq: 1 OPTIONS");
    let allow = ok
        .lines()
        .find(|l| l.starts_with("Allow:"))
        .unwrap_or_else(|| panic!("no Allow in {ok}"));
    for method in ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "REFER"] {
        assert!(allow.contains(method), "{allow}");
    }
    assert_eq!(uac.count_received("SIP/2.0 481", "CSeq: 2 BYE"), 1);
    // Neither request became a call.
    assert!(hl.engine.registry().is_empty());
    assert!(
        !hl.wait_for(Duration::from_millis(300), |seen| !seen.is_empty()),
        "{:?}",
        hl.seen
    );
}

#[test]
fn blind_transfer_refers_the_caller_and_ends_as_transferred() {
    let mut hl = Hotline::start(|_| {});
    let mut run = SippRun::uac(
        Scenario::uac_transfer(r"sip:bob@127\.0\.0\.1", 10_000),
        hl.sip_addr(),
    );
    run.service = "echo".into();
    let uac = run.spawn().unwrap();
    assert!(
        hl.wait_for(WAIT, |seen| seen
            .iter()
            .any(|(_, e)| *e == CallEvent::Answered)),
        "{:?}",
        hl.seen
    );
    let handles = hl.engine.registry().handles();
    assert_eq!(handles.len(), 1);
    handles[0]
        .command(CallCommand::Transfer {
            target: "sip:bob@127.0.0.1".into(),
        })
        .unwrap();
    let records = hl.ended(1, WAIT);
    let uac = uac.wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let refer = received_msg(&uac, "REFER sip:", "Refer-To:");
    assert!(refer.contains("sip:bob@127.0.0.1"), "{refer}");
    assert_eq!(uac.count_received("SIP/2.0 200 OK", "CSeq: 2 NOTIFY"), 1);
    assert_eq!(uac.count_received("SIP/2.0 200 OK", "CSeq: 3 NOTIFY"), 1);
    assert_eq!(uac.count_received("BYE sip:", "BYE"), 1);

    assert_eq!(records.len(), 1, "{:?}", hl.seen);
    let r = &records[0];
    assert_eq!(r.id, handles[0].id);
    assert_eq!(r.hangup.outcome, Outcome::Transferred);
    assert_eq!(r.hangup.by, Party::Local);
    assert_eq!(r.hangup.sip_code, Some(200));
    let statuses: Vec<CallEvent> = events_of(&hl, &r.id)
        .into_iter()
        .filter(|e| matches!(e, CallEvent::TransferStatus { .. }))
        .collect();
    assert_eq!(
        statuses,
        vec![
            CallEvent::TransferStatus { sip_code: 100 },
            CallEvent::TransferStatus { sip_code: 200 }
        ]
    );
}

#[test]
fn silent_peer_is_hung_up_for_rtp_inactivity() {
    let mut hl = Hotline::start(|c| c.rtp.inactivity_timeout_secs = 2);
    // sipp sends no RTP at all and waits for Hotline's BYE.
    let mut run = SippRun::uac(Scenario::uac_wait_bye(15_000), hl.sip_addr());
    run.service = "echo".into();
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    assert_eq!(uac.count_received("BYE sip:", "BYE"), 1);

    let records = hl.ended(1, WAIT);
    assert_eq!(records.len(), 1, "{:?}", hl.seen);
    let r = &records[0];
    assert_eq!(r.hangup.outcome, Outcome::MediaTimeout);
    assert_eq!(r.hangup.by, Party::Local);
    assert!(r.answered.is_some());
}
