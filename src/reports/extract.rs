//! What goes into a report, and the checks that keep it honest: the
//! extraction's JSON is validated field by field, and every fact,
//! commitment and follow-up must quote a sentence that is really in the
//! transcript (compared without regard to case, whitespace, or the quote
//! marks and end punctuation around it); those that do not are dropped.
//! Without an LLM, the report is put together from what the call left
//! (the flow's slots and the transcript), inventing nothing.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::store::{INTENTS, ReportContent, ReportFact, ReportItem, URGENCIES};

/// Most facts, commitments or follow-ups kept of each kind.
pub const MAX_ITEMS: usize = 30;
/// Longest text field accepted from the model, in characters.
pub const MAX_TEXT: usize = 2_000;
/// Shortest quote (normalised, in characters) that can support anything.
const MIN_QUOTE: usize = 3;

/// One transcript line: who spoke and what they said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// `caller`, `agent`…
    pub speaker: String,
    /// What was said.
    pub text: String,
}

/// A call's transcript, ready for quote checks.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    lines: Vec<Line>,
    normalized: Vec<String>,
    joined: String,
}

impl Transcript {
    /// The transcript of these lines, in order.
    pub fn new(lines: Vec<Line>) -> Transcript {
        let normalized: Vec<String> = lines.iter().map(|l| normalize(&l.text)).collect();
        let joined = normalized.join(" ");
        Transcript {
            lines,
            normalized,
            joined,
        }
    }

    /// No line at all.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Whether `quote` is in the transcript: within one line, or running
    /// on from one line into the next (a sentence split by a pause). Case,
    /// runs of whitespace, curly quotes, a `Caller:`/`Agent:` label and
    /// the quote marks and punctuation around the quote do not matter; a
    /// quote of fewer than three characters supports nothing.
    pub fn contains(&self, quote: &str) -> bool {
        let q = normalize_quote(quote);
        if q.chars().count() < MIN_QUOTE {
            return false;
        }
        self.normalized.iter().any(|l| l.contains(&q)) || self.joined.contains(&q)
    }

    /// The transcript as the model reads it: `Caller: …` / `Agent: …`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            let mut who = l.speaker.clone();
            if let Some(first) = who.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            out.push_str(&who);
            out.push_str(": ");
            out.push_str(l.text.trim());
            out.push('\n');
        }
        if out.is_empty() {
            out.push_str("(The call had no conversation.)\n");
        }
        out
    }

    /// The caller's first words.
    pub fn first_caller_line(&self) -> Option<&str> {
        self.lines
            .iter()
            .find(|l| l.speaker == "caller" && !l.text.trim().is_empty())
            .map(|l| l.text.trim())
    }
}

/// Lower case, curly quotes and apostrophes made straight, whitespace runs
/// made one space, trimmed.
fn normalize(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{02bc}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A quote normalised like a line, without a speaker label or the quote
/// marks and end punctuation a model puts around it.
fn normalize_quote(s: &str) -> String {
    let n = normalize(s);
    let mut t = n.as_str();
    for label in ["caller:", "agent:", "user:", "assistant:"] {
        if let Some(rest) = t.strip_prefix(label) {
            t = rest;
            break;
        }
    }
    t.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '\'' | '.' | ',' | '!' | '?' | ';' | ':' | '…')
    })
    .to_owned()
}

/// The extraction's answer, as the model gave it (before the quotes are
/// checked).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extraction {
    /// Two to four sentences.
    pub summary: String,
    /// The caller's name, if they said it.
    pub caller_name: Option<String>,
    /// One of [`INTENTS`].
    pub intent: String,
    /// One of [`URGENCIES`].
    pub urgency: String,
    /// ISO 8601, or null.
    pub callback_by: Option<String>,
    /// Spam, robocall or sales pitch.
    pub spam: bool,
    /// Facts about the caller.
    pub facts: Vec<ExtractedFact>,
    /// What the agent promised.
    pub commitments: Vec<ExtractedItem>,
    /// What is left to do.
    pub follow_ups: Vec<ExtractedItem>,
}

/// A fact as the model gave it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractedFact {
    /// What it is about.
    pub slot: String,
    /// The value.
    pub value: String,
    /// 0 to 1.
    pub confidence: f64,
    /// The supporting sentence.
    pub quote: String,
}

