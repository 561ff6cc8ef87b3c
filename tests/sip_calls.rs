//! Hotline's call engine against real SIP peers on 127.0.0.1: sipp as
//! caller and callee. Every test checks what the peer saw (sipp's verdict
//! and messages) and what Hotline recorded (the call's events and record).
//! Needs `scripts/deps` (sipp, espeak-ng, sox) and root for sipp's
//! `play_pcap_audio`.

mod peers;

use std::time::Duration;

use hotline::call::{CallEvent, Outcome, Party};
use hotline::config::{NumberMode, TrunkConfig};
use hotline::engine::app::PlaySpec;
use hotline::engine::{CallApp, OutboundCall};
use peers::hotline::Hotline;
use peers::pcap;
use peers::rtp::RtpSink;
use peers::sipp::{Offer, Scenario, SippRun};

const SPEECH: &str = "Please enter your account number, then press pound.";
const WAIT: Duration = Duration::from_secs(20);

fn play_number(h: &mut hotline::config::Config) {
    let mut n = Hotline::number("play", NumberMode::Play);
    n.digit_timeout_secs = 10;
    h.numbers.push(n);
}

#[test]
fn sipp_caller_digits_reach_the_play_number_in_order() {
    let mut hl = Hotline::start(play_number);
    let pcap_path = pcap::speech_dtmf_pcap(SPEECH, "1234#").unwrap();
    let sent = pcap::read_pcap(&pcap_path).unwrap();
    let pcap_ms = (sent.last().unwrap().at_us - sent[0].at_us) / 1000;
    let mut run = SippRun::uac(
        Scenario::uac_pcap(&pcap_path, pcap_ms + 1000),
        hl.sip_addr(),
    );
    run.service = "play".into();
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());

    let records = hl.ended(1, WAIT);
    assert_eq!(records.len(), 1, "{:?}", hl.seen);
    let r = &records[0];
    assert_eq!(r.hangup.outcome, Outcome::Completed);
    assert_eq!(r.hangup.by, Party::Remote);
    assert!(r.answered.is_some() && r.answered.unwrap() <= r.ended);
    let digits: String = hl
        .events(|e| matches!(e, CallEvent::Dtmf { .. }))
        .iter()
        .map(|e| match e {
            CallEvent::Dtmf { digit, .. } => *digit,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(digits, "1234#");
    let collected = hl.events(|e| matches!(e, CallEvent::DigitsCollected { .. }));
    assert_eq!(
        collected,
        vec![CallEvent::DigitsCollected {
            digits: "1234".into()
        }]
    );
    // 100 Trying went out at once, then the 200 with our SDP answer.
    let log = uac.file("messages.log");
    assert!(log.contains("SIP/2.0 100 Trying"), "{log}");
    assert!(
        log.contains("m=audio") && log.contains("RTP/AVP 0 101"),
        "{log}"
    );
}

#[test]
fn unknown_number_gets_404_and_codec_mismatch_gets_488() {
    let mut hl = Hotline::start(|_| {});
    let mut run = SippRun::uac(Scenario::uac_expect_status(404), hl.sip_addr());
    run.service = "nobody".into();
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());

    let g729 = Offer::Custom {
        formats: "18".into(),
        attrs: "a=rtpmap:18 G729/8000".into(),
    };
    let mut run = SippRun::uac(Scenario::uac_expect_status(488).offer(g729), hl.sip_addr());
    run.service = "echo".into();
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    assert!(uac.file("messages.log").contains("Warning: 305"));
    // The 404 never became a call; the 488 did, and failed.
    let records = hl.ended(1, WAIT);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].hangup.sip_code, Some(488));
    assert_eq!(records[0].hangup.outcome, Outcome::Failed);
}

#[test]
fn unknown_source_gets_403() {
    let hl = Hotline::start(|c| c.sip.local_networks.clear());
    let mut run = SippRun::uac(Scenario::uac_expect_status(403), hl.sip_addr());
    run.service = "echo".into();
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    assert!(hl.engine.registry().is_empty());
}

#[test]
fn pcma_only_and_opus_only_offers_are_answered_in_kind() {
    let mut hl = Hotline::start(|_| {});
    for (offer, expect) in [(Offer::Pcma, "RTP/AVP 8"), (Offer::Opus, "RTP/AVP 111")] {
        let mut run = SippRun::uac(Scenario::uac_offer(offer, 300), hl.sip_addr());
        run.service = "echo".into();
        let uac = run.spawn().unwrap().wait().unwrap();
        assert!(uac.all_ok(), "{}", uac.diagnostics());
        let log = uac.file("messages.log");
        let answer = log
            .split("SIP/2.0 200 OK")
            .nth(1)
            .expect("a 200 OK was received");
        assert!(answer.contains(expect), "{answer}");
    }
    let records = hl.ended(2, WAIT);
    assert_eq!(records.len(), 2);
    assert!(
        records
            .iter()
            .all(|r| r.hangup.outcome == Outcome::Completed)
    );
}

