//! sipp (3.6, Debian `sip-tester`) runs: scenario templates from
//! `fixtures/peers/` with `@NAME@` placeholders, a bounded process, and its
//! results read back from its stat, rtt, error and screen files.
//!
//! `play_pcap_audio` needs root (raw socket) and reads its pcap path when the
//! scenario loads, which is why paths are substituted into the XML.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::Proc;

/// What an SDP offer or answer holds on its `m=audio` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// PCMU/8000 (PT 0) + telephone-event/8000 (PT 101).
    PcmuDtmf,
    /// PCMA/8000 only (PT 8).
    Pcma,
    /// Opus only (PT 111, opus/48000/2).
    Opus,
    /// Any payload type list and attribute lines.
    Custom {
        /// The formats after `RTP/AVP`.
        formats: String,
        /// `a=` lines, one per line.
        attrs: String,
    },
}

impl Offer {
    fn formats(&self) -> &str {
        match self {
            Offer::PcmuDtmf => "0 101",
            Offer::Pcma => "8",
            Offer::Opus => "111",
            Offer::Custom { formats, .. } => formats,
        }
    }

    fn attrs(&self) -> &str {
        match self {
            Offer::PcmuDtmf => {
                "a=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16"
            }
            Offer::Pcma => "a=rtpmap:8 PCMA/8000",
            Offer::Opus => "a=rtpmap:111 opus/48000/2\na=fmtp:111 useinbandfec=1",
            Offer::Custom { attrs, .. } => attrs,
        }
    }
}

/// A scenario template plus its substitutions.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// File name in `fixtures/peers/`.
    pub template: String,
    vars: Vec<(String, String)>,
}

impl Scenario {
    /// A template with no substitutions yet.
    pub fn from_fixture(template: &str) -> Self {
        Self {
            template: template.to_owned(),
            vars: Vec::new(),
        }
    }

    /// Sets `@name@` to `value` (later calls win).
    pub fn var(mut self, name: &str, value: impl ToString) -> Self {
        self.vars.retain(|(k, _)| k != name);
        self.vars.push((name.to_owned(), value.to_string()));
        self
    }

    /// The SDP's codecs.
    pub fn offer(self, offer: Offer) -> Self {
        let desc = format!("RTP/AVP {}", offer.formats());
        self.var("SDP_FORMATS", offer.formats())
            .var("SDP_ATTRS", offer.attrs())
            .var("SDP_MEDIA_DESC", desc)
    }

    /// The port the SDP advertises (e.g. an [`super::rtp::RtpSink`]'s).
    pub fn sdp_port(self, port: u16) -> Self {
        self.var("SDP_PORT", port)
    }

    /// Plays `pcap` (RTP, see [`super::pcap`]) once the call is up.
    pub fn play_pcap(self, pcap: &Path) -> Self {
        let xml = format!(
            "  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>",
            pcap.display()
        );
        self.var("MEDIA_XML", xml)
    }

    /// How long the call is held before this side sends BYE (a UAS: how long
    /// it waits for the caller's BYE before hanging up itself).
    pub fn hold_ms(self, ms: u64) -> Self {
        self.var("HOLD_MS", ms)
    }

    /// The caller ID: the From URI's user (`sipp` unless set), in the
    /// templates that take it (`uac_pcap.xml`, `uac_status.xml`,
    /// `uac_wait_bye.xml`).
    pub fn caller_id(self, user: &str) -> Self {
        self.var("FROM_USER", user)
    }

    fn base(template: &str, sdp_port: &str) -> Self {
        Self::from_fixture(template)
            .caller_id("sipp")
            .offer(Offer::PcmuDtmf)
            .var("SDP_PORT", sdp_port)
            .var("MEDIA_XML", "")
            .hold_ms(1000)
    }

    /// UAC: PCMU + telephone-event offer, plays `pcap` after the ACK, holds
    /// `hold_ms` (make it ≥ the pcap's length), sends BYE.
    pub fn uac_pcap(pcap: &Path, hold_ms: u64) -> Self {
        Self::base("uac_pcap.xml", "[auto_media_port]")
            .play_pcap(pcap)
            .hold_ms(hold_ms)
    }

