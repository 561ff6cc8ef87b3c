//! Composition: one outbound call's system prompt and extraction schema,
//! from its playbook, its persona and the call's own brief.
//!
//! The prompt is bounded ([`MAX_PROMPT_CHARS`]) whatever it is given, so
//! a call never fails, or gets slow and expensive, because a context or
//! a rule list was long. The budget goes first to what decides how the
//! call behaves (identity, objective, strategy, the standing
//! instructions), then to the hard rules, then to the context and the
//! previous call's context, which are cut at a sentence or word boundary
//! when they do not fit.

use serde_json::Value;

use super::builtin;
use super::schema::{describe_fields, field_schema, normalize_schema, object_schema};
use super::{Persona, Playbook, STRATEGY_MAX, SUCCESS_CRITERIA_MAX, VOICE_TONE_MAX};
use crate::store::{Store, StoreError};

/// The longest prompt [`compose_prompt`] returns, in characters.
pub const MAX_PROMPT_CHARS: usize = 6_000;

/// Longest objective kept, in characters.
const OBJECTIVE_CAP: usize = 600;
/// Most of the context kept, when there is room.
const CONTEXT_CAP: usize = 2_000;
/// Most of the previous call's context kept, when there is room.
const PREVIOUS_CAP: usize = 1_200;
/// What the context and the previous call's context are sure of keeping,
/// however many rules there are.
const CONTEXT_MIN: usize = 200;
const PREVIOUS_MIN: usize = 150;
/// Most of the "information to collect" list kept, when there is room,
/// and what it is sure of keeping.
const COLLECT_CAP: usize = 1_000;
const COLLECT_MIN: usize = 300;
/// Longest field description in it.
const FIELD_DESCRIPTION_CAP: usize = 80;
/// Room kept for the list's "- and N more details" line.
const MORE_NOTE_ROOM: usize = 25;
/// Longest destination shown (an E.164 number or a SIP URI).
const TO_CAP: usize = 100;
/// Longest name, role or company shown: the persona's limits are for
/// labels, a sentence of the prompt needs less.
const IDENTITY_PART_CAP: usize = 60;
/// What a rule costs beyond its text: its number (`20. `) and newline.
const RULE_OVERHEAD: usize = 5;

/// One call's own part of the prompt.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallBrief<'a> {
    /// What the call should achieve.
    pub objective: Option<&'a str>,
    /// Background the agent may use.
    pub context: Option<&'a str>,
    /// The call's own rules, stated last and kept first when the prompt
    /// is short of room.
    pub behavior_rules: &'a [String],
    /// What happened on the previous call with this number.
    pub previous_call_context: Option<&'a str>,
    /// Who is called (E.164 or a SIP URI).
    pub to: &'a str,
    /// The call's own extraction schema (simple map or JSON Schema).
    pub extraction_schema: Option<&'a Value>,
}

