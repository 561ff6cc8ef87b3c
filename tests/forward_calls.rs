//! `forward` numbers end to end: a caller (sipp) calls a number of the
//! configuration file that forwards to a number behind the trunk, where
//! another sipp stands in for the target; RTP talkers play both calls'
//! audio. Hotline answers the caller only once the target answers,
//! bridges audio and digits both ways, and ends each call with the other;
//! a busy, silent or looping target refuses the caller with the matching
//! status and nothing answered.

mod peers;

use std::f64::consts::PI;
use std::net::SocketAddr;
use std::time::Duration;

use hotline::call::{CallDirection, CallEvent, CallId, CallRecord, Outcome, Party};
use hotline::config::{NumberConfig, NumberMode, TrunkConfig};
use peers::hotline::Hotline;
use peers::sipp::{Scenario, SippRun};
use peers::talker::{Talker, TalkerConfig};

/// The forwarded DID.
const DID: &str = "+14155550100";
/// Where it forwards, behind the trunk.
const TARGET: &str = "+14155550123";

fn carrier(at: SocketAddr) -> TrunkConfig {
    TrunkConfig {
        codecs: vec!["PCMU".into()],
        caller_id: Some("+14155550999".into()),
        ..TrunkConfig::new("carrier", &at.to_string())
    }
}

fn forward(number: &str, to: &str, early_media: bool) -> NumberConfig {
    NumberConfig {
        forward_to: Some(to.into()),
        early_media,
        ..Hotline::number(number, NumberMode::Forward)
    }
}

/// Hotline with [`DID`] forwarding to [`TARGET`] through a trunk whose far
/// end is `target`, ringing at most `ring_secs`.
fn hotline(target: SocketAddr, early_media: bool, ring_secs: u64) -> Hotline {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
    Hotline::start(|c| {
        c.trunks.push(carrier(target));
        c.numbers.push(forward(DID, TARGET, early_media));
        c.sip.ring_timeout_secs = ring_secs;
    })
}

/// `secs` of a pure tone at 8 kHz.
fn tone(freq: f64, secs: f64) -> Vec<i16> {
    (0..(secs * 8000.0) as usize)
        .map(|i| (8000.0 * (2.0 * PI * freq * i as f64 / 8000.0).sin()) as i16)
        .collect()
}

