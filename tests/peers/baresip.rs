//! baresip 1.0 as a headless, scripted SIP user agent: a generated config
//! directory, the `ctrl_tcp` module (JSON netstrings) for commands and
//! events, the `cons` module (UDP keys) for DTMF, `aufile` as the audio
//! source and `sndfile` recording what is sent (`-enc`) and received (`-dec`).
//!
//! Facts that shaped this (baresip 1.0.0 on Debian 12): `net_interface`
//! must be an address (`127.0.0.1`), not `lo`; `aufile` hangs the call up at
//! the end of its file (sources are padded with silence) and needs 8 kHz
//! mono S16 for PCMU; an incoming call whose Request-URI user differs from the
//! account's user gets 404; the `stdio` module needs a TTY (left out); DTMF
//! through `cons` is the key then KEYCODE_REL (0x04); without
//! `[rtp] bind_address` the SDP would carry a non-loopback address.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::process::Proc;

/// How to set baresip up.
#[derive(Debug, Clone)]
pub struct BaresipConfig {
    /// The account's user: an incoming call's Request-URI user must match.
    pub user: String,
    /// Answer incoming calls at once.
    pub auto_answer: bool,
    /// Audio source: an 8 kHz mono S16 WAV (padded with `pad_secs` of silence).
    pub source_wav: Option<PathBuf>,
    /// Silence appended to the source so the call outlives it.
    pub pad_secs: u32,
    /// `audio_codecs` of the account (e.g. "PCMU", "PCMA", "opus").
    pub codecs: String,
    /// Killed after this long regardless (also passed as `-t`).
    pub max_lifetime: Duration,
}

impl Default for BaresipConfig {
    fn default() -> Self {
        Self {
            user: "baresip".to_owned(),
            auto_answer: false,
            source_wav: None,
            pad_secs: 30,
            codecs: "PCMU".to_owned(),
            max_lifetime: Duration::from_secs(60),
        }
    }
}

/// A running baresip; killed on drop.
pub struct Baresip {
    proc: Proc,
    /// Config and log directory.
    pub dir: PathBuf,
    /// Where `sndfile` writes its WAVs.
    pub rec_dir: PathBuf,
    /// SIP port on 127.0.0.1.
    pub sip_port: u16,
    /// First port of its RTP range.
    pub rtp_port: u16,
    ctrl: TcpStream,
    cons_port: u16,
    buf: Vec<u8>,
    events: Vec<Value>,
    token: u32,
}

const MODULES: &[&str] = &[
    "g711.so",
    "opus.so",
    "aufile.so",
    "alsa.so",
    "sndfile.so",
    "cons.so",
];

