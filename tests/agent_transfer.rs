//! The voice agent's `transfer_call` when the caller's side refuses REFER:
//! Hotline calls the target itself through the trunk and bridges the two
//! calls, or, when the target does not answer, keeps the caller with the
//! agent and tells the brain. Real peers on 127.0.0.1: sipp for both
//! calls' signalling, RTP talkers for their audio, the local engines and
//! a flow brain for the agent.

mod peers;

use std::f64::consts::PI;
use std::time::Duration;

use hotline::agent::service::AgentService;
use hotline::call::{CallDirection, CallEvent, CallId, Outcome, Party, TranscriptLine};
use hotline::config::TrunkConfig;
use peers::hotline::Hotline;
use peers::sipp::{Scenario, SippRun};
use peers::talker::{Talker, TalkerConfig};

/// Transfers at once to sales; says sorry and hangs up when that fails.
const TRANSFER_FLOW: &str = r#"{"start": "to_sales", "nodes": [
  {"id": "to_sales", "type": "transfer", "text": "Putting you through to sales.",
   "number": "+14155550123", "outcome": "achieved", "on_failure": "sorry"},
  {"id": "sorry", "type": "hangup", "text": "Sorry, sales is not available. Goodbye.",
   "outcome": "not_achieved"}
]}"#;

const SALES: &str = "+14155550123";

/// Hotline with the voice agent running [`TRANSFER_FLOW`], and one trunk
/// whose far end is `trunk` (the sipp standing in for sales).
fn hotline_with_flow(trunk: std::net::SocketAddr, flow: &std::path::Path) -> Hotline {
    let models = std::path::PathBuf::from(
        std::env::var("HOTLINE_MODELS_DIR")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/data/models").to_owned()),
    );
    assert!(
        models.join("whisper").exists(),
        "no models in {}: run scripts/models",
        models.display()
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info,whisper_rs=warn")
        .with_test_writer()
        .try_init();
    let mut config = None;
    let h = Hotline::start(|c| {
        c.agent.models_dir = Some(models);
        c.agent.flow.file = Some(flow.to_owned());
        // The caller talks all along; the announcement must still reach
        // its end, where the transfer starts.
        c.agent.greeting_interruptible = false;
        c.trunks.push(TrunkConfig {
            codecs: vec!["PCMU".into()],
            caller_id: Some("+14155550100".into()),
            ..TrunkConfig::new("carrier", &trunk.to_string())
        });
        config = Some(c.clone());
    });
    let agents = AgentService::new(&config.expect("configured"), None);
    h.engine.set_agents(agents.clone());
    h.rt.block_on(agents.warm_up());
    h
}

fn flow_file() -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), TRANSFER_FLOW).unwrap();
    f
}

/// `secs` of a pure tone at 8 kHz.
fn tone(freq: f64, secs: f64) -> Vec<i16> {
    (0..(secs * 8000.0) as usize)
        .map(|i| (8000.0 * (2.0 * PI * freq * i as f64 / 8000.0).sin()) as i16)
        .collect()
}

/// 20 ms frames of `pcm` (8 kHz) whose energy is mostly at `freq`: the
/// Goertzel power at `freq` over the frame's whole energy (1 for a pure
/// tone, near 0 for speech, silence or another tone).
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
            // Loud enough to be meant, and mostly this tone.
            energy / 160.0 > 500.0 * 500.0 && 2.0 * power / (160.0 * energy) > 0.6
        })
        .count()
}

fn agent_lines(h: &Hotline) -> Vec<TranscriptLine> {
    h.events(|e| matches!(e, CallEvent::Transcript(l) if l.is_final && l.speaker == "agent"))
        .into_iter()
        .filter_map(|e| match e {
            CallEvent::Transcript(l) => Some(l),
            _ => None,
        })
        .collect()
}

/// The transfer's events on call `id`, in order.
fn transfer_events(h: &Hotline, id: &CallId) -> Vec<CallEvent> {
    h.seen
        .iter()
        .filter(|(c, e)| {
            c == id
                && matches!(
                    e,
                    CallEvent::TransferStatus { .. }
                        | CallEvent::TransferFailed { .. }
                        | CallEvent::Bridged { .. }
                )
        })
        .map(|(_, e)| e.clone())
        .collect()
}