    /// UAC: `offer`, no media sent, holds `hold_ms`, sends BYE.
    pub fn uac_offer(offer: Offer, hold_ms: u64) -> Self {
        Self::base("uac_pcap.xml", "[auto_media_port]")
            .offer(offer)
            .hold_ms(hold_ms)
    }

    /// UAC: expects the final response `status` (a rejection), ACKs it.
    pub fn uac_expect_status(status: u16) -> Self {
        Self::base("uac_status.xml", "[auto_media_port]")
            .var("STATUS", status)
            .var("MAX_FORWARDS", 70)
    }

    /// UAC: CANCELs `cancel_after_ms` after the first 180, expects 200 + 487.
    pub fn uac_cancel(cancel_after_ms: u64) -> Self {
        Self::base("uac_cancel.xml", "[auto_media_port]")
            .var("RINGING", 180)
            .var("CANCEL_AFTER_MS", cancel_after_ms)
    }

    /// UAC: answers a 401/407 digest challenge (credentials from
    /// [`SippRun::auth`]), then like [`uac_offer`](Self::uac_offer).
    pub fn uac_auth(hold_ms: u64) -> Self {
        Self::base("uac_auth.xml", "[auto_media_port]").hold_ms(hold_ms)
    }

    /// UAC: ACKs the 200 OK only after `ack_delay_ms` (as if the first ACK
    /// were lost), so the server retransmits its 200; holds `hold_ms`, BYE.
    /// Count the retransmissions with [`SippResult::received`].
    pub fn uac_lost_200(ack_delay_ms: u64, hold_ms: u64) -> Self {
        Self::base("uac_lost_200.xml", "[auto_media_port]")
            .var("ACK_DELAY_MS", ack_delay_ms)
            .hold_ms(hold_ms)
    }

    /// UAC: calls, ACKs, runs its media (if any), then waits up to
    /// `wait_ms` for the far end's BYE and answers it 200; it never hangs
    /// up itself, so no BYE in time fails the call.
    pub fn uac_wait_bye(wait_ms: u64) -> Self {
        Self::base("uac_wait_bye.xml", "[auto_media_port]").hold_ms(wait_ms)
    }

    /// UAC: calls, then `pause_ms` later re-INVITEs with `a=sendonly`
    /// (hold; the 200 must answer `a=recvonly`), `pause_ms` later with
    /// `a=sendrecv` (resume; the 200 must answer `a=sendrecv`), and
    /// `pause_ms` later sends BYE.
    pub fn uac_hold_resume(pause_ms: u64) -> Self {
        Self::base("uac_hold_resume.xml", "[auto_media_port]").var("PAUSE_MS", pause_ms)
    }

    /// UAC: calls, runs its media (if any), `info_delay_ms` after the ACK
    /// sends `digit` as SIP INFO (`application/dtmf-relay`, Duration=160)
    /// and expects 200, holds `hold_ms`, sends BYE.
    pub fn uac_info_dtmf(digit: char, info_delay_ms: u64, hold_ms: u64) -> Self {
        Self::base("uac_info_dtmf.xml", "[auto_media_port]")
            .var("DIGIT", digit)
            .var("INFO_DELAY_MS", info_delay_ms)
            .hold_ms(hold_ms)
    }

    /// UAC, the transferee of a blind transfer: calls, waits up to
    /// `wait_ms` for REFER whose Refer-To matches `refer_to` (a regular
    /// expression), answers 202, sends NOTIFY `100 Trying` (active) and
    /// NOTIFY `200 OK` (terminated), then expects the transferor's BYE.
    pub fn uac_transfer(refer_to: &str, wait_ms: u64) -> Self {
        Self::base("uac_transfer.xml", "[auto_media_port]")
            .var("REFER_TO", refer_to)
            .hold_ms(wait_ms)
    }

    /// UAC whose far end refuses a transfer: calls, waits up to
    /// `refer_wait_ms` for REFER and answers it `status`; then answers the
    /// far end's BYE if it comes within `hold_ms`, or hangs up itself.
    pub fn uac_refer_refused(status: u16, refer_wait_ms: u64, hold_ms: u64) -> Self {
        Self::base("uac_refer_refused.xml", "[auto_media_port]")
            .var("REFER_STATUS", status)
            .var("REFER_WAIT_MS", refer_wait_ms)
            .hold_ms(hold_ms)
    }

