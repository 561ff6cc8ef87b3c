//! A tiny SMTP sink on 127.0.0.1 that keeps every message it is given
//! (`tests/call_reports.rs`, `tests/receptionist_calls.rs`), and the
//! `[notify.email]` settings that point Hotline at it.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Notify;

/// One email as the sink received it.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// A tiny SMTP server on 127.0.0.1: enough of RFC 5321 for one client
/// (greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeping
/// every message it is given.
#[derive(Clone, Default)]
pub struct SmtpSink {
    mails: Arc<Mutex<Vec<Mail>>>,
    arrived: Arc<Notify>,
}

impl SmtpSink {
    /// Listens on 127.0.0.1; returns the port.
    pub async fn start(&self) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let sink = sink.clone();
                tokio::spawn(async move { sink.session(socket).await });
            }
        });
        port
    }

    async fn session(&self, socket: tokio::net::TcpStream) {
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        if !say(&mut write, "220 sink.test ESMTP ready").await {
            return;
        }
        let mut mail = Mail::default();
        while let Ok(Some(line)) = lines.next_line().await {
            let upper = line.to_ascii_uppercase();
            let reply = if upper.starts_with("EHLO") {
                "250-sink.test greets you\r\n250 8BITMIME"
            } else if upper.starts_with("HELO") {
                "250 sink.test"
            } else if let Some(rest) = upper.strip_prefix("MAIL FROM:") {
                mail = Mail {
                    from: line[line.len() - rest.len()..].trim().to_owned(),
                    ..Mail::default()
                };
                "250 OK"
            } else if let Some(rest) = upper.strip_prefix("RCPT TO:") {
                mail.to
                    .push(line[line.len() - rest.len()..].trim().to_owned());
                "250 OK"
            } else if upper == "DATA" {
                if !say(&mut write, "354 end with <CRLF>.<CRLF>").await {
                    return;
                }
                let mut data = String::new();
                while let Ok(Some(l)) = lines.next_line().await {
                    if l == "." {
                        break;
                    }
                    // Dot-stuffing undone.
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push('\n');
                }
                mail.data = data;
                self.mails.lock().unwrap().push(std::mem::take(&mut mail));
                self.arrived.notify_waiters();
                "250 OK queued"
            } else if upper == "QUIT" {
                let _ = say(&mut write, "221 bye").await;
                return;
            } else if upper == "RSET" || upper == "NOOP" {
                "250 OK"
            } else {
                "502 not implemented"
            };
            if !say(&mut write, reply).await {
                return;
            }
        }
    }

    /// Every message received so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

/// The message with a quoted-printable body decoded (lettre picks that
/// encoding for lines longer than 76 characters).
pub fn decoded(message: &str) -> String {
    let (head, body) = message.split_once("\n\n").unwrap_or((message, ""));
    if !head.contains("Content-Transfer-Encoding: quoted-printable") {
        return message.to_owned();
    }
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    format!("{head}\n\n{}", String::from_utf8_lossy(&out))
}

/// Writes one reply line; false when the client is gone.
async fn say(w: &mut tokio::net::tcp::OwnedWriteHalf, s: &str) -> bool {
    w.write_all(format!("{s}\r\n").as_bytes()).await.is_ok()
}

/// `[notify.email]` for a sink on `port`: to `owner@example.com`.
pub fn email_config(port: u16) -> hotline::reports::email::EmailConfig {
    toml::from_str(&format!(
        r#"
        smtp_host = "127.0.0.1"
        smtp_port = {port}
        starttls = false
        from = "Hotline <hotline@example.com>"
        to = ["owner@example.com"]
        public_url = "https://hotline.example.com"
        attempts = 2
        retry_delay_ms = 50
        timeout_secs = 10
        "#
    ))
    .unwrap()
}
