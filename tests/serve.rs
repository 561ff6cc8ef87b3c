//! The `hotline` binary as a user runs it: starts, answers /healthz, shuts
//! down cleanly on SIGTERM, and refuses a bad configuration with the key at
//! fault.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hotline");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// A running `hotline serve`, killed if a test fails before stopping it.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Starts the server on a free port with `env` and waits (bounded) until
    /// `/healthz` answers.
    fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let child = Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("HOTLINE_HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "HOTLINE_SIP__LISTEN",
                r#"["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]"#,
            )
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut server = Server { child, port };
        let start = Instant::now();
        while http_get(port, "/healthz").is_err() {
            assert!(
                server.child.try_wait().unwrap().is_none(),
                "server exited early"
            );
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "server never answered"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Sends SIGTERM and returns the exit status and everything logged.
    fn terminate(&mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut logs = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        (status, logs)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_answers_healthz_and_stops_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("d");
    let mut server = Server::start(
        data.path(),
        &[
            ("HOTLINE_DATA_DIR", data_dir.to_str().unwrap()),
            ("HOTLINE_LOG__FORMAT", "json"),
        ],
    );
    let response = http_get(server.port, "/healthz").unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert!(data_dir.is_dir(), "data dir created");

    let missing = http_get(server.port, "/nope").unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

    let (status, logs) = server.terminate();
    assert!(status.success(), "clean exit, got {status}");
    let first: serde_json::Value = serde_json::from_str(logs.lines().next().unwrap()).unwrap();
    assert_eq!(first["message"], "hotline listening", "{logs}");
    assert!(logs.contains("SIGTERM received"), "{logs}");
}

#[test]
fn bad_config_is_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hotline.toml");
    std::fs::write(&file, "[rtp]\nport_min = 20000\nport_max = 10000\n").unwrap();
    let out = Command::new(BIN)
        .args(["--config"])
        .arg(&file)
        .args(["config", "check"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rtp.port_min"), "{err}");
}

#[test]
fn config_show_prints_the_effective_config_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["config", "show"])
        .env_clear()
        .env("HOTLINE_PROVIDERS__LLM__API_KEY", "sk-very-secret")
        .env("HOTLINE_RTP__PORT_MIN", "12000")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(shown.contains("port_min = 12000"), "{shown}");
    assert!(!shown.contains("sk-very-secret"), "{shown}");
}

#[test]
fn text_logs_carry_no_colour_codes_when_not_on_a_terminal() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path(), &[]);
    let (status, logs) = server.terminate();
    assert!(status.success());
    assert!(logs.contains("hotline listening"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "{logs:?}");
}

#[test]
fn events_command_follows_the_live_stream_until_the_server_closes_it() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("d");
    let env = [("HOTLINE_DATA_DIR", data_dir.to_str().unwrap())];
    let mut server = Server::start(data.path(), &env);
    let out = Command::new(BIN)
        .args(["keys", "create", "--org", "acme"])
        .env_clear()
        .envs(env)
        .current_dir(data.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("hl_live_"), "{key}");
    let address = format!("127.0.0.1:{}", server.port);

    // A wrong key is refused before the upgrade.
    let refused = Command::new(BIN)
        .args(["events", "--key", "hl_live_wrong", "--server", &address])
        .env_clear()
        .current_dir(data.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // The right one follows until shutdown, which closes with 1001.
    let mut follower = Command::new(BIN)
        .args(["events", "--server", &address])
        .env_clear()
        .env("HOTLINE_API_KEY", &key)
        .current_dir(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the server counts it as a subscriber (bounded): on a busy
    // machine the upgrade can take longer than any fixed pause, and a
    // shutdown that starts first refuses it.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let metrics = http_get(server.port, "/metrics").unwrap_or_default();
        if metrics.contains("hotline_ws_subscribers 1") || follower.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(status) = follower.try_wait().unwrap() {
        let mut err = String::new();
        follower
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!("the follower ended early ({status}): {err}");
    }
    let (status, _) = server.terminate();
    assert!(status.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = follower.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "follower never ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    follower
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("1001"), "{err}");
}