/// 20 ms frames of `pcm` (8 kHz) whose energy is mostly at `freq`.
fn frames_at(pcm: &[i16], freq: f64) -> usize {
    pcm.chunks_exact(160)
        .filter(|f| {
            let coeff = 2.0 * (2.0 * PI * freq / 8000.0).cos();
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            let mut energy = 0.0;
            for &x in f.iter() {
                let x = f64::from(x);
                energy += x * x;
                let s0 = x + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
            energy / 160.0 > 500.0 * 500.0 && 2.0 * power / (160.0 * energy) > 0.6
        })
        .count()
}

fn legs(records: &[CallRecord]) -> (CallRecord, CallRecord) {
    let pick = |d| {
        records
            .iter()
            .find(|r| r.direction == d)
            .unwrap_or_else(|| panic!("no {d:?} call in {records:#?}"))
            .clone()
    };
    (pick(CallDirection::Inbound), pick(CallDirection::Outbound))
}

/// The inbound call's forward and bridge events, in order.
fn forward_events(h: &Hotline, id: &CallId) -> Vec<CallEvent> {
    h.seen
        .iter()
        .filter(|(c, e)| {
            c == id && matches!(e, CallEvent::Forwarding { .. } | CallEvent::Bridged { .. })
        })
        .map(|(_, e)| e.clone())
        .collect()
}

#[test]
fn a_forwarded_call_is_answered_with_the_target_and_bridged_until_the_caller_hangs_up() {
    // The target rings 1.5 s, answers, plays 1100 Hz and waits for a BYE.
    let target_talker = Talker::start(TalkerConfig {
        script: tone(1100.0, 60.0),
        echo: None,
    })
    .unwrap();
    let mut target = SippRun::uas(
        Scenario::uas_answer(Some(target_talker.port()), 40_000).var("ANSWER_DELAY_MS", 1500),
    );
    target.timeout = Duration::from_secs(60);
    let mut target = target.spawn().unwrap();
    target.wait_ready(Duration::from_secs(5)).unwrap();
    let mut h = hotline(target.sip_addr(), true, 30);

    // The caller plays 500 Hz, sends the digit 7 (SIP INFO) 2 s after the
    // answer, and hangs up 8 s after it.
    let caller_talker = Talker::start(TalkerConfig {
        script: tone(500.0, 60.0),
        echo: None,
    })
    .unwrap();
    let mut caller = SippRun::uac(
        Scenario::uac_info_dtmf('7', 2000, 6000).sdp_port(caller_talker.port()),
        h.sip_addr(),
    );
    caller.service = DID.into();
    caller.timeout = Duration::from_secs(60);
    let caller = caller.spawn().unwrap();

    let records = h.ended(2, Duration::from_secs(40));
    let caller = caller.wait().unwrap();
    let target = target.wait().unwrap();
    let heard_by_caller = caller_talker.finish();
    let heard_by_target = target_talker.finish();
    assert!(caller.all_ok(), "{}", caller.diagnostics());
    assert!(target.all_ok(), "{}", target.diagnostics());

    let (inbound, outbound) = legs(&records);
    assert_eq!(inbound.to, DID);
    assert_eq!(outbound.to, TARGET);
    assert_eq!(inbound.bridged_with.as_ref(), Some(&outbound.id));
    assert_eq!(outbound.bridged_with.as_ref(), Some(&inbound.id));
    // The caller was answered only after the target answered.
    let (Some(in_answer), Some(out_answer)) = (inbound.answered, outbound.answered) else {
        panic!("both answered: {records:#?}");
    };
    assert!(in_answer >= out_answer, "{records:#?}");
    assert!(
        in_answer.duration_since(inbound.started).unwrap() >= Duration::from_millis(1400),
        "{inbound:?}"
    );
    // The caller hung up; Hotline then hung up the target.
    assert_eq!(inbound.hangup.outcome, Outcome::Completed, "{inbound:?}");
    assert_eq!(inbound.hangup.by, Party::Remote);
    assert!(
        inbound
            .hangup
            .reason
            .starts_with("forwarded to +14155550123"),
        "{inbound:?}"
    );
    assert_eq!(outbound.hangup.by, Party::Local, "{outbound:?}");
    assert_eq!(target.count_received("BYE sip:", "BYE"), 1);
    assert_eq!(
        forward_events(&h, &inbound.id),
        [
            CallEvent::Forwarding {
                to: TARGET.into(),
                leg: outbound.id.clone()
            },
            CallEvent::Bridged {
                with: outbound.id.clone()
            }
        ]
    );

    // What the target saw: the forwarded number as caller ID, one hop
    // used, and the caller's 183 with early media came from its 180.
    let invite = target.file("messages.log");
    assert!(invite.contains("INVITE sip:+14155550123@"), "{invite}");
    assert!(invite.contains("From: <sip:+14155550100@"), "{invite}");
    assert!(invite.contains("Max-Forwards: 69"), "{invite}");
    let caller_log = caller.file("messages.log");
    assert!(caller_log.contains("SIP/2.0 183"), "{caller_log}");

    // Audio both ways (seconds of each), ringback before the answer (the
    // default plan's 425 Hz), and the caller's digit at the target as an
    // RFC 4733 event.
    let caller_at_target = frames_at(&heard_by_target.pcm, 500.0);
    let target_at_caller = frames_at(&heard_by_caller.pcm, 1100.0);
    let ringback = frames_at(&heard_by_caller.pcm, 425.0);
    eprintln!(
        "frames: caller's tone at the target {caller_at_target}, the target's at the caller \
         {target_at_caller}, ringback {ringback}"
    );
    assert!(caller_at_target > 150, "{caller_at_target}");
    assert!(target_at_caller > 150, "{target_at_caller}");
    assert!(ringback > 10, "{ringback}");
    assert_eq!(heard_by_target.digits, ['7']);
}

#[test]
fn the_targets_bye_ends_the_callers_call() {
    // The target answers at once, plays 1100 Hz and hangs up after 4 s.
    let target_talker = Talker::start(TalkerConfig {
        script: tone(1100.0, 60.0),
        echo: None,
    })
    .unwrap();
    let mut target = SippRun::uas(Scenario::uas_answer(Some(target_talker.port()), 4000));
    target.timeout = Duration::from_secs(40);
    let mut target = target.spawn().unwrap();
    target.wait_ready(Duration::from_secs(5)).unwrap();
    let mut h = hotline(target.sip_addr(), false, 30);

    // A caller that never hangs up itself: Hotline's BYE must come.
    let caller_talker = Talker::start(TalkerConfig {
        script: tone(500.0, 60.0),
        echo: None,
    })
    .unwrap();
    let mut caller = SippRun::uac(
        Scenario::uac_wait_bye(20_000).sdp_port(caller_talker.port()),
        h.sip_addr(),
    );
    caller.service = DID.into();
    caller.timeout = Duration::from_secs(40);
    let caller = caller.spawn().unwrap();

    let records = h.ended(2, Duration::from_secs(30));
    let caller = caller.wait().unwrap();
    let target = target.wait().unwrap();
    let heard_by_caller = caller_talker.finish();
    assert!(caller.all_ok(), "{}", caller.diagnostics());
    assert!(target.all_ok(), "{}", target.diagnostics());
    assert_eq!(caller.count_received("BYE sip:", "BYE"), 1);
    // Without early media the caller heard 180 while the target rang.
    assert!(caller.file("messages.log").contains("SIP/2.0 180"));

    let (inbound, outbound) = legs(&records);
    assert_eq!(outbound.hangup.by, Party::Remote, "{outbound:?}");
    assert_eq!(inbound.hangup.by, Party::Local, "{inbound:?}");
    assert_eq!(inbound.hangup.outcome, Outcome::Completed);
    assert!(
        inbound.hangup.reason.starts_with("forwarded to"),
        "{inbound:?}"
    );
    assert_eq!(inbound.bridged_with.as_ref(), Some(&outbound.id));
    let target_at_caller = frames_at(&heard_by_caller.pcm, 1100.0);
    assert!(target_at_caller > 100, "{target_at_caller}");
}

#[test]
fn a_busy_target_refuses_the_caller_with_486_and_nothing_is_answered() {
    let mut busy = SippRun::uas(Scenario::from_fixture("uas_status.xml").var("STATUS", 486));
    busy.timeout = Duration::from_secs(30);
    let mut busy = busy.spawn().unwrap();
    busy.wait_ready(Duration::from_secs(5)).unwrap();
    let mut h = hotline(busy.sip_addr(), false, 30);

    let mut caller = SippRun::uac(Scenario::uac_expect_status(486), h.sip_addr());
    caller.service = DID.into();
    caller.timeout = Duration::from_secs(30);
    let caller = caller.spawn().unwrap();
    let records = h.ended(2, Duration::from_secs(20));
    let caller = caller.wait().unwrap();
    let busy = busy.wait().unwrap();
    assert!(caller.all_ok(), "{}", caller.diagnostics());
    assert!(busy.all_ok(), "{}", busy.diagnostics());

    let (inbound, outbound) = legs(&records);
    assert_eq!(outbound.hangup.outcome, Outcome::Busy);
    assert_eq!(inbound.hangup.outcome, Outcome::Busy, "{inbound:?}");
    assert_eq!(inbound.hangup.sip_code, Some(486));
    assert!(
        inbound
            .hangup
            .reason
            .contains("forward to +14155550123 failed"),
        "{inbound:?}"
    );
    assert_eq!(inbound.answered, None);
    assert_eq!(outbound.answered, None);
    assert_eq!(inbound.bridged_with, None);
}

#[test]
fn a_target_that_does_not_answer_gets_the_caller_480_after_the_ring_timeout() {
    let mut silent = SippRun::uas(Scenario::from_fixture("uas_ring_cancel.xml"));
    silent.timeout = Duration::from_secs(30);
    let mut silent = silent.spawn().unwrap();
    silent.wait_ready(Duration::from_secs(5)).unwrap();
    let mut h = hotline(silent.sip_addr(), false, 2);

    let mut caller = SippRun::uac(Scenario::uac_expect_status(480), h.sip_addr());
    caller.service = DID.into();
    caller.timeout = Duration::from_secs(30);
    let caller = caller.spawn().unwrap();
    let records = h.ended(2, Duration::from_secs(20));
    let caller = caller.wait().unwrap();
    let silent = silent.wait().unwrap();
    assert!(caller.all_ok(), "{}", caller.diagnostics());
    assert!(silent.all_ok(), "{}", silent.diagnostics());
    // Hotline canceled the target at its ring timeout.
    assert_eq!(silent.count_received("CANCEL sip:", "CANCEL"), 1);
    // The caller heard the target ringing first.
    assert!(caller.file("messages.log").contains("SIP/2.0 180"));

    let (inbound, outbound) = legs(&records);
    assert_eq!(outbound.hangup.outcome, Outcome::NoAnswer);
    assert_eq!(inbound.hangup.outcome, Outcome::NoAnswer, "{inbound:?}");
    assert_eq!(inbound.hangup.sip_code, Some(480));
    assert_eq!(inbound.answered, None);
    let rang = inbound
        .ended
        .duration_since(inbound.started)
        .unwrap_or_default();
    assert!(rang >= Duration::from_secs(2), "{rang:?}");
}

#[test]
fn a_caller_that_gives_up_cancels_the_target_too() {
    let mut silent = SippRun::uas(Scenario::from_fixture("uas_ring_cancel.xml"));
    silent.timeout = Duration::from_secs(30);
    let mut silent = silent.spawn().unwrap();
    silent.wait_ready(Duration::from_secs(5)).unwrap();
    let mut h = hotline(silent.sip_addr(), false, 30);

    // CANCELs 1 s after the 180 Hotline relays.
    let mut caller = SippRun::uac(Scenario::uac_cancel(1000), h.sip_addr());
    caller.service = DID.into();
    caller.timeout = Duration::from_secs(30);
    let caller = caller.spawn().unwrap();
    let records = h.ended(2, Duration::from_secs(20));
    let caller = caller.wait().unwrap();
    let silent = silent.wait().unwrap();
    assert!(caller.all_ok(), "{}", caller.diagnostics());
    assert!(silent.all_ok(), "{}", silent.diagnostics());
    assert_eq!(silent.count_received("CANCEL sip:", "CANCEL"), 1);
    let (inbound, outbound) = legs(&records);
    assert_eq!(inbound.hangup.outcome, Outcome::Canceled, "{inbound:?}");
    assert_eq!(outbound.hangup.outcome, Outcome::Canceled, "{outbound:?}");
    assert_eq!(inbound.answered, None);
    assert_eq!(outbound.answered, None);
}

#[test]
fn a_forwarding_loop_through_our_own_numbers_is_refused_without_dialling() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
    // The trunk leads nowhere: nothing may be sent to it.
    let nowhere: SocketAddr = (peers::LOOPBACK, peers::ports::free_port()).into();
    let mut h = Hotline::start(|c| {
        c.trunks.push(carrier(nowhere));
        c.numbers
            .push(forward("+14155550101", "+14155550102", false));
        c.numbers
            .push(forward("+14155550102", "+14155550101", false));
    });
    let mut caller = SippRun::uac(Scenario::uac_expect_status(482), h.sip_addr());
    caller.service = "+14155550101".into();
    caller.timeout = Duration::from_secs(20);
    let caller = caller.spawn().unwrap().wait().unwrap();
    assert!(caller.all_ok(), "{}", caller.diagnostics());
    let records = h.ended(1, Duration::from_secs(10));
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0].direction, CallDirection::Inbound);
    assert_eq!(records[0].hangup.sip_code, Some(482));
    // No call to the target was ever placed.
    assert!(
        h.events(|e| matches!(e, CallEvent::Forwarding { .. }))
            .is_empty()
    );
}

#[test]
fn an_invite_with_no_hop_left_is_not_forwarded() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
    let nowhere: SocketAddr = (peers::LOOPBACK, peers::ports::free_port()).into();
    let mut h = Hotline::start(|c| {
        c.trunks.push(carrier(nowhere));
        c.numbers.push(forward(DID, TARGET, false));
    });
    // Max-Forwards 1: the forwarded INVITE would carry 0.
    let mut caller = SippRun::uac(
        Scenario::uac_expect_status(483).var("MAX_FORWARDS", 1),
        h.sip_addr(),
    );
    caller.service = DID.into();
    caller.timeout = Duration::from_secs(20);
    let caller = caller.spawn().unwrap().wait().unwrap();
    assert!(caller.all_ok(), "{}", caller.diagnostics());
    let records = h.ended(1, Duration::from_secs(10));
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0].hangup.sip_code, Some(483));
    assert!(
        h.events(|e| matches!(e, CallEvent::Forwarding { .. }))
            .is_empty()
    );
}