#[test]
fn caller_cancel_before_answer_gets_487() {
    let mut hl = Hotline::start(|c| {
        let mut n = Hotline::number("slow", NumberMode::Echo);
        n.ring_secs = 10;
        c.numbers.push(n);
    });
    let mut run = SippRun::uac(Scenario::uac_cancel(300), hl.sip_addr());
    run.service = "slow".into();
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let records = hl.ended(1, WAIT);
    assert_eq!(records[0].hangup.outcome, Outcome::Canceled);
    assert_eq!(records[0].hangup.by, Party::Remote);
    assert_eq!(records[0].hangup.sip_code, Some(487));
    assert!(records[0].answered.is_none());
}

#[test]
fn lost_ack_makes_hotline_retransmit_its_200() {
    let mut hl = Hotline::start(|_| {});
    let mut run = SippRun::uac(Scenario::uac_lost_200(1_200, 300), hl.sip_addr());
    run.service = "echo".into();
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let n = uac.count_received("SIP/2.0 200 OK", "CSeq: 1 INVITE");
    assert!(n >= 2, "{n} 200s\n{}", uac.diagnostics());
    let records = hl.ended(1, WAIT);
    assert_eq!(records[0].hangup.outcome, Outcome::Completed);
}

fn trunk_to(sipp: std::net::SocketAddr, auth: Option<(&str, &str)>) -> TrunkConfig {
    TrunkConfig {
        username: auth.map(|a| a.0.into()),
        password: auth.map(|a| a.1.into()),
        codecs: vec!["PCMU".into()],
        caller_id: Some("+14155550100".into()),
        ..TrunkConfig::new("carrier", &sipp.to_string())
    }
}

fn prompt_app() -> CallApp {
    CallApp::Play(PlaySpec {
        prompt: Some(
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/prompts/thank_you_16k.wav"),
        ),
        max_digits: 4,
        digit_timeout: Duration::from_millis(500),
        rounds: 1,
    })
}

#[test]
fn outbound_call_through_a_digest_trunk_plays_the_prompt_and_hangs_up() {
    let sink = RtpSink::bind(0, false).unwrap();
    let mut uas = SippRun::uas(Scenario::uas_auth(
        "alice",
        "s3cret",
        Some(sink.port()),
        15_000,
    ))
    .spawn()
    .unwrap();
    uas.wait_ready(Duration::from_secs(5)).unwrap();
    let sipp_addr = uas.sip_addr();
    let mut hl = Hotline::start(|c| {
        c.trunks
            .push(trunk_to(sipp_addr, Some(("alice", "s3cret"))))
    });
    let call = hl
        .rt
        .block_on(hl.engine.place_call(OutboundCall {
            id: None,
            trunk: Some("carrier".into()),
            to: "+14155550123".into(),
            from: None,
            app: prompt_app(),
            ring_timeout: None,
        }))
        .unwrap();
    let records = hl.ended(1, WAIT);
    let uas = uas.wait().unwrap();
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    assert_eq!(records.len(), 1, "{:?}", hl.seen);
    let r = &records[0];
    assert_eq!(r.id, call.id);
    assert_eq!(r.hangup.outcome, Outcome::Completed);
    assert_eq!(r.hangup.by, Party::Local);
    let log = uas.file("messages.log");
    assert!(log.contains("Authorization: Digest"), "{log}");
    assert!(log.contains("INVITE sip:+14155550123@"), "{log}");
    assert!(log.contains("From: <sip:+14155550100@"), "{log}");
    // The prompt reached the callee's media port: non-silent, about its
    // length (1.2 s of "thank you" plus comfort silence around it).
    let cap = sink.finish();
    let pcm = cap.g711_pcm();
    assert!(peers::audio::is_non_silent(&pcm));
    let active =
        peers::audio::active_fraction(&pcm, 8000) * peers::audio::duration_secs(&pcm, 8000);
    let prompt_secs = {
        let (rate, samples) = peers::audio::read_wav(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/prompts/thank_you_16k.wav"),
        )
        .unwrap();
        samples.len() as f64 / rate as f64
    };
    assert!(
        (active - prompt_secs).abs() < 0.5 * prompt_secs,
        "active {active:.2}s vs prompt {prompt_secs:.2}s"
    );
}

