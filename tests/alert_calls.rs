//! Alert calls against a real phone on 127.0.0.1: sipp answers as the
//! user's phone, keys arrive as RFC 4733 events (sipp playing a pcap) or
//! as in-band tones (our RTP peer), and the peer's recording of the call is
//! checked for speech.

mod peers;

use std::sync::Arc;
use std::time::Duration;

use hotline::agent::espeak::{EspeakConfig, EspeakTts};
use hotline::alerts::call::{AlertCall, CallOutcome, speech};
use hotline::engine::{CallApp, OutboundCall};
use hotline_media::dtmf::{ToneParams, render_sequence};
use peers::hotline::Hotline;
use peers::sipp::{Scenario, SippRun};
use peers::talker::{Talker, TalkerConfig};

/// Places an alert call to `to` and waits for its outcome.
fn alert(h: &Hotline, to: String) -> Option<CallOutcome> {
    let tts = Arc::new(EspeakTts::new(&EspeakConfig::default()));
    let (call, outcome) = AlertCall::new(
        speech("Deploy needs approval", Some("Release 42 is waiting.")),
        tts,
        Arc::default(),
    );
    h.rt.block_on(async {
        h.engine
            .place_call(OutboundCall {
                id: None,
                trunk: None,
                to,
                from: None,
                app: CallApp::Alert(call),
                ring_timeout: None,
            })
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(60), outcome)
            .await
            .ok()
            .and_then(Result::ok)
    })
}

#[test]
fn zero_keyed_as_rfc4733_acknowledges() {
    let h = Hotline::start(|_| {});
    let pcap = peers::pcap::speech_dtmf_pcap("Hello?", "0").unwrap();
    let mut uas = SippRun::uas(Scenario::uas_answer(None, 30_000).play_pcap(&pcap))
        .spawn()
        .unwrap();
    uas.wait_ready(Duration::from_secs(5)).unwrap();
    let outcome = alert(&h, format!("sip:phone@{}", uas.sip_addr()));
    assert_eq!(outcome, Some(CallOutcome::Acknowledged));
    let uas = uas.wait().unwrap();
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    // The alert hung up after its confirmation.
    assert_eq!(uas.count_received("BYE sip:", "BYE"), 1);
}

#[test]
fn a_custom_snooze_keyed_in_band_is_taken_and_the_phone_hears_speech() {
    let mut h = Hotline::start(|_| {});
    // In-band tones 3 s into the call, over the alert's speech.
    let mut script = vec![0i16; 8000 * 3];
    render_sequence(
        8000,
        "15#",
        ToneParams::default(),
        Duration::from_millis(100),
        Duration::from_millis(100),
        &mut script,
    )
    .unwrap();
    let talker = Talker::start(TalkerConfig { script, echo: None }).unwrap();
    let mut uas = SippRun::uas(Scenario::uas_answer(Some(talker.port()), 30_000))
        .spawn()
        .unwrap();
    uas.wait_ready(Duration::from_secs(5)).unwrap();
    let outcome = alert(&h, format!("sip:phone@{}", uas.sip_addr()));
    assert_eq!(outcome, Some(CallOutcome::Snoozed(15)));
    let uas = uas.wait().unwrap();
    let talk = talker.finish();
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    // The phone heard speech: seconds of it (the alert until the keys,
    // then the confirmation).
    let loud = talk
        .heard
        .iter()
        .filter(|h| h.rms > peers::audio::NON_SILENT_RMS)
        .count();
    assert!(loud > 100, "{loud} loud packets");
    h.ended(1, Duration::from_secs(10));
    assert_eq!(h_digits(&h), "15#");
}

fn h_digits(h: &Hotline) -> String {
    h.events(|e| matches!(e, hotline::call::CallEvent::Dtmf { .. }))
        .into_iter()
        .filter_map(|e| match e {
            hotline::call::CallEvent::Dtmf { digit, .. } => Some(digit),
            _ => None,
        })
        .collect()
}
