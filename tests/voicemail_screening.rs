//! Outbound agent calls placed with `on_voicemail`, end to end: the whole
//! server in process calls a sipp UAS whose RTP talker plays either a
//! voicemail greeting with its beep (a clip of the labelled AMD set in
//! `fixtures/amd/`) or a person's "Hello?". On the machine, the agent
//! never speaks: the message is said after the beep and the call ends
//! with outcome `voicemail`. On the person, the agent greets as usual.
//! Runs on SQLite and, when `HOTLINE_TEST_POSTGRES` is set, on Postgres.

mod peers;
mod support;

#[path = "support/front.rs"]
mod front;

use std::time::Duration;

use front::{Front, PATIENCE};
use peers::sipp::{Scenario, SippRun};
use peers::talker::{Talk, Talker, TalkerConfig};
use serde_json::{Value, json};
use support::db::TestDb;

const GREETING: &str = "Hello, this is Acme Plumbing calling about your appointment tomorrow.";
const MESSAGE: &str =
    "Hi, this is Acme Plumbing about your appointment tomorrow. Please call us back. Thank you.";

/// Places an agent call to a sipp UAS whose media is `script` (8 kHz),
/// screened for voicemail; returns the call once it has been concluded,
/// and what the callee heard.
async fn place(front: &Front, script: Vec<i16>, hold_ms: u64) -> (Value, Talk) {
    let talker = Talker::start(TalkerConfig { script, echo: None }).unwrap();
    let mut uas = SippRun::uas(Scenario::uas_answer(Some(talker.port()), hold_ms));
    uas.timeout = PATIENCE;
    let mut uas = tokio::task::block_in_place(|| uas.spawn().unwrap());
    tokio::task::block_in_place(|| uas.wait_ready(Duration::from_secs(10)).unwrap());
    let placed = front
        .send(
            reqwest::Method::POST,
            "/v1/calls",
            Some(json!({"to": format!("sip:callee@{}", uas.sip_addr()),
                "first_message": GREETING, "on_voicemail": "leave_message",
                "voicemail_message": MESSAGE})),
        )
        .await;
    let id = placed["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let call = loop {
        let (_, call) = front.get(&format!("/v1/calls/{id}")).await;
        // Concluded: the agent's (or the screening's) result is stored.
        if !call["ended_at"].is_null()
            && (call["outcome"].is_string() || call["summary"].is_string())
        {
            break call;
        }
        assert!(tokio::time::Instant::now() < deadline, "{call}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let result = tokio::task::block_in_place(|| uas.wait().unwrap());
    assert!(result.all_ok(), "{}", result.diagnostics());
    (call, talker.finish())
}

fn agent_lines(call: &Value) -> Vec<String> {
    call["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["speaker"] == "agent")
        .map(|l| l["text"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_machine_gets_the_message_after_the_beep_and_a_person_gets_the_agent(db: TestDb) {
    let front = Front::start(db).await;

    // A voicemail greeting whose beep ends 7.14 s after the answer.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/amd");
    let labels = std::fs::read_to_string(dir.join("labels.csv")).unwrap();
    let beep_end_ms: u64 = labels
        .lines()
        .find(|l| l.starts_with("machine_01_piper.wav,"))
        .and_then(|l| l.split(',').nth(3))
        .and_then(|b| b.parse().ok())
        .unwrap();
    let wav = std::fs::read(dir.join("machine_01_piper.wav")).unwrap();
    let greeting = hotline_media::wav::read_wav(&wav).unwrap().samples;
    let (call, talk) = place(&front, greeting, 30_000).await;
    assert_eq!(call["outcome"], "voicemail", "{call}");
    let data = &call["structured_data"];
    assert_eq!(data["answered_by"], "machine", "{call}");
    assert_eq!(data["voicemail_left"], true, "{call}");
    assert_eq!(data["beep_heard"], true, "{call}");
    assert_eq!(agent_lines(&call), [MESSAGE], "only the message: {call}");
    assert!(front.llm.chats().is_empty(), "the agent never ran");
    // The message came after the beep, and not before.
    let loud: Vec<Duration> = talk
        .heard
        .iter()
        .filter(|h| h.rms > peers::audio::NON_SILENT_RMS)
        .map(|h| h.at)
        .collect();
    let first = *loud.first().expect("the machine recorded the message");
    assert!(
        first >= Duration::from_millis(beep_end_ms),
        "spoke at {first:?}, the beep ended at {beep_end_ms} ms"
    );
    assert!(loud.len() > 100, "{} loud packets", loud.len());

    // A person says hello and waits: the agent greets them.
    let wav = peers::media::script_wav(&[(0.5, "Hello?")]).unwrap();
    let hello = peers::media::read_pcm(&wav).unwrap().1;
    let (call, talk) = place(&front, hello, 12_000).await;
    assert_ne!(call["outcome"], "voicemail", "{call}");
    let said = agent_lines(&call);
    assert_eq!(said.first().map(String::as_str), Some(GREETING), "{call}");
    assert!(!said.iter().any(|l| l == MESSAGE), "{call}");
    assert!(peers::audio::is_non_silent(&talk.pcm));
    front.finish().await;
}

mod a_machine_gets_the_message_after_the_beep_and_a_person_gets_the_agent {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::a_machine_gets_the_message_after_the_beep_and_a_person_gets_the_agent(
            super::support::db::TestDb::sqlite().await,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(db) = super::support::db::TestDb::postgres("screening").await {
            super::a_machine_gets_the_message_after_the_beep_and_a_person_gets_the_agent(db).await;
        }
    }
}