#[test]
fn outbound_call_hung_up_by_the_callee_and_busy_callee() {
    let mut uas = SippRun::uas(Scenario::uas_answer(None, 500))
        .spawn()
        .unwrap();
    uas.wait_ready(Duration::from_secs(5)).unwrap();
    let sipp_addr = uas.sip_addr();
    let mut hl = Hotline::start(|_| {});
    hl.rt
        .block_on(hl.engine.place_call(OutboundCall {
            id: None,
            trunk: None,
            to: format!("sip:test@{sipp_addr}"),
            from: Some("+14155550100".into()),
            app: CallApp::Echo,
            ring_timeout: None,
        }))
        .unwrap();
    let records = hl.ended(1, WAIT);
    let uas = uas.wait().unwrap();
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    assert_eq!(records[0].hangup.outcome, Outcome::Completed);
    assert_eq!(records[0].hangup.by, Party::Remote);

    let mut busy = SippRun::uas(Scenario::from_fixture("uas_status.xml").var("STATUS", 486))
        .spawn()
        .unwrap();
    busy.wait_ready(Duration::from_secs(5)).unwrap();
    let busy_addr = busy.sip_addr();
    hl.rt
        .block_on(hl.engine.place_call(OutboundCall {
            id: None,
            trunk: None,
            to: format!("sip:test@{busy_addr}"),
            from: None,
            app: CallApp::Echo,
            ring_timeout: None,
        }))
        .unwrap();
    let records = hl.ended(2, WAIT);
    let busy = busy.wait().unwrap();
    assert!(busy.all_ok(), "{}", busy.diagnostics());
    assert_eq!(records[1].hangup.outcome, Outcome::Busy);
    assert_eq!(records[1].hangup.sip_code, Some(486));
}

#[test]
fn trunk_registration_answers_the_challenge_and_unregisters_on_drain() {
    let scenario = Scenario::from_fixture("uas_registrar.xml")
        .var("REALM", "carrier.test")
        .var("USER", "acct42")
        .var("PASSWORD", "s3cret")
        .hold_ms(15_000);
    let mut registrar = SippRun::uas(scenario).spawn().unwrap();
    registrar.wait_ready(Duration::from_secs(5)).unwrap();
    let addr = registrar.sip_addr();
    let hl = Hotline::start(|c| {
        let mut t = trunk_to(addr, Some(("acct42", "s3cret")));
        t.register = true;
        t.register_expires_secs = 300;
        c.trunks.push(t);
    });
    // Registered once the registrar has seen both REGISTERs; then a drain
    // must remove the binding.
    let log_has_two = || {
        std::fs::read_to_string(registrar.dir.join("messages.log"))
            .map(|l| l.matches("REGISTER sip:").count() >= 2 && l.contains("SIP/2.0 200 OK"))
            .unwrap_or(false)
    };
    assert!(peers::ports::poll_until(Duration::from_secs(10), log_has_two).is_ok());
    hl.rt.block_on(hl.engine.drain(Duration::from_millis(100)));
    let r = registrar.wait().unwrap();
    assert!(r.all_ok(), "{}", r.diagnostics());
    let log = r.file("messages.log");
    assert!(
        log.contains("Authorization: Digest username=\"acct42\""),
        "{log}"
    );
    let last = log.rsplit("REGISTER sip:").next().unwrap();
    assert!(
        last.contains("Expires: 0") || last.contains("expires=0"),
        "{last}"
    );
}

#[test]
fn malformed_requests_get_400_and_the_engine_keeps_answering() {
    let hl = Hotline::start(|_| {});
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = sock.local_addr().unwrap();
    let head = |cseq: &str| {
        format!(
            "OPTIONS sip:echo@{hl} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{cseq}\r\n\
             From: <sip:t@{me}>;tag=1\r\nTo: <sip:echo@{hl}>\r\nCall-ID: bad-{cseq}@x\r\n\
             CSeq: {cseq}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            hl = hl.sip_addr()
        )
    };
    let mut buf = [0u8; 4096];
    // A CSeq that is not a number: answered 400, not a panic.
    sock.send_to(head("x OPTIONS").as_bytes(), hl.sip_addr())
        .unwrap();
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(answer.starts_with("SIP/2.0 400 "), "{answer}");
    assert!(answer.contains("Call-ID: bad-x OPTIONS@x"), "{answer}");
    // Binary junk is dropped without an answer.
    sock.send_to(&[0xff, 0x00, 0x13, 0x37], hl.sip_addr())
        .unwrap();
    // The engine still works: a well-formed OPTIONS gets 200 with Allow.
    sock.send_to(head("1 OPTIONS").as_bytes(), hl.sip_addr())
        .unwrap();
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(answer.starts_with("SIP/2.0 200 "), "{answer}");
    assert!(answer.contains("Allow: INVITE"), "{answer}");
}