impl Baresip {
    /// Writes the config, starts baresip and connects to its `ctrl_tcp`
    /// (bounded: 10 s).
    pub fn start(cfg: &BaresipConfig) -> anyhow::Result<Self> {
        let dir = super::run_dir(&format!("baresip-{}", cfg.user))?;
        let rec_dir = dir.join("rec");
        std::fs::create_dir_all(&rec_dir)?;
        let sip_port = super::ports::free_port();
        let ctrl_port = super::ports::free_port();
        let cons_port = super::ports::free_port();
        let rtp_port = super::ports::free_udp_block(8);
        let source = dir.join("source.wav");
        let src = match &cfg.source_wav {
            Some(wav) => wav.clone(),
            None => super::media::speech_wav(
                "This is baresip speaking on the loopback test line.",
                8000,
            )?,
        };
        super::media::padded_wav(&src, cfg.pad_secs, &source)?;
        let mut conf = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\n\
             call_local_timeout 120\ncall_max_calls 4\n\
             audio_player alsa,null\naudio_alert alsa,null\naudio_source aufile,{}\n\
             audio_level no\nausrc_format s16\nauplay_format s16\naudio_buffer 20-160\n\
             rtp_tos 0\nrtp_ports {rtp_port}-{}\nrtcp_mux no\njitter_buffer_delay 5-10\nrtp_stats no\n\
             module_path /usr/lib/baresip/modules\n",
            source.display(),
            rtp_port + 7,
        );
        for m in MODULES {
            conf.push_str(&format!("module {m}\n"));
        }
        conf.push_str(&format!(
            "module_tmp account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n\
             snd_path {}\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\ncons_listen 127.0.0.1:{cons_port}\n\
             \n[rtp]\nbind_address 127.0.0.1\n",
            rec_dir.display()
        ));
        std::fs::write(dir.join("config"), conf)?;
        let answer = if cfg.auto_answer { "auto" } else { "manual" };
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{}@127.0.0.1:{sip_port}>;regint=0;answermode={answer};audio_codecs={}\n",
                cfg.user, cfg.codecs
            ),
        )?;
        std::fs::write(dir.join("contacts"), "")?;
        let mut cmd = Command::new("baresip");
        cmd.arg("-f")
            .arg(&dir)
            .arg("-t")
            .arg(cfg.max_lifetime.as_secs().max(1).to_string());
        let mut proc = Proc::spawn("baresip", cmd, &dir.join("baresip.log"))?;
        let ctrl = match super::ports::wait_tcp_accepting(ctrl_port, Duration::from_secs(10)) {
            Ok(s) => s,
            Err(e) => {
                proc.kill();
                anyhow::bail!("{e}\nbaresip log:\n{}", proc.log());
            }
        };
        super::ports::wait_udp_bound(sip_port, Duration::from_secs(5))?;
        Ok(Self {
            proc,
            dir,
            rec_dir,
            sip_port,
            rtp_port,
            ctrl,
            cons_port,
            buf: Vec::new(),
            events: Vec::new(),
            token: 0,
        })
    }

    /// Its account URI.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.sip_port)
    }

    /// baresip's output so far.
    pub fn log(&self) -> String {
        self.proc.log()
    }

    /// Sends a long command (`dial`, `hangup`, `accept`, `quit`, …) over ctrl_tcp.
    pub fn command(&mut self, command: &str, params: Option<&str>) -> anyhow::Result<()> {
        self.token += 1;
        let mut msg = serde_json::json!({ "command": command, "token": self.token.to_string() });
        if let Some(p) = params {
            msg["params"] = Value::String(p.to_owned());
        }
        let body = serde_json::to_vec(&msg)?;
        let mut frame = format!("{}:", body.len()).into_bytes();
        frame.extend_from_slice(&body);
        frame.push(b',');
        self.ctrl.write_all(&frame)?;
        Ok(())
    }

    /// Calls `uri` (must be on 127.0.0.1).
    pub fn dial(&mut self, uri: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            uri.contains("@127.") || uri.contains("@localhost"),
            "refusing non-loopback {uri}"
        );
        self.command("dial", Some(uri))
    }

    /// Hangs up the current call.
    pub fn hangup(&mut self) -> anyhow::Result<()> {
        self.command("hangup", None)
    }

    /// Answers the ringing call.
    pub fn accept(&mut self) -> anyhow::Result<()> {
        self.command("accept", None)
    }

    /// Sends `digits` as DTMF in the current call (RFC 4733 via `cons`):
    /// each key pressed for 200 ms, `gap` between digits.
    pub fn send_dtmf(&mut self, digits: &str, gap: Duration) -> anyhow::Result<()> {
        let udp = UdpSocket::bind((super::LOOPBACK, 0))?;
        for d in digits.chars() {
            udp.send_to(d.to_string().as_bytes(), (super::LOOPBACK, self.cons_port))?;
            self.pump(Duration::from_millis(200))?;
            udp.send_to(&[0x04], (super::LOOPBACK, self.cons_port))?;
            self.pump(gap)?;
        }
        Ok(())
    }

    /// Reads ctrl_tcp messages for `d` (events are kept for [`wait_event`](Self::wait_event)).
    pub fn pump(&mut self, d: Duration) -> anyhow::Result<()> {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.read_some(end - Instant::now())?;
        }
        Ok(())
    }

    fn read_some(&mut self, timeout: Duration) -> anyhow::Result<()> {
        self.ctrl
            .set_read_timeout(Some(timeout.max(Duration::from_millis(5))))?;
        let mut chunk = [0u8; 8192];
        match self.ctrl.read(&mut chunk) {
            Ok(0) => anyhow::bail!("baresip closed ctrl_tcp; log:\n{}", self.log()),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        // netstrings: <len>:<json>,
        while let Some(colon) = self.buf.iter().position(|&b| b == b':') {
            let Some(len) = std::str::from_utf8(&self.buf[..colon])
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
            else {
                anyhow::bail!(
                    "bad netstring from baresip: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            };
            if self.buf.len() < colon + 1 + len + 1 {
                break;
            }
            let msg: Value = serde_json::from_slice(&self.buf[colon + 1..colon + 1 + len])?;
            self.buf.drain(..colon + 1 + len + 1);
            self.events.push(msg);
        }
        Ok(())
    }

    /// Every ctrl_tcp message received so far (events and responses).
    pub fn messages(&self) -> &[Value] {
        &self.events
    }

    /// Waits at most `timeout` for an event of `kind` (e.g. `CALL_ESTABLISHED`,
    /// `CALL_CLOSED`, `CALL_INCOMING`) and returns it, consuming it.
    pub fn wait_event(&mut self, kind: &str, timeout: Duration) -> anyhow::Result<Value> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(i) = self
                .events
                .iter()
                .position(|e| e["event"] == true && e["type"] == kind)
            {
                return Ok(self.events.remove(i));
            }
            let now = Instant::now();
            if now >= end {
                let seen: Vec<String> = self.events.iter().map(|e| e["type"].to_string()).collect();
                anyhow::bail!(
                    "no {kind} from baresip within {timeout:?} (seen {seen:?}); log:\n{}",
                    self.log()
                );
            }
            self.read_some(end - now)?;
        }
    }

    /// The WAVs `sndfile` wrote (`…-enc.wav` sent, `…-dec.wav` received).
    pub fn recordings(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.rec_dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wav"))
            .collect();
        v.sort();
        v
    }

    /// The recording of received (decoded) audio, if any.
    pub fn received_wav(&self) -> Option<PathBuf> {
        self.recordings()
            .into_iter()
            .find(|p| is_suffix(p, "-dec.wav"))
    }

    /// The recording of sent (encoded) audio, if any.
    pub fn sent_wav(&self) -> Option<PathBuf> {
        self.recordings()
            .into_iter()
            .find(|p| is_suffix(p, "-enc.wav"))
    }

    /// Asks baresip to quit and waits (5 s) for it; kills it otherwise.
    /// The WAV headers are final only after this.
    pub fn quit(mut self) -> anyhow::Result<()> {
        let _ = self.command("quit", None);
        self.proc.wait_timeout(Duration::from_secs(5)).map(|_| ())
    }
}

fn is_suffix(p: &Path, suffix: &str) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with(suffix))
}