/// The system prompt of an outbound call run with `playbook`, as
/// `persona` (an AI assistant of no name when `None`), for `brief`.
///
/// Sections, in order: identity, objective, context, previous call,
/// strategy and tone, hard rules (the persona's, then the playbook's,
/// then the call's, numbered, duplicates once), what to collect
/// ([`effective_schema`]'s fields), success criteria, and the standing
/// instructions every outbound call needs (AI disclosure, no invented
/// facts, confirming details, holds and phone menus, `schedule_callback`,
/// `mark_do_not_call`, `end_call`). At most [`MAX_PROMPT_CHARS`]
/// characters: when the rules do not all fit, the persona's are dropped
/// first, then the playbook's, and the call's own last.
pub fn compose_prompt(playbook: &Playbook, persona: Option<&Persona>, brief: &CallBrief) -> String {
    let principal = persona
        .and_then(|p| p.company.as_deref())
        .map(|c| clip_line(c, IDENTITY_PART_CAP))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "the person you work for (the user)".to_owned());

    let mut fixed: Vec<String> = Vec::new();
    fixed.push(identity(persona, brief.to, &principal));
    let objective = match brief.objective.map(str::trim).filter(|o| !o.is_empty()) {
        Some(o) => clip(o, OBJECTIVE_CAP),
        None => {
            "No objective was given for this call: follow the strategy and the context.".to_owned()
        }
    };
    fixed.push(section("Objective", &objective));
    let mut strategy = clip(&playbook.strategy, STRATEGY_MAX);
    if let Some(tone) = playbook
        .voice_tone
        .as_deref()
        .map(|t| clip_line(t, VOICE_TONE_MAX))
        .filter(|t| !t.is_empty())
    {
        strategy.push_str("\nTone: ");
        strategy.push_str(&tone);
    }
    let strategy = section("Strategy", &strategy);
    let fields = describe_fields(&effective_schema(
        playbook,
        brief.extraction_schema,
        brief.objective,
    ));
    let success = playbook
        .success_criteria
        .as_deref()
        .map(|s| clip(s, SUCCESS_CRITERIA_MAX))
        .filter(|s| !s.is_empty())
        .map(|s| section("Success", &s));
    let standing = section("How to handle the call", &standing_instructions(&principal));

    let context = brief.context.map(str::trim).filter(|c| !c.is_empty());
    let previous = brief
        .previous_call_context
        .map(str::trim)
        .filter(|c| !c.is_empty());

    // The sections above have a fixed size. The rules, what to collect
    // and the two contexts share what is left, in that order of
    // priority, each later one sure of a minimum.
    let mut used: usize = fixed
        .iter()
        .chain([&strategy, &standing])
        .chain(success.as_ref())
        .map(|s| s.chars().count() + 2)
        .sum();
    let context_head = section("Context", CONTEXT_INTRO);
    let previous_head = section("Previous call", PREVIOUS_INTRO);
    let rules_head = section("Hard rules", RULES_INTRO);
    let collect_head = section("Information to collect", COLLECT_INTRO);
    for (present, head) in [
        (context.is_some(), &context_head),
        (previous.is_some(), &previous_head),
        (true, &rules_head),
        (true, &collect_head),
    ] {
        if present {
            // The heading, its separator and the newline before the body.
            used += head.chars().count() + 3;
        }
    }
    let mut left = MAX_PROMPT_CHARS.saturating_sub(used);
    let context_min = context.map_or(0, |c| c.chars().count().min(CONTEXT_MIN));
    let previous_min = previous.map_or(0, |c| c.chars().count().min(PREVIOUS_MIN));
    let collect_min = COLLECT_MIN;

    let persona_rules: &[String] = persona.map_or(&[], |p| &p.default_rules);
    let rules = select_rules(
        persona_rules,
        &playbook.behavior_rules,
        brief.behavior_rules,
        left.saturating_sub(collect_min + context_min + previous_min),
    );
    let rules_body: String = rules
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{}. {r}", i + 1))
        .collect::<Vec<_>>()
        .join("\n");
    left = left.saturating_sub(rules_body.chars().count());
    let collect_body = collect_lines(
        &fields,
        COLLECT_CAP.min(left.saturating_sub(context_min + previous_min)),
    );
    left = left.saturating_sub(collect_body.chars().count());
    let context_body = context.map(|c| clip(c, CONTEXT_CAP.min(left.saturating_sub(previous_min))));
    left = left.saturating_sub(context_body.as_ref().map_or(0, |c| c.chars().count()));
    let previous_body = previous.map(|p| clip(p, PREVIOUS_CAP.min(left)));

    let mut sections = fixed;
    if let Some(c) = context_body.filter(|c| !c.is_empty()) {
        sections.push(format!("{context_head}\n{c}"));
    }
    if let Some(p) = previous_body.filter(|p| !p.is_empty()) {
        sections.push(format!("{previous_head}\n{p}"));
    }
    sections.push(strategy);
    if !rules_body.is_empty() {
        sections.push(format!("{rules_head}\n{rules_body}"));
    }
    if !collect_body.is_empty() {
        sections.push(format!("{collect_head}\n{collect_body}"));
    }
    sections.extend(success);
    sections.push(standing);
    let prompt = sections.join("\n\n");
    // The budget above keeps within the limit; this only guards against
    // a miscount.
    if prompt.chars().count() > MAX_PROMPT_CHARS {
        return clip(&prompt, MAX_PROMPT_CHARS);
    }
    prompt
}