#[test]
fn outbound_ring_timeout_and_hangup_while_ringing_send_cancel() {
    let mut hl = Hotline::start(|_| {});
    let mut run = SippRun::uas(Scenario::from_fixture("uas_ring_cancel.xml"));
    run.calls = 2;
    let mut uas = run.spawn().unwrap();
    uas.wait_ready(Duration::from_secs(5)).unwrap();
    let to = format!("sip:test@{}", uas.sip_addr());
    let call = |hl: &Hotline, ring: u64| {
        hl.rt
            .block_on(hl.engine.place_call(OutboundCall {
                id: None,
                trunk: None,
                to: to.clone(),
                from: None,
                app: CallApp::Echo,
                ring_timeout: Some(Duration::from_millis(ring)),
            }))
            .unwrap()
    };
    // Nobody answers within the ring timeout.
    call(&hl, 800);
    let records = hl.ended(1, WAIT);
    assert_eq!(records[0].hangup.outcome, Outcome::NoAnswer);
    assert_eq!(records[0].hangup.by, Party::Local);
    assert_eq!(records[0].hangup.sip_code, Some(487));
    assert!(hl.events(|e| *e == CallEvent::Ringing).len() == 1);
    // The application gives up while it rings.
    let handle = call(&hl, 30_000);
    assert!(hl.wait_for(WAIT, |seen| {
        seen.iter()
            .filter(|(id, e)| *id == handle.id && *e == CallEvent::Ringing)
            .count()
            == 1
    }));
    handle.command(hotline::call::CallCommand::Hangup).unwrap();
    let records = hl.ended(2, WAIT);
    assert_eq!(records[1].hangup.outcome, Outcome::Canceled);
    let uas = uas.wait().unwrap();
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    assert_eq!(uas.successful, 2);
}

#[test]
fn calls_beyond_max_calls_get_503_with_retry_after() {
    let mut hl = Hotline::start(|c| {
        c.sip.max_calls = 1;
        let mut n = Hotline::number("slow", NumberMode::Echo);
        n.ring_secs = 10;
        c.numbers.push(n);
    });
    // The one allowed call rings for 2 s, then its caller cancels.
    let mut first = SippRun::uac(Scenario::uac_cancel(2_000), hl.sip_addr());
    first.service = "slow".into();
    let first = first.spawn().unwrap();
    let registry = hl.engine.registry().clone();
    assert!(hl.wait_for(WAIT, |_| registry.len() == 1));
    let mut second = SippRun::uac(Scenario::uac_expect_status(503), hl.sip_addr());
    second.service = "echo".into();
    let second = second.spawn().unwrap().wait().unwrap();
    assert!(second.all_ok(), "{}", second.diagnostics());
    assert!(second.file("messages.log").contains("Retry-After: "));
    let first = first.wait().unwrap();
    assert!(first.all_ok(), "{}", first.diagnostics());
    let records = hl.ended(1, WAIT);
    assert_eq!(records.len(), 1, "the refused call never became a call");
    assert_eq!(records[0].hangup.outcome, Outcome::Canceled);
}

#[test]
fn stream_app_gets_the_calls_audio_in_and_out() {
    // sipp answers and echoes our RTP back: what we play must come back in
    // the call's received frames.
    let mut run = SippRun::uas(Scenario::uas_answer(None, 15_000));
    run.rtp_echo = true;
    let mut uas = run.spawn().unwrap();
    uas.wait_ready(Duration::from_secs(5)).unwrap();
    let mut hl = Hotline::start(|_| {});
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let handle = hl
        .rt
        .block_on(hl.engine.place_call(OutboundCall {
            id: None,
            trunk: None,
            to: format!("sip:test@{}", uas.sip_addr()),
            from: None,
            app: CallApp::Stream(tx),
            ring_timeout: None,
        }))
        .unwrap();
    let wav = peers::media::speech_wav(SPEECH, 16000).unwrap();
    let speech = peers::media::read_pcm(&wav).unwrap().1;
    let received = hl.rt.block_on(async {
        let mut audio = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(audio.handle.id, handle.id);
        let media = audio.media.clone();
        let frames = speech.len() / 320 + 50;
        let player = tokio::spawn(async move {
            for chunk in speech.chunks(320) {
                media.play(chunk.to_vec()).await.unwrap();
            }
        });
        let mut got = Vec::new();
        for _ in 0..frames {
            match tokio::time::timeout(Duration::from_secs(2), audio.frames.recv()).await {
                Ok(Some(f)) => got.extend_from_slice(&f),
                _ => break,
            }
        }
        player.await.unwrap();
        got
    });
    handle.command(hotline::call::CallCommand::Hangup).unwrap();
    let records = hl.ended(1, WAIT);
    assert_eq!(records[0].hangup.by, Party::Local);
    let uas = uas.wait().unwrap();
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    let speech = peers::media::read_pcm(&wav).unwrap().1;
    let c = peers::audio::correlate(&speech, 16000, &received, 16000, 500);
    assert!(c.coefficient > 0.8, "{c:?}");
}

