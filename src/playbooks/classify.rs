//! Picking the playbook that fits a call's objective.
//!
//! With an LLM, the model is asked to name one playbook (a built-in or one
//! of the organization's own) for the objective. Its answer is only taken
//! when it is exactly one of those ids; anything else (an error, a
//! timeout after [`LLM_TIMEOUT`], a made-up id, prose) falls back to the
//! keyword table, which needs nothing and always answers, so choosing a
//! playbook never fails a call.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::Playbook;
use super::builtin::{self, GENERAL};
use crate::agent::openai::{JsonRequest, OpenAiConfig, OpenAiJson};

/// How long the LLM gets to answer, retries included: a call waits on it.
pub const LLM_TIMEOUT: Duration = Duration::from_secs(3);

/// Most custom playbooks offered to the model (the newest); the prompt
/// stays small, and keywords cannot pick a custom one anyway.
pub const MAX_CUSTOM_CANDIDATES: usize = 50;

/// Longest objective sent to the model, in characters.
const OBJECTIVE_MAX: usize = 2_000;

/// How a playbook was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClassifyMethod {
    /// The LLM named it.
    Llm,
    /// The keyword table chose it (no LLM, or its answer was unusable).
    Keywords,
}

/// The playbook for an objective and how it was chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    /// A built-in id or a custom playbook's.
    pub playbook_id: String,
    /// How it was chosen.
    pub method: ClassifyMethod,
}

/// The playbook for `objective`: the LLM's choice among the built-ins and
/// `custom` when `llm` is given and answers usably within
/// [`LLM_TIMEOUT`], else [`classify_keywords`]'s.
pub async fn classify(
    llm: Option<&OpenAiConfig>,
    objective: &str,
    custom: &[Playbook],
) -> Classification {
    classify_within(llm, objective, custom, LLM_TIMEOUT).await
}

/// [`classify`] with the LLM's time limit given (tests use a short one).
pub(crate) async fn classify_within(
    llm: Option<&OpenAiConfig>,
    objective: &str,
    custom: &[Playbook],
    limit: Duration,
) -> Classification {
    if let Some(config) = llm
        && !objective.trim().is_empty()
    {
        match tokio::time::timeout(limit, classify_llm(config, objective, custom, limit)).await {
            Ok(Ok(id)) => {
                return Classification {
                    playbook_id: id,
                    method: ClassifyMethod::Llm,
                };
            }
            Ok(Err(e)) => {
                tracing::info!(error = %e, "playbook classification by LLM failed; using keywords");
            }
            Err(_) => {
                tracing::info!("playbook classification by LLM timed out; using keywords");
            }
        }
    }
    Classification {
        playbook_id: classify_keywords(objective).to_owned(),
        method: ClassifyMethod::Keywords,
    }
}