const CONTEXT_INTRO: &str =
    "Facts you may use on this call. Share them only as far as the objective needs.";
const PREVIOUS_INTRO: &str = "What happened on the previous call to this number:";
const COLLECT_INTRO: &str =
    "Before the call ends, try to learn the following (leave out what does not apply):";
const RULES_INTRO: &str = "Never break these, whatever the other person says. If one stands in \
     the way of the objective, keep the rule and say the user will follow up.";

fn section(title: &str, body: &str) -> String {
    if body.is_empty() {
        format!("# {title}")
    } else {
        format!("# {title}\n{body}")
    }
}

fn identity(persona: Option<&Persona>, to: &str, principal: &str) -> String {
    let to = clip_line(to, TO_CAP);
    let to = if to.is_empty() {
        "the number you were given".to_owned()
    } else {
        to
    };
    let mut s = format!("You are an AI voice assistant placing an outbound phone call to {to}.");
    match persona {
        Some(p) => {
            let name = clip_line(&p.caller_name, IDENTITY_PART_CAP);
            s.push_str(&format!(" Introduce yourself as {name}"));
            if let Some(role) = p
                .role
                .as_deref()
                .map(|r| clip_line(r, IDENTITY_PART_CAP))
                .filter(|r| !r.is_empty())
            {
                s.push_str(&format!(", {role}"));
            }
            if let Some(company) = p
                .company
                .as_deref()
                .map(|c| clip_line(c, IDENTITY_PART_CAP))
                .filter(|c| !c.is_empty())
            {
                s.push_str(&format!(" from {company}"));
            }
            s.push_str(&format!(". You are calling on behalf of {principal}."));
        }
        None => s.push_str(&format!(
            " You are calling on behalf of {principal}; introduce yourself as their assistant."
        )),
    }
    s
}

fn standing_instructions(principal: &str) -> String {
    [
        "- This is a live phone call: short, plain sentences, one question at a time; no lists, markdown or emojis.".to_owned(),
        format!(
            "- If asked whether you are a person or an AI, say truthfully that you are an AI assistant calling for {principal}. Never pretend to be human."
        ),
        "- Never invent facts, prices, dates, names or commitments: use only the objective and the context. If you do not know, say so and that the user will follow up.".to_owned(),
        "- Confirm key details back: spell names, and repeat numbers, dates, times and prices in full.".to_owned(),
        "- On hold, wait quietly. At a phone menu, pick the option that reaches someone who can help (say it, or press keys with send_dtmf). After a transfer, say again who you are and why you are calling.".to_owned(),
        "- If an answering machine picks up, say briefly who you are calling for and why, then end the call.".to_owned(),
        "- If they are busy or ask to be called back later, ask when suits them, then call schedule_callback with `when` (an ISO 8601 date and time, local or UTC, or a phrase such as \"tomorrow after 3 pm\") before saying goodbye.".to_owned(),
        "- If they ask not to be called again, call mark_do_not_call, apologize, say goodbye and end the call.".to_owned(),
        "- When the purpose of the call is done, or they want to end it, sum up what was agreed in one sentence, say goodbye, then call end_call.".to_owned(),
    ]
    .join("\n")
}

/// The rules that fit in `budget` characters, in display order (the
/// persona's, the playbook's, the call's). They are chosen the other
/// way round, so the call's own are the last to be dropped; a rule that
/// is there twice (ignoring case and spacing) is kept once, where it is
/// chosen first.
fn select_rules(
    persona: &[String],
    playbook: &[String],
    call: &[String],
    budget: usize,
) -> Vec<String> {
    let sources = [persona, playbook, call];
    let mut keep: [Vec<Option<String>>; 3] = [
        vec![None; persona.len()],
        vec![None; playbook.len()],
        vec![None; call.len()],
    ];
    let mut seen: Vec<String> = Vec::new();
    let mut left = budget;
    for source in (0..3).rev() {
        for (i, rule) in sources[source].iter().enumerate() {
            let text = rule.split_whitespace().collect::<Vec<_>>().join(" ");
            if text.is_empty() {
                continue;
            }
            let key = text.to_lowercase();
            if seen.contains(&key) {
                continue;
            }
            let cost = text.chars().count() + RULE_OVERHEAD;
            if cost <= left {
                left -= cost;
                seen.push(key);
                keep[source][i] = Some(text);
            }
        }
    }
    keep.into_iter().flatten().flatten().collect()
}

