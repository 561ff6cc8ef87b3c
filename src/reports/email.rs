//! The owner's email about a finished call, through the operator's SMTP
//! server (`[notify.email]`), with lettre.
//!
//! Sending never holds anything up: it runs in the report's background
//! task, each attempt bounded by `timeout_secs`, retried `attempts` times
//! with a doubling delay; the outcome is the report's `email_status`.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::call::CallDirection;
use crate::store::{CallReport, format_utc};

/// `[notify.email]`: where report emails go out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP server's host name.
    pub smtp_host: String,
    /// Its port: 587 (submission, STARTTLS) by default; 465 is implicit
    /// TLS; 25 a plain relay.
    #[serde(default = "default_port")]
    pub smtp_port: u16,
    /// Login, if the server asks for one.
    #[serde(default)]
    pub username: Option<String>,
    /// Its password.
    #[serde(default)]
    pub password: Option<String>,
    /// Upgrade the connection with STARTTLS before sending (required, not
    /// opportunistic); `false` sends in the clear, for a relay on the same
    /// host. Port 465 always uses implicit TLS.
    #[serde(default = "yes")]
    pub starttls: bool,
    /// The sender: `Hotline <hotline@example.com>`.
    pub from: String,
    /// Who gets report emails when the organization names nobody
    /// (`notify_email` in `/v1/settings`).
    #[serde(default)]
    pub to: Vec<String>,
    /// The server's public base URL (`https://hotline.example.com`), for
    /// a link to the report; without it the email gives the call id.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The name this server gives in `EHLO`.
    #[serde(default = "default_hello")]
    pub hello_name: String,
    /// Attempts per email, the first included.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait before the second attempt; doubled before each later one.
    #[serde(default = "default_retry_ms")]
    pub retry_delay_ms: u64,
    /// Bound on one attempt (connect, dialogue, data).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_port() -> u16 {
    587
}
fn yes() -> bool {
    true
}
fn default_hello() -> String {
    "hotline.localdomain".into()
}
fn default_attempts() -> u32 {
    4
}
fn default_retry_ms() -> u64 {
    2_000
}
fn default_timeout() -> u64 {
    30
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("starttls", &self.starttls)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

impl EmailConfig {
    /// What the types cannot check: `(field, problem)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, m: String| Err((format!("notify.email.{f}"), m));
        if self.smtp_host.trim().is_empty() {
            return bad("smtp_host", "must not be empty".into());
        }
        if self.smtp_port == 0 {
            return bad("smtp_port", "must not be 0".into());
        }
        if let Err(e) = self.from.parse::<Mailbox>() {
            return bad("from", format!("not an email address: {e}"));
        }
        for (i, to) in self.to.iter().enumerate() {
            if let Err(e) = to.parse::<Mailbox>() {
                return bad(&format!("to[{i}]"), format!("not an email address: {e}"));
            }
        }
        if self.username.is_some() != self.password.is_some() {
            return bad("password", "username and password go together".into());
        }
        if !(1..=10).contains(&self.attempts) {
            return bad("attempts", "must be 1 to 10".into());
        }
        if self.timeout_secs == 0 {
            return bad("timeout_secs", "must be at least 1".into());
        }
        Ok(())
    }
}

/// Parses recipients given as text (config or settings).
pub fn parse_recipients(list: &[String]) -> Result<Vec<Mailbox>, String> {
    list.iter()
        .map(|a| {
            a.parse::<Mailbox>()
                .map_err(|e| format!("{a:?} is not an email address: {e}"))
        })
        .collect()
}

/// What a report email says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// What the email needs of the call besides the report.
#[derive(Debug, Clone, Copy)]
pub struct CallFacts<'a> {
    /// The call's id.
    pub id: &'a str,
    /// Inbound or outbound.
    pub direction: CallDirection,
    /// Caller ID.
    pub from: &'a str,
    /// Dialled number.
    pub to: &'a str,
    /// When it started, unix ms.
    pub started_at: i64,
    /// The owner's name for the contact, if any.
    pub contact_name: Option<&'a str>,
}

