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

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn serve_answers_healthz_and_stops_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = Server(
        Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("HOTLINE_HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("HOTLINE_DATA_DIR", data.path().join("d"))
            .env("HOTLINE_LOG__FORMAT", "json")
            .current_dir(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );

    let start = Instant::now();
    let response = loop {
        match http_get(port, "/healthz") {
            Ok(r) => break r,
            Err(_) if start.elapsed() < Duration::from_secs(30) => {
                assert!(
                    server.0.try_wait().unwrap().is_none(),
                    "server exited early"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("server never answered: {e}"),
        }
    };
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert!(data.path().join("d").is_dir(), "data dir created");

    let missing = http_get(port, "/nope").unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_exit(&mut server.0, Duration::from_secs(10)).expect("exits after SIGTERM");
    assert!(status.success(), "clean exit, got {status}");
    let mut logs = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
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
    let port = free_port();
    let mut server = Server(
        Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("HOTLINE_HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("HOTLINE_DATA_DIR", data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while http_get(port, "/healthz").is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_exit(&mut server.0, Duration::from_secs(10)).expect("exits after SIGTERM");
    let mut logs = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("hotline listening"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "{logs:?}");
}