    /// UAC outside any dialog: OPTIONS must get 200 with an Allow listing
    /// INVITE and BYE, then a BYE for a made-up dialog must get 481.
    pub fn uac_options_481() -> Self {
        Self::from_fixture("uac_options_481.xml")
    }

    /// UAS: 180, 200 with a PCMU + telephone-event answer on `sdp_port`
    /// (None: sipp's own `[media_port]`, for `-rtp_echo`), waits `hold_ms`
    /// for BYE, then sends BYE itself.
    pub fn uas_answer(sdp_port: Option<u16>, hold_ms: u64) -> Self {
        let port = sdp_port.map_or("[media_port]".to_owned(), |p| p.to_string());
        Self::base("uas_answer.xml", &port)
            .hold_ms(hold_ms)
            .var("ANSWER_DELAY_MS", 0)
    }

    /// UAS: challenges with 401 (realm `hotline.test`), verifies the second
    /// INVITE's credentials against `user`/`password`, then as
    /// [`uas_answer`](Self::uas_answer).
    pub fn uas_auth(user: &str, password: &str, sdp_port: Option<u16>, hold_ms: u64) -> Self {
        let port = sdp_port.map_or("[media_port]".to_owned(), |p| p.to_string());
        Self::base("uas_auth.xml", &port)
            .hold_ms(hold_ms)
            .var("REALM", "hotline.test")
            .var("USER", user)
            .var("PASSWORD", password)
    }

    /// The XML with every placeholder substituted; an unsubstituted `@NAME@`
    /// is an error (it would reach the wire).
    pub fn render(&self) -> anyhow::Result<String> {
        let path = super::fixtures_dir().join(&self.template);
        let mut xml = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        for (k, v) in &self.vars {
            xml = xml.replace(&format!("@{k}@"), v);
        }
        for (i, _) in xml.match_indices('@') {
            let rest = &xml[i + 1..];
            let n = rest
                .bytes()
                .take_while(|b| b.is_ascii_uppercase() || *b == b'_')
                .count();
            anyhow::ensure!(
                n == 0 || !rest[n..].starts_with('@'),
                "{}: @{}@ not substituted",
                self.template,
                &rest[..n]
            );
        }
        Ok(xml)
    }
}

/// Everything one sipp process needs.
#[derive(Debug, Clone)]
pub struct SippRun {
    /// The scenario.
    pub scenario: Scenario,
    /// UAC: where to send; UAS: None.
    pub target: Option<SocketAddr>,
    /// Local SIP port; 0 = a free one.
    pub sip_port: u16,
    /// Local media port (`-mp`, sipp binds it and the next ports); 0 = free.
    pub media_port: u16,
    /// Request-URI user (`-s`).
    pub service: String,
    /// Calls before exiting (`-m`).
    pub calls: u32,
    /// Concurrent calls at most (`-l`).
    pub limit: u32,
    /// New calls per second (`-r`).
    pub rate: f64,
    /// Global limit (`-timeout`, with `-timeout_error`); the process is
    /// killed 5 s after it.
    pub timeout: Duration,
    /// Echo RTP received on `-mp` (`-rtp_echo`).
    pub rtp_echo: bool,
    /// Digest credentials (`-au`, `-ap`).
    pub auth: Option<(String, String)>,
    /// Log every SIP message (`-trace_msg`, to `messages.log`).
    pub trace_msg: bool,
    /// More sipp arguments.
    pub extra: Vec<String>,
}

impl SippRun {
    fn new(scenario: Scenario, target: Option<SocketAddr>) -> Self {
        Self {
            scenario,
            target,
            sip_port: 0,
            media_port: 0,
            service: "test".to_owned(),
            calls: 1,
            limit: 10,
            rate: 10.0,
            timeout: Duration::from_secs(20),
            rtp_echo: false,
            auth: None,
            trace_msg: true,
            extra: Vec::new(),
        }
    }

    /// A UAC calling `target` (must be loopback).
    pub fn uac(scenario: Scenario, target: SocketAddr) -> Self {
        Self::new(scenario, Some(target))
    }

    /// A UAS waiting for calls.
    pub fn uas(scenario: Scenario) -> Self {
        Self::new(scenario, None)
    }