#[test]
fn early_media_sends_183_with_sdp_and_ringback_audio() {
    let mut hl = Hotline::start(|c| {
        let mut n = Hotline::number("slow", NumberMode::Echo);
        n.ring_secs = 10;
        n.early_media = true;
        c.numbers.push(n);
    });
    let sink = RtpSink::bind(0, false).unwrap();
    let mut run = SippRun::uac(
        Scenario::uac_cancel(1_500)
            .var("RINGING", 183)
            .sdp_port(sink.port()),
        hl.sip_addr(),
    );
    run.service = "slow".into();
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let log = uac.file("messages.log");
    let progress = log.split("SIP/2.0 183").nth(1).expect("a 183");
    assert!(progress.contains("m=audio"), "{progress}");
    let records = hl.ended(1, WAIT);
    assert_eq!(records[0].hangup.outcome, Outcome::Canceled);
    // About 1.5 s of ringback (US plan: 2 s on, 4 s off) reached the caller.
    let cap = sink.finish();
    let pcm = cap.g711_pcm();
    assert!(peers::audio::is_non_silent(&pcm));
    assert!(peers::audio::duration_secs(&pcm, 8000) > 0.8);
}

#[test]
fn drain_refuses_new_calls_with_503_then_ends_live_ones_with_bye() {
    let mut uas = SippRun::uas(Scenario::uas_answer(None, 15_000))
        .spawn()
        .unwrap();
    uas.wait_ready(Duration::from_secs(5)).unwrap();
    let mut hl = Hotline::start(|_| {});
    let live = hl
        .rt
        .block_on(hl.engine.place_call(OutboundCall {
            id: None,
            trunk: None,
            to: format!("sip:test@{}", uas.sip_addr()),
            from: None,
            app: CallApp::Echo,
            ring_timeout: None,
        }))
        .unwrap();
    assert!(hl.wait_for(WAIT, |seen| {
        seen.iter()
            .any(|(id, e)| *id == live.id && *e == CallEvent::Answered)
    }));
    let engine = hl.engine.clone();
    let drain = hl
        .rt
        .spawn(async move { engine.drain(Duration::from_secs(2)).await });
    let mut run = SippRun::uac(Scenario::uac_expect_status(503), hl.sip_addr());
    run.service = "echo".into();
    let refused = run.spawn().unwrap().wait().unwrap();
    assert!(refused.all_ok(), "{}", refused.diagnostics());
    assert!(refused.file("messages.log").contains("Retry-After: "));
    hl.rt.block_on(drain).unwrap();
    let records = hl.ended(1, WAIT);
    assert_eq!(records[0].id, live.id);
    assert_eq!(records[0].hangup.by, Party::Local);
    let uas = uas.wait().unwrap();
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    assert!(uas.file("messages.log").contains("BYE sip:"));
}

/// RFC 4028's smallest interval is 90 s, so this test takes about 45 s:
/// Hotline, told to refresh, sends its re-INVITE at half the interval.
#[test]
fn session_timer_refresher_sends_a_refreshing_reinvite() {
    // The caller sends no RTP; keep the media timeout out of the way.
    let mut hl = Hotline::start(|c| c.rtp.inactivity_timeout_secs = 120);
    let scenario = Scenario::from_fixture("uac_session_timer.xml")
        .var("INTERVAL", 90)
        .hold_ms(60_000);
    let mut run = SippRun::uac(scenario, hl.sip_addr());
    run.service = "echo".into();
    run.timeout = Duration::from_secs(80);
    let uac = run.spawn().unwrap().wait().unwrap();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let log = uac.file("messages.log");
    let refresh = log
        .split("INVITE sip:sipp@")
        .nth(1)
        .expect("a re-INVITE from Hotline");
    assert!(refresh.contains("CSeq: "), "{refresh}");
    assert!(refresh.contains("m=audio"), "{refresh}");
    let records = hl.ended(1, WAIT);
    assert_eq!(records[0].hangup.outcome, Outcome::Completed);
    assert_eq!(records[0].hangup.by, Party::Remote);
}