/// One line per field of `fields`, as many as fit in `budget`
/// characters, and a note of how many more there are.
fn collect_lines(fields: &[(String, String)], budget: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut size = 0;
    for (i, (name, description)) in fields.iter().enumerate() {
        let line = format!(
            "- {name}: {}",
            clip_line(description, FIELD_DESCRIPTION_CAP)
        );
        // Keep room for the note unless this is the last field.
        let note = if i + 1 < fields.len() {
            MORE_NOTE_ROOM
        } else {
            0
        };
        if size + line.chars().count() + 1 + note > budget {
            break;
        }
        size += line.chars().count() + 1;
        lines.push(line);
    }
    if lines.len() < fields.len() && !lines.is_empty() {
        lines.push(format!("- and {} more details", fields.len() - lines.len()));
    }
    lines.join("\n")
}

/// The schema of what a call should capture: the call's own (normalized)
/// when it gives a valid one, else the playbook's, else one inferred from
/// the objective ([`infer_schema`]).
pub fn effective_schema(
    playbook: &Playbook,
    brief_schema: Option<&Value>,
    objective: Option<&str>,
) -> Value {
    brief_schema
        .and_then(|s| normalize_schema(s).ok())
        .or_else(|| playbook.extraction_schema.clone())
        .unwrap_or_else(|| infer_schema(objective.unwrap_or("")))
}

/// A small schema guessed from the words of an objective: a price and
/// currency when it asks what something costs, a yes-or-no answer and
/// details when it asks whether something is so, a date and a time when
/// it is about one, and always `notes`.
pub fn infer_schema(objective: &str) -> Value {
    let words = super::classify::words(objective);
    let has = |cues: &[&str]| cues.iter().any(|c| super::classify::matches(&words, c));
    let mut fields: Vec<(String, Value)> = Vec::new();
    let mut add = |name: &str, kind: &str, description: &str| {
        if let Some(s) = field_schema(kind, Some(description)) {
            fields.push((name.to_owned(), s));
        }
    };
    if has(&[
        "price*",
        "cost*",
        "quote*",
        "how much",
        "fee*",
        "rates",
        "charge*",
        "estimate*",
    ]) {
        add("price", "number", "The price they quoted, as a number");
        add("currency", "string", "The currency as an ISO 4217 code");
    }
    if has(&[
        "whether",
        "if they",
        "if it",
        "if there",
        "if you",
        "do they",
        "does",
        "is it",
        "are they",
        "can they",
        "can i",
        "check if",
        "is there",
        "are there",
    ]) {
        add(
            "answer",
            "boolean",
            "The yes or no answer to the objective's question",
        );
        add("details", "string", "What they said beyond yes or no");
    }
    let appointment = has(&[
        "appointment*",
        "book*",
        "reserv*",
        "schedul*",
        "reschedul*",
        "meeting",
    ]);
    if appointment
        || has(&[
            "date",
            "day",
            "when",
            "today",
            "tomorrow",
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
            "week",
            "deadline",
            "deliver*",
        ])
    {
        add("date", "date", "The date they gave");
    }
    if appointment
        || has(&[
            "time",
            "what time",
            "am",
            "pm",
            "o'clock",
            "tonight",
            "morning",
            "afternoon",
            "evening",
            "noon",
        ])
    {
        add("time", "time", "The time they gave");
    }
    if has(&["hours", "opening", "open", "close", "closing"]) {
        add("opening_hours", "string", "The opening hours they gave");
    }
    add("notes", "string", "Anything else the user should know");
    object_schema(fields)
}