/// Asks the model behind `config` which playbook fits `objective`, among
/// the built-ins and `custom`; the answer is checked to be one of their
/// ids. `limit` bounds the request, retries included.
pub async fn classify_llm(
    config: &OpenAiConfig,
    objective: &str,
    custom: &[Playbook],
    limit: Duration,
) -> Result<String, String> {
    let mut config = config.clone();
    let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
    config.total_timeout_ms = config.total_timeout_ms.min(ms);
    config.connect_timeout_ms = config.connect_timeout_ms.min(ms);
    config.first_token_timeout_ms = config.first_token_timeout_ms.min(ms);
    // One short answer: an id.
    config.max_tokens = Some(config.max_tokens.map_or(50, |m| m.min(50)));
    config.temperature = Some(0.0);
    let candidates: Vec<&Playbook> = builtin::all()
        .iter()
        .chain(custom.iter().take(MAX_CUSTOM_CANDIDATES))
        .collect();
    let ids: Vec<&str> = candidates.iter().map(|p| p.id.as_str()).collect();
    let mut list = String::new();
    for p in &candidates {
        let about = p
            .description
            .as_deref()
            .map(|d| clip(d, 200))
            .unwrap_or_default();
        list.push_str(&format!("- {}: {} — {}\n", p.id, clip(&p.name, 80), about));
    }
    let instructions = format!(
        "You choose the playbook for an outbound phone call an AI assistant will make on a \
         user's behalf. Read the call's objective and pick the one playbook below that fits it \
         best; pick \"{GENERAL}\" when none fits well. Answer with JSON only: \
         {{\"playbook_id\": \"<one id from the list>\"}}.\n\nPlaybooks:\n{list}"
    );
    let input = format!("Objective: {}", clip(objective.trim(), OBJECTIVE_MAX));
    let schema = json!({
        "type": "object",
        "properties": {"playbook_id": {"type": "string", "enum": ids}},
        "required": ["playbook_id"],
        "additionalProperties": false
    });
    let client = OpenAiJson::new(config).map_err(|e| e.to_string())?;
    let answer = client
        .complete(&JsonRequest {
            instructions: &instructions,
            input: &input,
            name: "playbook_choice",
            schema: &schema,
        })
        .await
        .map_err(|e| e.to_string())?;
    parse_choice(&answer, &ids).ok_or_else(|| {
        format!(
            "the answer names no playbook: {:?}",
            clip(answer.trim(), 200)
        )
    })
}

/// The id an answer names, if it is one of `ids`: `{"playbook_id": "x"}`,
/// `"x"` or a bare `x` (quotes, backticks and a final full stop allowed;
/// case is forgiven).
pub(crate) fn parse_choice(answer: &str, ids: &[&str]) -> Option<String> {
    let text = crate::agent::openai::summary::strip_fences(answer);
    let named = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => o
            .get("playbook_id")
            .or_else(|| o.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned)?,
        Ok(Value::String(s)) => s,
        Ok(_) => return None,
        Err(_) => text
            .trim()
            .trim_end_matches('.')
            .trim_matches(|c| c == '"' || c == '\'' || c == '`')
            .to_owned(),
    };
    let named = named.trim();
    ids.iter()
        .find(|id| **id == named)
        .or_else(|| ids.iter().find(|id| id.eq_ignore_ascii_case(named)))
        .map(|id| (*id).to_owned())
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Words and phrases that point to each built-in, with weights. A phrase
/// matches whole words in order; a word ending in `*` matches any word it
/// begins (`reserv*`: reserve, reservation). Strong, specific cues weigh
/// more than words that show up in many kinds of call (`ask`, `book`).
const KEYWORDS: &[(&str, &[(&str, u32)])] = &[
    (
        "complaint",
        &[
            ("complain*", 5),
            ("refund*", 4),
            ("overcharg*", 4),
            ("charged twice", 4),
            ("broken", 3),
            ("damaged", 3),
            ("defective", 3),
            ("faulty", 3),
            ("dissatisfied", 3),
            ("never arrived", 3),
            ("not working", 3),
            ("doesn't work", 3),
            ("wrong order", 3),
            ("poor service", 3),
            ("problem with", 2),
            ("unhappy", 2),
            ("escalat*", 2),
            ("compensat*", 2),
        ],
    ),
    (
        "negotiation",
        &[
            ("negotiat*", 5),
            ("haggle", 4),
            ("better deal", 4),
            ("better rate", 4),
            ("better price", 4),
            ("price match", 4),
            ("discount*", 3),
            ("lower", 3),
            ("waive*", 3),
            ("bring down", 3),
            ("counteroffer", 3),
            ("counter offer", 3),
            ("payment plan", 3),
            ("reduce*", 2),
            ("cheaper", 2),
            ("deal", 1),
        ],
    ),
    (
        "reservation",
        &[
            ("book a table", 5),
            ("reserv*", 3),
            ("table for", 4),
            ("party of", 3),
            ("book", 2),
            ("booking", 2),
            ("booked", 2),
            ("restaurant", 2),
            ("dinner", 2),
            ("lunch", 1),
            ("hotel", 2),
            ("room for", 2),
            ("a table", 2),
            ("tickets", 1),
            ("seats", 1),
        ],
    ),
    (
        "scheduling",
        &[
            ("reschedul*", 5),
            ("appointment*", 4),
            ("schedul*", 3),
            ("time slot", 3),
            ("cancel my", 2),
            ("move my", 2),
            ("availability", 2),
            ("consultation", 2),
            ("meeting", 2),
            ("calendar", 2),
            ("slot", 1),
            ("visit", 1),
        ],
    ),
    (
        "price_inquiry",
        &[
            ("how much", 4),
            ("price*", 3),
            ("pricing", 3),
            ("cost*", 3),
            ("quote*", 3),
            ("estimate*", 3),
            ("fee*", 2),
            ("rates", 2),
            ("charge", 1),
            ("afford*", 1),
        ],
    ),
    (
        "follow_up",
        &[
            ("follow up", 5),
            ("following up", 5),
            ("followup", 5),
            ("check on", 4),
            ("status of", 3),
            ("update on", 3),
            ("any news", 3),
            ("still waiting", 3),
            ("haven't heard", 3),
            ("check in", 3),
            ("status", 2),
            ("remind*", 2),
            ("chase", 2),
            ("progress", 2),
        ],
    ),
    (
        "cold_outreach",
        &[
            ("cold call*", 5),
            ("introduc*", 4),
            ("demo", 4),
            ("pitch*", 4),
            ("prospect*", 4),
            ("sell", 3),
            ("our service*", 3),
            ("our product*", 3),
            ("partnership", 3),
            ("promot*", 3),
            ("potential customer*", 3),
            ("interested in", 2),
            ("leads", 2),
            ("offer", 2),
            ("sign up", 2),
        ],
    ),
    (
        "information_gather",
        &[
            ("opening hours", 4),
            ("find out", 3),
            ("hours", 3),
            ("in stock", 3),
            ("whether", 2),
            ("if they", 2),
            ("check if", 2),
            ("check whether", 2),
            ("do they", 2),
            ("does it", 1),
            ("information", 2),
            ("info", 2),
            ("policy", 2),
            ("requirements", 2),
            ("address", 2),
            ("directions", 2),
            ("what time", 2),
            ("learn", 2),
            ("ask", 1),
            ("is there", 1),
            ("accept*", 1),
        ],
    ),
];