/// A commitment or follow-up as the model gave it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractedItem {
    /// What it is.
    pub text: String,
    /// The supporting sentence.
    pub quote: String,
}

/// The JSON Schema the model's answer must follow.
pub fn response_schema() -> Value {
    let item = json!({
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "quote": {"type": "string"}
        },
        "required": ["text", "quote"],
        "additionalProperties": false
    });
    json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "caller_name": {"type": ["string", "null"]},
            "intent": {"type": "string", "enum": INTENTS},
            "urgency": {"type": "string", "enum": URGENCIES},
            "callback_by": {"type": ["string", "null"]},
            "spam": {"type": "boolean"},
            "facts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "slot": {"type": "string"},
                        "value": {"type": "string"},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                        "quote": {"type": "string"}
                    },
                    "required": ["slot", "value", "confidence", "quote"],
                    "additionalProperties": false
                }
            },
            "commitments": {"type": "array", "items": item.clone()},
            "follow_ups": {"type": "array", "items": item}
        },
        "required": ["summary", "caller_name", "intent", "urgency", "callback_by", "spam",
                     "facts", "commitments", "follow_ups"],
        "additionalProperties": false
    })
}

/// The extraction's instructions.
pub fn instructions() -> String {
    format!(
        "You write the after-call report of a phone call between a caller and a business's \
         AI receptionist, for the business owner. Read the transcript and answer with one \
         JSON object only.\n\
         - \"summary\": two to four plain sentences: who called, what they wanted, what was \
         agreed.\n\
         - \"caller_name\": the name the caller gave, or null.\n\
         - \"intent\": one of {intents}.\n\
         - \"urgency\": \"high\" (an emergency, or it must be handled today), \"medium\" \
         (within a few days) or \"low\".\n\
         - \"callback_by\": when the caller asked to be called back, as an ISO 8601 date or \
         date-time (use the call's time given below for words like \"tomorrow\"), or null.\n\
         - \"spam\": true for robocalls, sales pitches and scams.\n\
         - \"facts\": what was learnt about the caller (slot such as name, company, phone, \
         address, email, preference, product; value; confidence from 0 to 1).\n\
         - \"commitments\": what the agent promised to do.\n\
         - \"follow_ups\": what the business still has to do.\n\
         Every fact, commitment and follow-up has a \"quote\": a sentence copied word for word \
         from the transcript that supports it, without the speaker label. Leave out anything \
         the transcript does not say; never guess.",
        intents = INTENTS.join(", ")
    )
}

fn text_field(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("\"{field}\" is empty"));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(format!("\"{field}\" is longer than {MAX_TEXT} characters"));
    }
    Ok(())
}

/// Whether `s` is an ISO 8601 date, date-time or timestamp.
pub fn is_iso_time(s: &str) -> bool {
    s.parse::<jiff::Timestamp>().is_ok()
        || s.parse::<jiff::civil::DateTime>().is_ok()
        || s.parse::<jiff::civil::Date>().is_ok()
}