#[test]
fn a_refused_refer_is_bridged_by_hotline_with_audio_both_ways() {
    // Sales rings for 1.5 s, answers, and plays 1100 Hz from the answer on.
    let sales_talker = Talker::start(TalkerConfig {
        script: tone(1100.0, 60.0),
        echo: None,
    })
    .unwrap();
    let mut sales = SippRun::uas(
        Scenario::uas_answer(Some(sales_talker.port()), 40_000).var("ANSWER_DELAY_MS", 1500),
    );
    sales.timeout = Duration::from_secs(70);
    let mut sales = sales.spawn().unwrap();
    sales.wait_ready(Duration::from_secs(5)).unwrap();
    let flow = flow_file();
    let mut h = hotline_with_flow(sales.sip_addr(), flow.path());

    // The caller plays 500 Hz all along, refuses the REFER with 405, and
    // hangs up 12 s later.
    let caller_talker = Talker::start(TalkerConfig {
        script: tone(500.0, 60.0),
        echo: None,
    })
    .unwrap();
    let mut caller = SippRun::uac(
        Scenario::uac_refer_refused(405, 30_000, 12_000).sdp_port(caller_talker.port()),
        h.sip_addr(),
    );
    caller.service = "agent".into();
    caller.timeout = Duration::from_secs(70);
    let caller = caller.spawn().unwrap();

    let records = h.ended(2, Duration::from_secs(60));
    let caller = caller.wait().unwrap();
    let sales = sales.wait().unwrap();
    let heard_by_caller = caller_talker.finish();
    let heard_by_sales = sales_talker.finish();
    assert!(caller.all_ok(), "{}", caller.diagnostics());
    assert!(sales.all_ok(), "{}", sales.diagnostics());

    // Two calls, linked: the caller's ended as transferred when it hung
    // up, and Hotline then hung up sales.
    assert_eq!(records.len(), 2, "{:?}", h.seen);
    let inbound = records
        .iter()
        .find(|r| r.direction == CallDirection::Inbound)
        .unwrap();
    let outbound = records
        .iter()
        .find(|r| r.direction == CallDirection::Outbound)
        .unwrap();
    assert_eq!(inbound.hangup.outcome, Outcome::Transferred, "{inbound:?}");
    assert_eq!(inbound.hangup.by, Party::Remote);
    assert_eq!(inbound.bridged_with.as_ref(), Some(&outbound.id));
    assert_eq!(outbound.bridged_with.as_ref(), Some(&inbound.id));
    assert_eq!(outbound.to, SALES);
    assert!(outbound.answered.is_some());
    assert_eq!(outbound.hangup.by, Party::Local, "{outbound:?}");
    assert_eq!(sales.count_received("BYE sip:", "BYE"), 1);
    let log = sales.file("messages.log");
    assert!(log.contains("INVITE sip:+14155550123@"), "{log}");
    // The caller refused REFER, then the bridge came up.
    let refer = caller.file("messages.log");
    assert!(refer.contains("Refer-To: <sip:+14155550123@"), "{refer}");
    let transfer_events = transfer_events(&h, &inbound.id);
    assert_eq!(
        transfer_events,
        [
            CallEvent::TransferStatus { sip_code: 405 },
            CallEvent::Bridged {
                with: outbound.id.clone()
            }
        ],
        "{transfer_events:?}"
    );

    // Audio both ways: sales heard the caller's tone, the caller heard
    // sales's (seconds of each), and ringback while sales rang (the
    // default plan's 425 Hz).
    let caller_at_sales = frames_at(&heard_by_sales.pcm, 500.0);
    let sales_at_caller = frames_at(&heard_by_caller.pcm, 1100.0);
    let ringback = frames_at(&heard_by_caller.pcm, 425.0);
    eprintln!(
        "frames: caller's tone at sales {caller_at_sales}, sales's tone at the caller \
         {sales_at_caller}, ringback {ringback}"
    );
    assert!(caller_at_sales > 150, "{caller_at_sales}");
    assert!(sales_at_caller > 150, "{sales_at_caller}");
    assert!(ringback > 10, "{ringback}");
    // The agent said its line and stopped: nothing of it after the bridge.
    let lines = agent_lines(&h);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0].text, "Putting you through to sales.");
}

#[test]
fn a_refused_refer_to_a_busy_target_leaves_the_caller_with_the_agent() {
    let mut busy = SippRun::uas(Scenario::from_fixture("uas_status.xml").var("STATUS", 486));
    busy.timeout = Duration::from_secs(60);
    let mut busy = busy.spawn().unwrap();
    busy.wait_ready(Duration::from_secs(5)).unwrap();
    let flow = flow_file();
    let mut h = hotline_with_flow(busy.sip_addr(), flow.path());

    // A silent caller that declines REFER and waits for the agent's BYE.
    let mut caller = SippRun::uac(
        Scenario::uac_refer_refused(603, 30_000, 40_000),
        h.sip_addr(),
    );
    caller.service = "agent".into();
    caller.timeout = Duration::from_secs(70);
    let caller = caller.spawn().unwrap();
    let concluded = h.wait_for(Duration::from_secs(60), |seen| {
        seen.iter()
            .any(|(_, e)| matches!(e, CallEvent::AgentResult(_)))
    });
    let caller = caller.wait().unwrap();
    let busy = busy.wait().unwrap();
    let lines = agent_lines(&h);
    assert!(concluded, "{lines:#?}");
    assert!(caller.all_ok(), "{}", caller.diagnostics());
    assert!(busy.all_ok(), "{}", busy.diagnostics());
    // The agent hung up the caller itself, after its failure line.
    assert_eq!(caller.count_received("BYE sip:", "BYE"), 1);

    let records = h.records();
    let inbound = records
        .iter()
        .find(|r| r.direction == CallDirection::Inbound)
        .unwrap();
    assert_eq!(
        transfer_events(&h, &inbound.id),
        [
            CallEvent::TransferStatus { sip_code: 603 },
            CallEvent::TransferFailed {
                sip_code: 486,
                reason: "busy".into()
            }
        ]
    );
    // The flow heard the failed result and took its `on_failure` branch.
    let said: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        said,
        [
            "Putting you through to sales.",
            "Sorry, sales is not available. Goodbye."
        ]
    );
    let result = h
        .events(|e| matches!(e, CallEvent::AgentResult(_)))
        .into_iter()
        .find_map(|e| match e {
            CallEvent::AgentResult(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        result.outcome.as_deref(),
        Some("not_achieved"),
        "{result:?}"
    );

    assert_eq!(inbound.hangup.outcome, Outcome::Completed, "{inbound:?}");
    assert_eq!(inbound.hangup.by, Party::Local);
    assert_eq!(inbound.bridged_with, None);
    let outbound = records
        .iter()
        .find(|r| r.direction == CallDirection::Outbound)
        .unwrap();
    assert_eq!(outbound.hangup.outcome, Outcome::Busy);
    assert_eq!(outbound.hangup.sip_code, Some(486));
    assert_eq!(outbound.to, SALES);
}