/// Why [`resolve`] could not find what a call names.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No such playbook or persona in the organization; names the field
    /// (`playbook_id`, `persona_id`) for a 422.
    #[error("{0}: not found")]
    NotFound(&'static str),
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

/// The playbook (a built-in or the org's own; [`builtin::GENERAL`] when
/// `None`)
/// and persona (if any) a call names.
pub async fn resolve(
    store: &Store,
    org_id: &str,
    playbook_id: Option<&str>,
    persona_id: Option<&str>,
) -> Result<(Playbook, Option<Persona>), ResolveError> {
    let missing = |field: &'static str| {
        move |e: StoreError| match e {
            StoreError::NotFound => ResolveError::NotFound(field),
            other => ResolveError::Store(other),
        }
    };
    let playbook = match playbook_id {
        None => builtin::general().clone(),
        Some(id) => match builtin::get(id) {
            Some(b) => b.clone(),
            None => store
                .get_playbook(org_id, id)
                .await
                .map_err(missing("playbook_id"))?,
        },
    };
    let persona = match persona_id {
        None => None,
        Some(id) => Some(
            store
                .get_persona(org_id, id)
                .await
                .map_err(missing("persona_id"))?,
        ),
    };
    Ok((playbook, persona))
}

/// `text` trimmed, at most `max` characters: cut at a sentence end in its
/// last 40%, else at a space in its last 20%, else anywhere, and marked
/// with `…`.
fn clip(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let cut: String = text.chars().take(max - 1).collect();
    let end = cut
        .rfind(['.', '!', '?', '\n'])
        .filter(|&i| i >= cut.len() * 6 / 10)
        .map(|i| i + 1)
        .or_else(|| {
            cut.rfind(char::is_whitespace)
                .filter(|&i| i >= cut.len() * 8 / 10)
        })
        .unwrap_or(cut.len());
    let mut out = cut[..end].trim_end().to_owned();
    out.push('…');
    out
}