    /// Starts sipp in its own run directory. A UAS is ready when
    /// [`Sipp::wait_ready`] returns.
    pub fn spawn(&self) -> anyhow::Result<Sipp> {
        if let Some(t) = self.target {
            anyhow::ensure!(t.ip().is_loopback(), "refusing non-loopback target {t}");
        }
        let name = self.scenario.template.trim_end_matches(".xml");
        let dir = super::run_dir(&format!("sipp-{name}"))?;
        let scn = dir.join("scenario.xml");
        std::fs::write(&scn, self.scenario.render()?)?;
        let sip_port = if self.sip_port == 0 {
            super::ports::free_port()
        } else {
            self.sip_port
        };
        let media_port = if self.media_port == 0 {
            super::ports::free_udp_block(4)
        } else {
            self.media_port
        };
        let ctrl_port = super::ports::free_port();
        let mut cmd = Command::new("sipp");
        cmd.current_dir(&dir).arg("-sf").arg(&scn);
        if let Some(t) = self.target {
            cmd.arg(t.to_string());
        }
        let secs = self.timeout.as_secs().max(1);
        cmd.args(["-i", "127.0.0.1", "-p", &sip_port.to_string()])
            .args(["-mi", "127.0.0.1", "-mp", &media_port.to_string()])
            .args(["-cp", &ctrl_port.to_string()])
            .args(["-s", &self.service])
            .args(["-m", &self.calls.to_string(), "-l", &self.limit.to_string()])
            .args(["-r", &format!("{}", self.rate)])
            .args([
                "-timeout",
                &format!("{secs}s"),
                "-timeout_error",
                "-nostdin",
            ])
            .args(["-trace_err", "-error_file"])
            .arg(dir.join("errors.log"))
            .args(["-trace_screen", "-screen_file"])
            .arg(dir.join("screen.log"))
            .args(["-trace_stat", "-fd", "1", "-stf"])
            .arg(dir.join("stat.csv"))
            .args(["-trace_rtt", "-rtt_freq", "1"]);
        if self.trace_msg {
            cmd.args(["-trace_msg", "-message_file"])
                .arg(dir.join("messages.log"));
        }
        if self.rtp_echo {
            cmd.arg("-rtp_echo");
        }
        if let Some((user, pass)) = &self.auth {
            cmd.args(["-au", user, "-ap", pass]);
        }
        cmd.args(&self.extra);
        let proc = Proc::spawn("sipp", cmd, &dir.join("sipp.log"))?;
        Ok(Sipp {
            proc,
            dir,
            sip_port,
            media_port,
            limit: self.timeout + Duration::from_secs(5),
        })
    }
}

/// A running sipp; killed on drop.
pub struct Sipp {
    proc: Proc,
    /// Its run directory (scenario, logs, CSVs).
    pub dir: PathBuf,
    /// Its SIP port on 127.0.0.1.
    pub sip_port: u16,
    /// Its `-mp`.
    pub media_port: u16,
    limit: Duration,
}

impl Sipp {
    /// Its SIP address.
    pub fn sip_addr(&self) -> SocketAddr {
        (super::LOOPBACK, self.sip_port).into()
    }

    /// Waits until its SIP socket is bound (a UAS is then ready for calls).
    pub fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let port = self.sip_port;
        super::ports::poll_until(timeout, || {
            super::ports::udp_bound(port) || self.proc.try_status().is_some()
        })
        .map_err(|_| anyhow::anyhow!("sipp did not bind UDP {port} within {timeout:?}"))?;
        if let Some(status) = self.proc.try_status() {
            anyhow::bail!("sipp exited early ({status}):\n{}", self.proc.log());
        }
        Ok(())
    }

    /// Waits for it to finish (bounded by its timeout + 5 s) and reads its results.
    pub fn wait(mut self) -> anyhow::Result<SippResult> {
        let status = self.proc.wait_timeout(self.limit)?;
        Ok(SippResult::read(&self.dir, status.code(), self.proc.log()))
    }

    /// Kills it now and reads whatever results it left.
    pub fn kill(mut self) -> SippResult {
        self.proc.kill();
        SippResult::read(&self.dir, None, self.proc.log())
    }
}