/// The built-in that fits `objective` by the keyword table: the one with
/// the highest total weight of matched cues (each cue counted once; ties
/// go to the playbook listed first, the more specific), or
/// [`GENERAL`] when nothing matches.
pub fn classify_keywords(objective: &str) -> &'static str {
    let words = words(objective);
    let mut best: (&'static str, u32) = (GENERAL, 0);
    for (id, cues) in KEYWORDS {
        let score: u32 = cues
            .iter()
            .filter(|(cue, _)| matches(&words, cue))
            .map(|(_, w)| w)
            .sum();
        if score > best.1 {
            best = (id, score);
        }
    }
    best.0
}

/// The lower-cased words of `text`; an apostrophe stays inside a word
/// (`doesn't`), any other punctuation separates.
pub(crate) fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace(['\u{2019}', '\u{2018}'], "'")
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether the words of `cue` occur in `words`, consecutively.
pub(crate) fn matches(words: &[String], cue: &str) -> bool {
    let pattern: Vec<&str> = cue.split(' ').collect();
    if pattern.is_empty() || words.len() < pattern.len() {
        return false;
    }
    words.windows(pattern.len()).any(|window| {
        window
            .iter()
            .zip(&pattern)
            .all(|(w, p)| match p.strip_suffix('*') {
                Some(stem) => w.starts_with(stem),
                None => w == p,
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realistic_objectives_find_their_playbook() {
        let cases = [
            (
                "Book a table for 4 at Luigi's on Friday at 7pm",
                "reservation",
            ),
            (
                "Reserve a hotel room for two nights from March 3",
                "reservation",
            ),
            ("Confirm my reservation for Saturday night", "reservation"),
            (
                "Find out how much they charge to replace a water heater",
                "price_inquiry",
            ),
            (
                "Get a quote for repainting the living room",
                "price_inquiry",
            ),
            (
                "Ask what the price of a 20 lb propane refill is",
                "price_inquiry",
            ),
            (
                "How much is a men's haircut and do they take walk-ins?",
                "price_inquiry",
            ),
            (
                "Negotiate a lower monthly rate on my internet plan",
                "negotiation",
            ),
            (
                "See if they'd give me a discount for paying in cash",
                "negotiation",
            ),
            ("Schedule a dentist appointment for next week", "scheduling"),
            (
                "Reschedule my haircut from Tuesday to Thursday",
                "scheduling",
            ),
            ("Book an appointment for an oil change", "scheduling"),
            (
                "Complain about the broken dishwasher they installed and ask for a refund",
                "complaint",
            ),
            (
                "I was charged twice for my order, get it fixed",
                "complaint",
            ),
            (
                "Follow up on the insurance claim I filed last month",
                "follow_up",
            ),
            ("Check on the status of my laptop repair", "follow_up"),
            (
                "Introduce our bookkeeping service to the restaurant owner and offer a free demo",
                "cold_outreach",
            ),
            ("Pitch our catering menu to local offices", "cold_outreach"),
            (
                "Find out whether the pharmacy has my prescription ready",
                "information_gather",
            ),
            (
                "Ask about their opening hours on Sunday",
                "information_gather",
            ),
            (
                "Check whether the hardware store has 2x4 lumber in stock",
                "information_gather",
            ),
            ("Call my aunt to wish her a happy birthday", "general"),
            ("", "general"),
        ];
        let mut reached = std::collections::BTreeSet::new();
        for (objective, want) in cases {
            assert_eq!(classify_keywords(objective), want, "{objective:?}");
            reached.insert(want);
        }
        // Every built-in is reachable.
        assert_eq!(reached.len(), builtin::IDS.len(), "{reached:?}");
    }

    #[test]
    fn cues_match_whole_words_and_stems() {
        let w = words("Don’t book the bookkeeping; RESERVATIONS, follow-up!");
        assert_eq!(
            w,
            [
                "don't",
                "book",
                "the",
                "bookkeeping",
                "reservations",
                "follow",
                "up"
            ]
        );
        assert!(matches(&w, "book"));
        assert!(matches(&w, "reserv*"));
        assert!(matches(&w, "follow up"));
        assert!(matches(&w, "don't"));
        assert!(!matches(&w, "bookkeeper"));
        assert!(!matches(&w, "the book"));
        // A word inside another is not that word.
        assert_eq!(classify_keywords("Ask my bookkeeper"), "information_gather");
    }

    #[test]
    fn keyword_table_names_only_built_ins() {
        for (id, cues) in KEYWORDS {
            assert!(builtin::is_builtin(id), "{id}");
            assert!(!cues.is_empty());
        }
    }

    #[test]
    fn answers_are_read_leniently_but_must_name_a_candidate() {
        let ids = ["reservation", "general", "pb_0123456789abcdef01234567"];
        for (answer, want) in [
            (r#"{"playbook_id": "reservation"}"#, Some("reservation")),
            (
                "```json\n{\"playbook_id\": \"general\"}\n```",
                Some("general"),
            ),
            (r#"{"id": "general"}"#, Some("general")),
            (r#""reservation""#, Some("reservation")),
            ("reservation", Some("reservation")),
            (" `Reservation`. ", Some("reservation")),
            (
                "pb_0123456789abcdef01234567",
                Some("pb_0123456789abcdef01234567"),
            ),
            (r#"{"playbook_id": "pizza"}"#, None),
            ("I think reservation fits best", None),
            ("[\"reservation\"]", None),
            ("", None),
        ] {
            assert_eq!(parse_choice(answer, &ids).as_deref(), want, "{answer:?}");
        }
    }

    /// A chat-completions server on 127.0.0.1 that answers every request
    /// with `content` after `delay`.
    async fn fake_llm(content: &'static str, delay: Duration) -> OpenAiConfig {
        use axum::routing::post;
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            post(move |body: axum::Json<Value>| async move {
                tokio::time::sleep(delay).await;
                // The request offers the built-ins and the custom ids.
                let ids = &body.0["response_format"]["json_schema"]["schema"]["properties"]
                    ["playbook_id"]["enum"];
                assert!(
                    ids.as_array()
                        .is_some_and(|a| a.len() >= 9 && a.contains(&json!("general"))),
                    "{ids}"
                );
                axum::Json(json!({
                    "id": "c1", "object": "chat.completion", "created": 0, "model": "m",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}]
                }))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        OpenAiConfig {
            base_url: format!("http://{addr}/v1"),
            api_key: Some("test".into()),
            model: "m".into(),
            max_retries: 0,
            ..OpenAiConfig::default()
        }
    }

    fn custom(id: &str) -> Playbook {
        Playbook {
            id: id.into(),
            org_id: Some("org_1".into()),
            builtin: false,
            name: "Wine orders".into(),
            description: Some("Order wine for the restaurant".into()),
            strategy: "Order it.".into(),
            behavior_rules: vec![],
            extraction_schema: None,
            voice_tone: None,
            success_criteria: None,
            forked_from: None,
            created_at: Some(1),
            updated_at: Some(1),
        }
    }

    #[tokio::test]
    async fn the_llm_choice_is_taken_when_it_names_a_candidate() {
        let objective = "Ask the wine supplier for 12 bottles of the house red";
        let config = fake_llm(r#"{"playbook_id": "negotiation"}"#, Duration::ZERO).await;
        let c = classify(Some(&config), objective, &[]).await;
        assert_eq!(
            c,
            Classification {
                playbook_id: "negotiation".into(),
                method: ClassifyMethod::Llm
            }
        );
        // A custom playbook of the organization may be chosen too.
        let id = "pb_0123456789abcdef01234567";
        let config = fake_llm(
            r#"{"playbook_id": "pb_0123456789abcdef01234567"}"#,
            Duration::ZERO,
        )
        .await;
        let c = classify(Some(&config), objective, &[custom(id)]).await;
        assert_eq!(
            (c.playbook_id.as_str(), c.method),
            (id, ClassifyMethod::Llm)
        );
    }

    #[tokio::test]
    async fn garbage_errors_and_slowness_fall_back_to_keywords() {
        let objective = "Book a table for two at 8pm";
        let keywords = Classification {
            playbook_id: "reservation".into(),
            method: ClassifyMethod::Keywords,
        };
        for answer in [
            "Sure! I would pick the reservation one.",
            r#"{"playbook_id": "restaurant_booking"}"#,
            // A custom id the organization does not have.
            r#"{"playbook_id": "pb_ffffffffffffffffffffffff"}"#,
        ] {
            let config = fake_llm(answer, Duration::ZERO).await;
            assert_eq!(
                classify(Some(&config), objective, &[]).await,
                keywords,
                "{answer}"
            );
        }
        let slow = fake_llm(r#"{"playbook_id": "general"}"#, Duration::from_secs(5)).await;
        let started = std::time::Instant::now();
        let c = classify_within(Some(&slow), objective, &[], Duration::from_millis(300)).await;
        assert_eq!(c, keywords);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        // Nothing listening.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let config = OpenAiConfig {
            base_url: format!("http://{closed}/v1"),
            api_key: Some("test".into()),
            max_retries: 0,
            ..OpenAiConfig::default()
        };
        assert_eq!(classify(Some(&config), objective, &[]).await, keywords);
        // No LLM at all.
        assert_eq!(classify(None, objective, &[]).await, keywords);
    }
}