fn intent_label(intent: &str) -> String {
    let spaced = intent.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

/// The email about `report`: who called (name, phone), what they wanted
/// (intent and summary), urgency, the callback time, what is left to do,
/// and where the report is.
pub fn render(report: &CallReport, call: &CallFacts<'_>, public_url: Option<&str>) -> Rendered {
    let phone = match call.direction {
        CallDirection::Inbound => call.from,
        CallDirection::Outbound => call.to,
    };
    let name = report
        .caller_name
        .as_deref()
        .or(call.contact_name)
        .unwrap_or("Unknown caller");
    let intent = intent_label(report.intent.as_deref().unwrap_or("other"));
    let urgency = report.urgency.as_deref().unwrap_or("unknown");
    let mut subject = String::new();
    if urgency == "high" {
        subject.push_str("URGENT: ");
    }
    subject.push_str(&format!("Call from {name} ({phone}): {intent}"));

    let mut b = String::new();
    b.push_str(&format!(
        "{name} called on {} UTC.\n\n",
        format_utc(call.started_at)
    ));
    b.push_str(&format!("Caller:        {name}\n"));
    b.push_str(&format!("Phone:         {phone}\n"));
    b.push_str(&format!("Wanted:        {intent}\n"));
    b.push_str(&format!("Urgency:       {urgency}\n"));
    b.push_str(&format!(
        "Call back by:  {}\n",
        report.callback_by.as_deref().unwrap_or("not said")
    ));
    b.push_str("\nSummary\n");
    b.push_str(report.summary.as_deref().unwrap_or("(none)"));
    b.push('\n');
    if !report.follow_ups.is_empty() {
        b.push_str("\nTo do\n");
        for f in &report.follow_ups {
            b.push_str(&format!("- {} (\"{}\")\n", f.text, f.quote));
        }
    }
    if !report.commitments.is_empty() {
        b.push_str("\nThe agent promised\n");
        for c in &report.commitments {
            b.push_str(&format!("- {} (\"{}\")\n", c.text, c.quote));
        }
    }
    b.push_str(&format!("\nCall: {}\n", call.id));
    if let Some(base) = public_url {
        b.push_str(&format!(
            "Report: {}/v1/calls/{}/report\n",
            base.trim_end_matches('/'),
            call.id
        ));
    }
    Rendered { subject, body: b }
}

/// Sends report emails through the configured server.
#[derive(Clone)]
pub struct Mailer {
    config: EmailConfig,
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `config` (checked with [`EmailConfig::check`]). No
    /// connection is made until the first email.
    pub fn new(config: EmailConfig) -> Result<Mailer, String> {
        config.check().map_err(|(f, m)| format!("{f}: {m}"))?;
        let from = config.from.parse::<Mailbox>().map_err(|e| e.to_string())?;
        let host = config.smtp_host.trim();
        let builder = if config.smtp_port == 465 {
            AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|e| e.to_string())?
        } else if config.starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(|e| e.to_string())?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        };
        let mut builder = builder
            .port(config.smtp_port)
            .timeout(Some(Duration::from_secs(config.timeout_secs)))
            .hello_name(ClientId::Domain(config.hello_name.clone()));
        if let (Some(u), Some(p)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(Mailer {
            from,
            transport: builder.build(),
            config,
        })
    }

    /// The recipients when the organization names none.
    pub fn default_to(&self) -> &[String] {
        &self.config.to
    }

    /// The public base URL for links.
    pub fn public_url(&self) -> Option<&str> {
        self.config.public_url.as_deref()
    }

    /// Sends one email, retrying with a doubling delay; the last error if
    /// every attempt failed.
    pub async fn send(&self, to: &[Mailbox], email: &Rendered) -> Result<(), String> {
        let mut mailboxes = Mailboxes::new();
        for m in to {
            mailboxes.push(m.clone());
        }
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(email.subject.clone())
            .header(ContentType::TEXT_PLAIN);
        for m in mailboxes {
            builder = builder.to(m);
        }
        let message = builder
            .body(email.body.clone())
            .map_err(|e| format!("cannot build the email: {e}"))?;
        let mut delay = Duration::from_millis(self.config.retry_delay_ms);
        let mut last = String::new();
        for attempt in 1..=self.config.attempts {
            match self.transport.send(message.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    last = e.to_string();
                    // A permanent refusal (5xx) will not change on retry.
                    if e.is_permanent() {
                        break;
                    }
                    if attempt < self.config.attempts {
                        tracing::debug!(attempt, error = %last, "report email failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay = delay.saturating_mul(2);
                    }
                }
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EmailStatus, ReportFact, ReportItem, ReportStatus};

    fn report() -> CallReport {
        CallReport {
            id: "rpt_1".into(),
            org_id: "org_1".into(),
            call_id: "call_1".into(),
            contact_id: None,
            status: ReportStatus::Ready,
            error: None,
            extractor: Some("llm".into()),
            summary: Some("Ada's kitchen sink is leaking.".into()),
            caller_name: Some("Ada Lovelace".into()),
            intent: Some("service_request".into()),
            urgency: Some("high".into()),
            callback_by: Some("2025-03-02T09:00:00Z".into()),
            spam: false,
            facts: vec![ReportFact {
                slot: "name".into(),
                value: "Ada Lovelace".into(),
                confidence: 0.9,
                quote: Some("this is Ada Lovelace".into()),
            }],
            commitments: vec![ReportItem {
                text: "A plumber calls back".into(),
                quote: "I'll have a plumber call you back".into(),
            }],
            follow_ups: vec![ReportItem {
                text: "Call Ada back".into(),
                quote: "Can someone call me back?".into(),
            }],
            dropped: 0,
            email_status: EmailStatus::None,
            email_error: None,
            created_at: 0,
            updated_at: 0,
            ready_at: None,
        }
    }

    fn call() -> CallFacts<'static> {
        CallFacts {
            id: "call_1",
            direction: CallDirection::Inbound,
            from: "+14155550100",
            to: "+14155550199",
            started_at: 1_709_294_645_000,
            contact_name: Some("Ada (owner's note)"),
        }
    }

    #[test]
    fn the_email_says_who_what_how_urgent_and_when() {
        let r = render(&report(), &call(), Some("https://hotline.example.com/"));
        assert_eq!(
            r.subject,
            "URGENT: Call from Ada Lovelace (+14155550100): Service request"
        );
        assert_eq!(
            r.body,
            "Ada Lovelace called on 2024-03-01 12:04:05 UTC.\n\n\
             Caller:        Ada Lovelace\n\
             Phone:         +14155550100\n\
             Wanted:        Service request\n\
             Urgency:       high\n\
             Call back by:  2025-03-02T09:00:00Z\n\
             \nSummary\nAda's kitchen sink is leaking.\n\
             \nTo do\n- Call Ada back (\"Can someone call me back?\")\n\
             \nThe agent promised\n- A plumber calls back (\"I'll have a plumber call you back\")\n\
             \nCall: call_1\n\
             Report: https://hotline.example.com/v1/calls/call_1/report\n"
        );
    }

    #[test]
    fn a_flow_report_email_says_what_is_unknown() {
        let mut rep = report();
        rep.caller_name = None;
        rep.urgency = None;
        rep.callback_by = None;
        rep.intent = Some("other".into());
        rep.follow_ups.clear();
        rep.commitments.clear();
        let mut c = call();
        c.direction = CallDirection::Outbound;
        c.contact_name = None;
        let r = render(&rep, &c, None);
        assert_eq!(r.subject, "Call from Unknown caller (+14155550199): Other");
        assert!(r.body.contains("Urgency:       unknown\n"), "{}", r.body);
        assert!(r.body.contains("Call back by:  not said\n"));
        assert!(!r.body.contains("To do"));
        assert!(r.body.ends_with("\nCall: call_1\n"), "{}", r.body);
        // The owner's name for the contact stands in for an unknown name.
        let r = render(&rep, &call(), None);
        assert!(
            r.subject
                .starts_with("Call from Ada (owner's note) (+14155550100)")
        );
    }

    fn config() -> EmailConfig {
        toml::from_str(
            r#"
            smtp_host = "127.0.0.1"
            from = "Hotline <hotline@example.com>"
            to = ["owner@example.com"]
            "#,
        )
        .unwrap()
    }

    #[test]
    fn the_config_is_checked() {
        let c = config();
        assert_eq!((c.smtp_port, c.starttls, c.attempts), (587, true, 4));
        assert!(c.check().is_ok());
        let mut bad = c.clone();
        bad.from = "not an address".into();
        assert_eq!(bad.check().unwrap_err().0, "notify.email.from");
        let mut bad = c.clone();
        bad.to = vec!["a@b.c".into(), "nope".into()];
        assert_eq!(bad.check().unwrap_err().0, "notify.email.to[1]");
        let mut bad = c.clone();
        bad.username = Some("u".into());
        assert_eq!(bad.check().unwrap_err().0, "notify.email.password");
        let mut bad = c;
        bad.password = Some("secret".into());
        bad.username = Some("u".into());
        assert!(!format!("{bad:?}").contains("secret"));
        assert!(parse_recipients(&["x@y.z".into()]).is_ok());
        assert!(parse_recipients(&["x".into()]).is_err());
    }
}