/// What a sipp run reported.
#[derive(Debug, Clone)]
pub struct SippResult {
    /// Exit code: 0 all calls succeeded, 1 some failed, 97/99 other exits,
    /// -1/255 fatal; None if killed.
    pub exit_code: Option<i32>,
    /// `SuccessfulCall(C)` of the final stat row.
    pub successful: u64,
    /// `FailedCall(C)` of the final stat row.
    pub failed: u64,
    /// The final stat row, column name → value.
    pub stats: HashMap<String, String>,
    /// Response times (ms) of the `rtd` points, one per call.
    pub rtt_ms: Vec<f64>,
    /// The run directory.
    pub dir: PathBuf,
    /// sipp's own output.
    pub log: String,
}

impl SippResult {
    fn read(dir: &Path, exit_code: Option<i32>, log: String) -> Self {
        let stats = std::fs::read_to_string(dir.join("stat.csv"))
            .map(|t| parse_stat_csv(&t))
            .unwrap_or_default();
        let count = |k: &str| stats.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        let (successful, failed) = (count("SuccessfulCall(C)"), count("FailedCall(C)"));
        let mut rtt_ms = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().ends_with("_rtt.csv") {
                rtt_ms.extend(parse_rtt_csv(
                    &std::fs::read_to_string(entry.path()).unwrap_or_default(),
                ));
            }
        }
        Self {
            exit_code,
            successful,
            failed,
            stats,
            rtt_ms,
            dir: dir.to_owned(),
            log,
        }
    }

    /// Exit code 0, ≥1 successful call, none failed.
    pub fn all_ok(&self) -> bool {
        self.exit_code == Some(0) && self.successful > 0 && self.failed == 0
    }

    /// The `p`-th percentile (0–100) of [`rtt_ms`](Self::rtt_ms), nearest rank.
    pub fn rtt_percentile(&self, p: f64) -> Option<f64> {
        percentile(&self.rtt_ms, p)
    }

    /// A file of the run directory, or "" if missing.
    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// The SIP messages sipp received (from `messages.log`, needs
    /// `trace_msg`), in order, each as its text.
    pub fn received(&self) -> Vec<String> {
        let log = self.file("messages.log");
        let mut out = Vec::new();
        for block in log
            .split("-----------------------------------------------")
            .skip(1)
        {
            // The first line holds the separator's timestamp.
            let rest: Vec<&str> = block.lines().skip(1).collect();
            if let Some(i) = rest.iter().position(|l| l.contains("message received")) {
                out.push(rest[i + 1..].join("\n").trim().to_owned());
            }
        }
        out
    }

    /// How many received messages start with `start_line` and contain `needle`
    /// (e.g. `("SIP/2.0 200 OK", "CSeq: 1 INVITE")`).
    pub fn count_received(&self, start_line: &str, needle: &str) -> usize {
        self.received()
            .iter()
            .filter(|m| m.starts_with(start_line) && m.contains(needle))
            .count()
    }

    /// Everything useful when a test fails: counts, errors, screen, messages.
    pub fn diagnostics(&self) -> String {
        let tail = |s: String| {
            s.lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        };
        format!(
            "sipp in {}: exit {:?}, {} successful, {} failed\n--- errors.log\n{}\n--- screen.log\n{}\n--- messages.log (tail)\n{}\n--- output\n{}",
            self.dir.display(),
            self.exit_code,
            self.successful,
            self.failed,
            tail(self.file("errors.log")),
            tail(self.file("screen.log")),
            tail(self.file("messages.log")),
            tail(self.log.clone()),
        )
    }
}

/// The last row of a sipp `-trace_stat` CSV (`;`-separated, header first).
pub fn parse_stat_csv(text: &str) -> HashMap<String, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return HashMap::new();
    };
    let Some(last) = lines.next_back() else {
        return HashMap::new();
    };
    header
        .split(';')
        .zip(last.split(';'))
        .filter(|(k, _)| !k.trim().is_empty())
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Response times (ms, second column) of a sipp `-trace_rtt` CSV.
pub fn parse_rtt_csv(text: &str) -> Vec<f64> {
    text.lines()
        .filter_map(|l| l.split(';').nth(1)?.trim().parse().ok())
        .collect()
}

/// Nearest-rank percentile of `values` (any order).
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}