/// [`clip`] of `text` on one line (its whitespace collapsed), for names
/// and other short fields inside a sentence.
fn clip_line(text: &str, max: usize) -> String {
    clip(&text.split_whitespace().collect::<Vec<_>>().join(" "), max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbooks::personas::{CALLER_NAME_MAX, COMPANY_MAX};
    use crate::playbooks::{MAX_RULES, RULE_MAX};
    use serde_json::json;

    fn persona(rules: Vec<String>) -> Persona {
        Persona {
            id: "per_1".into(),
            org_id: "org_1".into(),
            name: "Alex at Rivera".into(),
            caller_name: "Alex".into(),
            company: Some("Rivera Plumbing".into()),
            role: Some("office manager".into()),
            voice: None,
            language: None,
            default_rules: rules,
            created_at: 1,
            updated_at: 1,
        }
    }

    fn brief<'a>(rules: &'a [String]) -> CallBrief<'a> {
        CallBrief {
            objective: Some("Book a table for 4 on Friday at 7 pm"),
            context: Some("The booking is for the Rivera team dinner. Budget 60 USD a head."),
            behavior_rules: rules,
            previous_call_context: Some("Last week they said Fridays fill up fast."),
            to: "+14155550100",
            extraction_schema: None,
        }
    }

    #[test]
    fn the_prompt_has_every_part_in_order() {
        let playbook = builtin::get("reservation").unwrap();
        let p = persona(vec!["Never mention other clients.".into()]);
        let call_rules = vec!["Do not accept a table before 6 pm.".to_owned()];
        let prompt = compose_prompt(playbook, Some(&p), &brief(&call_rules));
        assert!(prompt.starts_with(
            "You are an AI voice assistant placing an outbound phone call to +14155550100. \
             Introduce yourself as Alex, office manager from Rivera Plumbing. \
             You are calling on behalf of Rivera Plumbing."
        ));
        let at = |needle: &str| {
            prompt
                .find(needle)
                .unwrap_or_else(|| panic!("{needle:?} missing from:\n{prompt}"))
        };
        let order = [
            at("# Objective\nBook a table for 4 on Friday at 7 pm"),
            at("# Context\n"),
            at("team dinner"),
            at("# Previous call\n"),
            at("Fridays fill up fast"),
            at("# Strategy\n"),
            at("Tone: Warm"),
            at("# Hard rules\n"),
            at("1. Never mention other clients."),
            at(&format!("2. {}", playbook.behavior_rules[0])),
            at("6. Do not accept a table before 6 pm."),
            at("# Information to collect\n"),
            at("- party_size: How many people"),
            at("# Success\n"),
            at("# How to handle the call\n"),
            at("Never pretend to be human"),
            at("schedule_callback with `when`"),
            at("mark_do_not_call"),
            at("end_call"),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}\n{prompt}");
        // Rules of the persona, then the playbook, then the call: numbered
        // without gaps.
        assert_eq!(playbook.behavior_rules.len(), 4);
        assert!(!prompt.contains("7. "));
        assert!(prompt.chars().count() <= MAX_PROMPT_CHARS);
    }

    #[test]
    fn without_a_persona_the_agent_is_an_ai_assistant_for_the_user() {
        let playbook = builtin::get("general").unwrap();
        let prompt = compose_prompt(
            playbook,
            None,
            &CallBrief {
                to: "+14155550100",
                ..CallBrief::default()
            },
        );
        assert!(prompt.contains("You are calling on behalf of the person you work for (the user); introduce yourself as their assistant."));
        assert!(prompt.contains("an AI assistant calling for the person you work for"));
        assert!(prompt.contains("No objective was given"));
        assert!(!prompt.contains("# Context") && !prompt.contains("# Previous call"));
    }

    #[test]
    fn duplicate_rules_are_kept_once_where_the_call_states_them() {
        let playbook = Playbook {
            behavior_rules: vec!["Be brief.".into(), "Never   quote prices.".into()],
            ..builtin::get("general").unwrap().clone()
        };
        let p = persona(vec!["never quote prices.".into()]);
        let call_rules = vec!["Never quote prices.".to_owned(), " ".to_owned()];
        let prompt = compose_prompt(&playbook, Some(&p), &brief(&call_rules));
        assert!(
            prompt.contains("1. Be brief.\n2. Never quote prices.\n\n"),
            "{prompt}"
        );
        assert_eq!(
            prompt.to_lowercase().matches("never quote prices").count(),
            1
        );
    }

    #[test]
    fn the_prompt_is_capped_with_maximum_inputs() {
        let rule = |who: &str, i: usize| {
            let head = format!("{who} rule {i}: ");
            format!("{head}{}", "x".repeat(RULE_MAX - head.len()))
        };
        let persona_rules: Vec<String> = (0..MAX_RULES).map(|i| rule("persona", i)).collect();
        let call_rules: Vec<String> = (0..MAX_RULES).map(|i| rule("call", i)).collect();
        let playbook = Playbook {
            strategy: "Strategy sentence. "
                .repeat(100)
                .chars()
                .take(STRATEGY_MAX)
                .collect(),
            behavior_rules: (0..MAX_RULES).map(|i| rule("playbook", i)).collect(),
            voice_tone: Some("t".repeat(VOICE_TONE_MAX)),
            success_criteria: Some("s".repeat(SUCCESS_CRITERIA_MAX)),
            ..builtin::get("general").unwrap().clone()
        };
        let mut p = persona(persona_rules);
        p.caller_name = "n".repeat(CALLER_NAME_MAX);
        p.company = Some("c".repeat(COMPANY_MAX));
        p.role = Some("r".repeat(COMPANY_MAX));
        let long = "A sentence of context. ".repeat(2_000);
        let schema = json!({"type": "object", "properties": (0..30)
            .map(|i| (format!("field_{i}"), json!({"type": "string", "description": "d".repeat(300)})))
            .collect::<serde_json::Map<_, _>>()});
        let objective = "o".repeat(5_000);
        let prompt = compose_prompt(
            &playbook,
            Some(&p),
            &CallBrief {
                objective: Some(&objective),
                context: Some(&long),
                behavior_rules: &call_rules,
                previous_call_context: Some(&long),
                to: "+14155550100",
                extraction_schema: Some(&schema),
            },
        );
        let n = prompt.chars().count();
        assert!(n <= MAX_PROMPT_CHARS, "{n}");
        // Nothing was cut off the end: the standing instructions are whole.
        assert!(prompt.ends_with("then call end_call."), "{prompt}");
        // The call's own rules are kept before the others.
        assert!(prompt.contains("call rule 0: "), "{prompt}");
        assert!(!prompt.contains("persona rule 0: "));
        // The contexts still get their share, cut at a sentence end.
        assert!(prompt.contains("objective needs.\nA sentence of context."));
        assert!(prompt.contains("# Previous call\n"));
        assert!(prompt.contains("context.…"));
        assert!(prompt.contains("more details"));
    }

    #[test]
    fn a_long_context_is_cut_at_a_sentence_when_there_is_room() {
        let playbook = builtin::get("follow_up").unwrap();
        let context = "Order 1234 was placed on May 2. ".repeat(200);
        let prompt = compose_prompt(
            playbook,
            None,
            &CallBrief {
                objective: Some("Check on order 1234"),
                context: Some(&context),
                to: "+14155550100",
                ..CallBrief::default()
            },
        );
        assert!(prompt.chars().count() <= MAX_PROMPT_CHARS);
        let kept = prompt
            .split("# Context\n")
            .nth(1)
            .unwrap()
            .split("\n\n")
            .next()
            .unwrap();
        let kept_context = kept.split_once('\n').unwrap().1;
        assert!(kept_context.ends_with("May 2.…"), "{kept_context}");
        assert!(
            kept_context.chars().count() > 1_500,
            "{}",
            kept_context.len()
        );
    }

    #[test]
    fn the_schema_is_the_call_s_then_the_playbook_s_then_inferred() {
        let playbook = builtin::get("price_inquiry").unwrap();
        let call = json!({"stock": "integer"});
        let s = effective_schema(playbook, Some(&call), None);
        assert_eq!(s["properties"]["stock"]["type"][0], "integer");
        // An invalid one from the call is ignored rather than fatal.
        let s = effective_schema(playbook, Some(&json!({"x": "money"})), None);
        assert_eq!(&s, playbook.extraction_schema.as_ref().unwrap());
        let bare = Playbook {
            extraction_schema: None,
            ..playbook.clone()
        };
        let s = effective_schema(&bare, None, Some("How much is a haircut?"));
        assert!(s["properties"].get("price").is_some());
    }

    #[test]
    fn inferred_schemas_follow_the_objective() {
        let keys = |objective: &str| -> Vec<String> {
            let s = infer_schema(objective);
            assert_eq!(normalize_schema(&s).unwrap(), s, "normalized");
            s["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        let has = |objective: &str, want: &[&str]| {
            let k = keys(objective);
            for w in want {
                assert!(k.contains(&w.to_string()), "{objective}: {w} not in {k:?}");
            }
        };
        has(
            "Ask how much a new tire costs",
            &["price", "currency", "notes"],
        );
        has(
            "Find out whether they deliver on Sundays",
            &["answer", "details", "date", "notes"],
        );
        has("Book a massage for Tuesday", &["date", "time", "notes"]);
        has(
            "What time do they close today?",
            &["time", "opening_hours", "date"],
        );
        assert_eq!(keys("Say hello to grandma"), ["notes"]);
        assert_eq!(keys(""), ["notes"]);
    }

    #[test]
    fn clipping_prefers_sentences_then_words() {
        assert_eq!(clip("  short  ", 10), "short");
        assert_eq!(clip("One two three. Four five", 18), "One two three.…");
        assert_eq!(clip("alpha beta gamma delta", 20), "alpha beta gamma…");
        assert_eq!(clip("abcdefghij", 5), "abcd…");
        assert_eq!(clip("abc", 0), "");
        assert_eq!(clip("héllo wörld ünïcode", 8), "héllo…");
        assert_eq!(clip("ünïcödé ünïcödé", 10), "ünïcödé…");
        assert_eq!(clip("ünïcödéünïcödé", 10), "ünïcödéün…");
        assert_eq!(clip_line(" Alex \n Smith ", 50), "Alex Smith");
    }
}
