//! Durable alert scheduling: the `hotline` binary is killed (SIGKILL, no
//! chance to clean up) while an alert waits out its delay and again
//! between two retries, and restarted. The alert must resume on schedule
//! with every call placed exactly once: the phone (a sipp UAS answering
//! 486 Busy) sees exactly as many INVITEs as the retry policy allows, and
//! the stored deliveries are attempts 1, 2, 3 with no gap and no repeat.
//! Runs on SQLite and, when `HOTLINE_TEST_POSTGRES` is set, on Postgres.

mod peers;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hotline::config::Config;
use peers::sipp::{Scenario, SippRun};
use serde_json::{Value, json};
use support::db::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_hotline");
const PHONE: &str = "+15550004444";

/// A `hotline serve` with its config file; killed when dropped.
struct Node {
    child: Child,
}

impl Node {
    fn start(config: &Path, http: u16) -> Node {
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .env_clear()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut node = Node { child };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
            assert!(node.child.try_wait().unwrap().is_none(), "hotline exited");
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "hotline never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    /// SIGKILL: no drain, no goodbye.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, db: &TestDb, http: u16, phone: std::net::SocketAddr) -> PathBuf {
    let sip = peers::ports::free_port();
    let toml = format!(
        r#"
data_dir = "{data}"

[http]
listen = "127.0.0.1:{http}"

[sip]
listen = ["udp:127.0.0.1:{sip}"]
drain_secs = 1

[rtp]
bind_ip = "127.0.0.1"
port_min = 41000
port_max = 41999

[database]
url = "{url}"

[providers.tts]
kind = "espeak"

[alerts]
poll_ms = 100
ring_secs = 5
call_timeout_secs = 185

[[trunks]]
name = "phones"
host = "{phone}"
codecs = ["PCMU"]
"#,
        data = dir.join("data").display(),
        url = db.url,
    );
    let path = dir.join("hotline.toml");
    std::fs::write(&path, toml).unwrap();
    // The file is the one the binary will load.
    Config::load(Some(&path), std::iter::empty())
        .unwrap()
        .validate()
        .unwrap();
    path
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let json: Value = res.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {json}");
        json
    }

    async fn until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let a = self
                .send(reqwest::Method::GET, &format!("/v1/alerts/{id}"), None)
                .await;
            if done(&a) {
                return a;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "never {what}: {a:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn deliveries(a: &Value) -> usize {
    a["deliveries"].as_array().map_or(0, Vec::len)
}

async fn resumes_exactly_once_after_kills(db: TestDb) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut run = SippRun::uas(Scenario::from_fixture("uas_status.xml").var("STATUS", 486));
    run.calls = 3;
    run.timeout = Duration::from_secs(90);
    let mut phone = run.spawn().unwrap();
    tokio::task::block_in_place(|| phone.wait_ready(Duration::from_secs(5)).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let http = peers::ports::free_port();
    let config = write_config(dir.path(), &db, http, phone.sip_addr());

    // The organization, its key and its verified phone, straight in the
    // database the nodes share.
    let org = db.store.ensure_org("acme").await.unwrap();
    let key = db.store.create_api_key(&org.id, "test").await.unwrap();
    let p = db.store.create_phone(&org.id, PHONE, None).await.unwrap();
    db.store
        .set_phone_code(&org.id, &p.id, "112233", i64::MAX)
        .await
        .unwrap();
    db.store
        .verify_phone(&org.id, &p.id, "112233", 0)
        .await
        .unwrap()
        .unwrap();
    let client = Client {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{http}"),
        key: key.plaintext,
    };

    let node = tokio::task::block_in_place(|| Node::start(&config, http));
    client
        .send(
            reqwest::Method::PATCH,
            "/v1/settings",
            Some(json!({"alerts": {"retry_interval_secs": 3, "max_retries": 2}})),
        )
        .await;
    let a = client
        .send(
            reqwest::Method::POST,
            "/v1/alerts",
            Some(json!({"title": "Payments are failing", "severity": "critical", "delay_seconds": 2})),
        )
        .await;
    let id = a["id"].as_str().unwrap().to_owned();
    client
        .until(&id, "waiting", |a| a["status"] == "waiting_for_primary_ack")
        .await;

    // Killed during the delay, back after it: the first call is placed.
    node.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let node = tokio::task::block_in_place(|| Node::start(&config, http));
    let a = client
        .until(&id, "called once", |a| {
            deliveries(a) == 1
                && a["deliveries"][0]["ended_at"].is_i64()
                && a["next_attempt_at"].is_i64()
        })
        .await;
    assert_eq!(a["deliveries"][0]["status"], "busy", "{a:#}");

    // Killed between two calls, back after the retry was due.
    node.kill();
    let next = a["next_attempt_at"].as_i64().unwrap();
    let wait = next - hotline::store::now_ms() + 1000;
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    let node = tokio::task::block_in_place(|| Node::start(&config, http));
    let a = client
        .until(&id, "failed", |a| a["status"] == "failed")
        .await;
    drop(node);

    let attempts: Vec<i64> = a["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 2, 3], "{a:#}");
    assert!(
        a["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "busy"),
        "{a:#}"
    );
    let history: Vec<&str> = a["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        ["waiting_for_primary_ack", "escalating_call", "failed"]
    );
    let phone = tokio::task::block_in_place(|| phone.wait().unwrap());
    assert_eq!(
        phone.count_received("INVITE sip:", "INVITE"),
        3,
        "{}",
        phone.diagnostics()
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    resumes_exactly_once_after_kills(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    if let Some(db) = TestDb::postgres("alert_restart").await {
        resumes_exactly_once_after_kills(db).await;
    }
}