/// Parses and checks the model's answer. The error says what is wrong, to
/// log and to tell the model when it is asked again.
pub fn parse_extraction(text: &str) -> Result<Extraction, String> {
    let value: Value = serde_json::from_str(text.trim()).map_err(|e| format!("not JSON: {e}"))?;
    if !value.is_object() {
        return Err("not a JSON object".into());
    }
    let mut ex: Extraction =
        serde_json::from_value(value).map_err(|e| format!("wrong shape: {e}"))?;
    text_field("summary", &ex.summary)?;
    ex.summary = ex.summary.trim().to_owned();
    ex.caller_name = ex
        .caller_name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if let Some(n) = &ex.caller_name {
        text_field("caller_name", n)?;
    }
    if !INTENTS.contains(&ex.intent.as_str()) {
        return Err(format!(
            "\"intent\" is {:?}, not one of {}",
            ex.intent,
            INTENTS.join(", ")
        ));
    }
    if !URGENCIES.contains(&ex.urgency.as_str()) {
        return Err(format!(
            "\"urgency\" is {:?}, not one of {}",
            ex.urgency,
            URGENCIES.join(", ")
        ));
    }
    ex.callback_by = ex
        .callback_by
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if let Some(c) = &ex.callback_by
        && !is_iso_time(c)
    {
        return Err(format!(
            "\"callback_by\" is {c:?}, not an ISO 8601 date or time"
        ));
    }
    for (kind, n) in [
        ("facts", ex.facts.len()),
        ("commitments", ex.commitments.len()),
        ("follow_ups", ex.follow_ups.len()),
    ] {
        if n > MAX_ITEMS {
            return Err(format!("\"{kind}\" has more than {MAX_ITEMS} items"));
        }
    }
    for (i, f) in ex.facts.iter().enumerate() {
        text_field(&format!("facts[{i}].slot"), &f.slot)?;
        text_field(&format!("facts[{i}].value"), &f.value)?;
        text_field(&format!("facts[{i}].quote"), &f.quote)?;
        if !(0.0..=1.0).contains(&f.confidence) {
            return Err(format!(
                "\"facts[{i}].confidence\" is {}, not between 0 and 1",
                f.confidence
            ));
        }
    }
    for (kind, items) in [
        ("commitments", &ex.commitments),
        ("follow_ups", &ex.follow_ups),
    ] {
        for (i, item) in items.iter().enumerate() {
            text_field(&format!("{kind}[{i}].text"), &item.text)?;
            text_field(&format!("{kind}[{i}].quote"), &item.quote)?;
        }
    }
    Ok(ex)
}

/// The report of a checked extraction: items whose quote is not in the
/// transcript are dropped (and counted).
pub fn ground(ex: Extraction, transcript: &Transcript) -> ReportContent {
    let mut dropped = 0;
    let mut keep = |quote: &str| {
        let ok = transcript.contains(quote);
        if !ok {
            dropped += 1;
        }
        ok
    };
    let facts: Vec<ReportFact> = ex
        .facts
        .into_iter()
        .filter(|f| keep(&f.quote))
        .map(|f| ReportFact {
            slot: f.slot.trim().to_owned(),
            value: f.value.trim().to_owned(),
            confidence: f.confidence,
            quote: Some(f.quote.trim().to_owned()),
        })
        .collect();
    let mut items = |list: Vec<ExtractedItem>| -> Vec<ReportItem> {
        list.into_iter()
            .filter(|i| keep(&i.quote))
            .map(|i| ReportItem {
                text: i.text.trim().to_owned(),
                quote: i.quote.trim().to_owned(),
            })
            .collect()
    };
    let commitments = items(ex.commitments);
    let follow_ups = items(ex.follow_ups);
    ReportContent {
        extractor: "llm".into(),
        summary: ex.summary,
        caller_name: ex.caller_name,
        spam: ex.spam || ex.intent == "spam",
        intent: ex.intent,
        urgency: Some(ex.urgency),
        callback_by: ex.callback_by,
        facts,
        commitments,
        follow_ups,
        dropped,
    }
}

/// The offline report: the flow's slots as facts (quoting what the
/// caller said to fill them, when that is in the transcript), the
/// caller's first words as the summary, intent `other`. Urgency and the
/// callback time are unknown; nothing is guessed.
pub fn flow_report(
    transcript: &Transcript,
    slots: Option<&Value>,
    quotes: &BTreeMap<String, String>,
) -> ReportContent {
    let mut facts = Vec::new();
    let mut caller_name = None;
    if let Some(Value::Object(slots)) = slots {
        for (slot, value) in slots {
            let value = match value {
                Value::String(s) if !s.trim().is_empty() => s.trim().to_owned(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
                _ => continue,
            };
            let quote = quotes
                .get(slot)
                .filter(|q| transcript.contains(q))
                .map(|q| q.trim().to_owned());
            if matches!(slot.as_str(), "name" | "caller_name") && caller_name.is_none() {
                caller_name = Some(value.clone());
            }
            facts.push(ReportFact {
                slot: slot.clone(),
                value,
                // The flow took the words as recognised; it does not weigh
                // them.
                confidence: 1.0,
                quote,
            });
        }
    }
    let summary = match transcript.first_caller_line() {
        Some(first) => format!("The caller said: \"{first}\""),
        None => "No speech from the caller was transcribed.".to_owned(),
    };
    ReportContent {
        extractor: "flow".into(),
        summary,
        caller_name,
        intent: "other".into(),
        urgency: None,
        callback_by: None,
        spam: false,
        facts,
        commitments: Vec::new(),
        follow_ups: Vec::new(),
        dropped: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript() -> Transcript {
        Transcript::new(vec![
            Line {
                speaker: "agent".into(),
                text: "Thanks for calling Acme Plumbing, how can I help?".into(),
            },
            Line {
                speaker: "caller".into(),
                text: "Hi, this is Ada Lovelace.  My kitchen sink is leaking".into(),
            },
            Line {
                speaker: "caller".into(),
                text: "all over the floor. Can someone call me back tomorrow morning?".into(),
            },
            Line {
                speaker: "agent".into(),
                text: "I’ll have a plumber call you back tomorrow morning.".into(),
            },
        ])
    }

    #[test]
    fn quotes_are_checked_against_the_transcript() {
        let t = transcript();
        assert!(t.contains("this is Ada Lovelace"));
        // Case, whitespace, labels, quote marks and end punctuation.
        assert!(t.contains("  \"HI, THIS IS ADA   LOVELACE.\" "));
        assert!(t.contains("Caller: My kitchen sink is leaking."));
        // Curly and straight apostrophes are the same.
        assert!(t.contains("I'll have a plumber call you back"));
        // A sentence that runs on into the next line.
        assert!(t.contains("my kitchen sink is leaking all over the floor"));
        // Not said, or said differently.
        assert!(!t.contains("My name is Ada Lovelace"));
        assert!(!t.contains("the bathroom sink is leaking"));
        // Too short to support anything.
        assert!(!t.contains("hi"));
        assert!(!t.contains("  ...  "));
        assert!(!Transcript::default().contains("anything"));
    }

    fn answer() -> Value {
        json!({
            "summary": " Ada reported a leaking sink. ",
            "caller_name": "Ada Lovelace",
            "intent": "service_request",
            "urgency": "high",
            "callback_by": "2025-03-02T09:00:00Z",
            "spam": false,
            "facts": [
                {"slot": "name", "value": "Ada Lovelace", "confidence": 0.95,
                 "quote": "Hi, this is Ada Lovelace."},
                {"slot": "address", "value": "12 Main St", "confidence": 0.6,
                 "quote": "I live at 12 Main Street."}
            ],
            "commitments": [
                {"text": "A plumber calls back tomorrow morning",
                 "quote": "I'll have a plumber call you back tomorrow morning."}
            ],
            "follow_ups": [
                {"text": "Call Ada back", "quote": "Can someone call me back tomorrow morning?"},
                {"text": "Send an invoice", "quote": "Please email me the invoice."}
            ]
        })
    }

    #[test]
    fn extractions_are_validated_field_by_field() {
        let ex = parse_extraction(&answer().to_string()).unwrap();
        assert_eq!(ex.summary, "Ada reported a leaking sink.");
        assert_eq!(ex.facts.len(), 2);

        let cases: Vec<(Value, &str)> = vec![
            (json!("text"), "not a JSON object"),
            (json!({"intent": "sales"}), "\"intent\" is \"sales\""),
            (json!({"urgency": "urgent"}), "\"urgency\" is \"urgent\""),
            (json!({"callback_by": "tomorrow"}), "not an ISO 8601"),
            (json!({"summary": "  "}), "\"summary\" is empty"),
            (json!({"extra": 1}), "unknown field `extra`"),
            (json!({"spam": "no"}), "wrong shape"),
            (
                json!({"facts": [{"slot": "name", "value": "A", "confidence": 1.5, "quote": "x y z"}]}),
                "\"facts[0].confidence\" is 1.5",
            ),
            (
                json!({"follow_ups": [{"text": "x", "quote": ""}]}),
                "\"follow_ups[0].quote\" is empty",
            ),
        ];
        for (change, want) in cases {
            let mut v = answer();
            if let (Value::Object(base), Value::Object(change)) = (&mut v, &change) {
                base.extend(change.clone());
            } else {
                v = change.clone();
            }
            let e = parse_extraction(&v.to_string()).unwrap_err();
            assert!(e.contains(want), "{change}: {e}");
        }
        assert!(
            parse_extraction("{not json")
                .unwrap_err()
                .starts_with("not JSON")
        );
        let e = parse_extraction(r#"{"summary": "x"}"#).unwrap_err();
        assert!(e.starts_with("wrong shape: missing field"), "{e}");
        // Dates, date-times and timestamps are all ISO 8601; blank is none.
        for ok in [
            "2025-03-02",
            "2025-03-02T09:00",
            "2025-03-02T09:00:00+01:00",
        ] {
            assert!(is_iso_time(ok), "{ok}");
        }
        let mut v = answer();
        v["callback_by"] = json!(" ");
        v["caller_name"] = json!("");
        let ex = parse_extraction(&v.to_string()).unwrap();
        assert_eq!((ex.callback_by, ex.caller_name), (None, None));
    }

    #[test]
    fn items_without_a_real_quote_are_dropped() {
        let ex = parse_extraction(&answer().to_string()).unwrap();
        let report = ground(ex, &transcript());
        assert_eq!(report.extractor, "llm");
        let slots: Vec<&str> = report.facts.iter().map(|f| f.slot.as_str()).collect();
        assert_eq!(slots, ["name"]);
        assert_eq!(report.commitments.len(), 1);
        let follow: Vec<&str> = report.follow_ups.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(follow, ["Call Ada back"]);
        assert_eq!(report.dropped, 2);
        assert_eq!(report.urgency.as_deref(), Some("high"));
        assert!(!report.spam);

        let mut spam = answer();
        spam["intent"] = json!("spam");
        let report = ground(parse_extraction(&spam.to_string()).unwrap(), &transcript());
        assert!(report.spam, "a spam intent flags the call");
    }

    #[test]
    fn the_flow_report_uses_only_what_the_call_left() {
        let t = Transcript::new(vec![
            Line {
                speaker: "agent".into(),
                text: "Hello, who is calling?".into(),
            },
            Line {
                speaker: "caller".into(),
                text: "Grace Hopper".into(),
            },
            Line {
                speaker: "caller".into(),
                text: "Please ask Bob to call me".into(),
            },
        ]);
        let slots = json!({"name": "Grace Hopper", "message": "Please ask Bob to call me",
                           "callback": "+14155550100", "empty": ""});
        let quotes: BTreeMap<String, String> = [
            ("name".to_owned(), "Grace Hopper".to_owned()),
            ("message".to_owned(), "please ask bob to call me".to_owned()),
            // Not in the transcript: the fact stays, unquoted.
            ("callback".to_owned(), "four one five".to_owned()),
        ]
        .into();
        let r = flow_report(&t, Some(&slots), &quotes);
        assert_eq!(r.extractor, "flow");
        assert_eq!(r.intent, "other");
        assert_eq!(r.summary, "The caller said: \"Grace Hopper\"");
        assert_eq!(r.caller_name.as_deref(), Some("Grace Hopper"));
        assert_eq!((r.urgency, r.callback_by, r.spam), (None, None, false));
        let mut facts: Vec<(&str, &str, Option<&str>)> = r
            .facts
            .iter()
            .map(|f| (f.slot.as_str(), f.value.as_str(), f.quote.as_deref()))
            .collect();
        facts.sort();
        assert_eq!(
            facts,
            [
                ("callback", "+14155550100", None),
                (
                    "message",
                    "Please ask Bob to call me",
                    Some("please ask bob to call me")
                ),
                ("name", "Grace Hopper", Some("Grace Hopper")),
            ]
        );
        let empty = flow_report(&Transcript::default(), None, &BTreeMap::new());
        assert!(empty.facts.is_empty());
        assert_eq!(empty.summary, "No speech from the caller was transcribed.");
    }

    #[test]
    fn the_transcript_renders_one_labelled_line_each() {
        assert_eq!(
            Transcript::new(vec![Line {
                speaker: "caller".into(),
                text: " Hi ".into()
            }])
            .render(),
            "Caller: Hi\n"
        );
        assert_eq!(
            Transcript::default().render(),
            "(The call had no conversation.)\n"
        );
    }

    #[test]
    fn the_schema_requires_every_field() {
        let s = response_schema();
        assert_eq!(s["required"].as_array().unwrap().len(), 9);
        assert_eq!(s["properties"]["intent"]["enum"], json!(INTENTS));
    }
}
