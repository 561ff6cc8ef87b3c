//! Which of an `ask` node's choices the caller picked, by speech or by
//! keys.
//!
//! Speech is matched on normalised words: a keyword matches when its
//! words appear in order in the answer (in any inflection STT writes:
//! `acknowledged` for `acknowledge`), unless a negation comes right
//! before ("not sales"). A choice's yes/no intent and its DTMF digits
//! said aloud ("one", "press two") count too. The choice with the longest
//! match wins; a tie between choices is no match, so the caller is asked
//! again rather than sent somewhere they did not ask for.

use super::def::YesNo;
use super::normalize::{stem, words};
use super::numbers::{Mode, runs};
use super::yesno::yes_no;

/// What one choice listens for, normalised once when the flow compiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listener {
    /// Each keyword as its stemmed words.
    pub phrases: Vec<Vec<String>>,
    /// The keys.
    pub dtmf: Option<String>,
    /// Any yes (or no).
    pub intent: Option<YesNo>,
}

/// Words that cancel the keyword right after them.
const NEGATIONS: &[&str] = &["not", "dont", "never", "without"];

impl Listener {
    /// A listener for `keywords` (raw text), `dtmf` and `intent`.
    pub fn new(keywords: &[String], dtmf: Option<&str>, intent: Option<YesNo>) -> Self {
        Listener {
            phrases: keywords.iter().map(|k| phrase(k)).collect(),
            dtmf: dtmf.map(str::to_owned),
            intent,
        }
    }
}

/// A keyword as the stemmed words it is matched by.
pub(super) fn phrase(keyword: &str) -> Vec<String> {
    words(keyword).iter().map(|w| stem(w).to_owned()).collect()
}

/// How well `said` (stemmed words) matches `l`: the number of keyword
/// words matched, 1 for an intent or spoken digits, 0 for nothing.
fn score(l: &Listener, said: &[String], answer: Option<YesNo>, spoken: Option<&str>) -> usize {
    let mut best = 0;
    for p in &l.phrases {
        if p.is_empty() || p.len() > said.len() {
            continue;
        }
        for (start, window) in said.windows(p.len()).enumerate() {
            let negated = start
                .checked_sub(1)
                .and_then(|i| said.get(i))
                .is_some_and(|w| NEGATIONS.contains(&w.as_str()));
            if window == p.as_slice() && !negated {
                best = best.max(p.len());
            }
        }
    }
    if l.intent.is_some() && l.intent == answer {
        best = best.max(1);
    }
    if let (Some(d), Some(s)) = (&l.dtmf, spoken)
        && d == s
    {
        best = best.max(1);
    }
    best
}

/// The choice `text` picks, if exactly one fits best.
pub(super) fn match_speech(listeners: &[Listener], text: &str) -> Option<usize> {
    let plain = words(text);
    let said: Vec<String> = plain.iter().map(|w| stem(w).to_owned()).collect();
    let answer = yes_no(text);
    let digit_runs = runs(&plain, Mode::Digits);
    let spoken = match digit_runs.as_slice() {
        [one] if !one.plus => Some(one.digits.as_str()),
        _ => None,
    };
    let scores: Vec<usize> = listeners
        .iter()
        .map(|l| score(l, &said, answer, spoken))
        .collect();
    let top = scores.iter().copied().max().unwrap_or(0);
    if top == 0 {
        return None;
    }
    let mut winners = scores.iter().enumerate().filter(|(_, s)| **s == top);
    match (winners.next(), winners.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

/// What keyed digits say about the choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keyed {
    /// This choice.
    Choice(usize),
    /// The digits so far begin a longer choice: wait for more.
    Partial,
    /// No choice.
    None,
}

/// The choice `digits` (keyed so far, `#` ends them) select.
pub(super) fn match_dtmf(listeners: &[Listener], digits: &str) -> Keyed {
    let ended = digits.contains('#');
    let digits = digits.split('#').next().unwrap_or("");
    if digits.is_empty() {
        return Keyed::None;
    }
    if let Some(i) = listeners
        .iter()
        .position(|l| l.dtmf.as_deref() == Some(digits))
    {
        return Keyed::Choice(i);
    }
    let longer = listeners.iter().any(|l| {
        l.dtmf
            .as_deref()
            .is_some_and(|d| d.len() > digits.len() && d.starts_with(digits))
    });
    if longer && !ended {
        Keyed::Partial
    } else {
        Keyed::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn menu() -> Vec<Listener> {
        vec![
            Listener::new(&["sales".into(), "buy something".into()], Some("1"), None),
            Listener::new(
                &["support".into(), "technical help".into()],
                Some("2"),
                None,
            ),
            Listener::new(&["operator".into()], Some("0"), None),
        ]
    }

    #[test]
    fn keywords_match_in_any_case_punctuation_and_inflection() {
        let m = menu();
        assert_eq!(match_speech(&m, "Sales."), Some(0));
        assert_eq!(
            match_speech(&m, "Um, I'd like to BUY something, please"),
            Some(0)
        );
        assert_eq!(match_speech(&m, "uh, support"), Some(1));
        assert_eq!(match_speech(&m, "I need technical help"), Some(1));
        assert_eq!(match_speech(&m, "Operators?"), Some(2));
        assert_eq!(match_speech(&m, "pizza"), None);
        assert_eq!(match_speech(&m, ""), None);
    }

    #[test]
    fn digits_said_aloud_pick_the_keyed_choice() {
        let m = menu();
        assert_eq!(match_speech(&m, "One."), Some(0));
        assert_eq!(match_speech(&m, "press two"), Some(1));
        assert_eq!(match_speech(&m, "Option 0"), Some(2));
        assert_eq!(match_speech(&m, "Oh."), None);
        assert_eq!(match_speech(&m, "Three"), None);
    }

    #[test]
    fn negated_and_ambiguous_answers_do_not_match() {
        let m = menu();
        assert_eq!(match_speech(&m, "not sales"), None);
        assert_eq!(match_speech(&m, "not sales, support"), Some(1));
        assert_eq!(match_speech(&m, "sales or support"), None);
        // The longer match wins over a shorter one.
        assert_eq!(match_speech(&m, "support, buy something"), Some(0));
    }

    #[test]
    fn intents_match_any_yes_or_no() {
        let l = vec![
            Listener::new(&["acknowledge".into()], Some("1"), Some(YesNo::Yes)),
            Listener::new(&["repeat".into(), "again".into()], Some("2"), None),
        ];
        assert_eq!(match_speech(&l, "Acknowledged."), Some(0));
        assert_eq!(match_speech(&l, "yeah"), Some(0));
        assert_eq!(match_speech(&l, "Yep, got it"), Some(0));
        assert_eq!(match_speech(&l, "Can you say that again?"), Some(1));
        assert_eq!(match_speech(&l, "nope"), None);
    }

    #[test]
    fn keyed_digits() {
        let l = vec![
            Listener::new(&[], Some("1"), None),
            Listener::new(&[], Some("21"), None),
            Listener::new(&[], Some("*"), None),
        ];
        assert_eq!(match_dtmf(&l, "1"), Keyed::Choice(0));
        assert_eq!(match_dtmf(&l, "1#"), Keyed::Choice(0));
        assert_eq!(match_dtmf(&l, "2"), Keyed::Partial);
        assert_eq!(match_dtmf(&l, "2#"), Keyed::None);
        assert_eq!(match_dtmf(&l, "21"), Keyed::Choice(1));
        assert_eq!(match_dtmf(&l, "*"), Keyed::Choice(2));
        assert_eq!(match_dtmf(&l, "9"), Keyed::None);
        assert_eq!(match_dtmf(&l, "#"), Keyed::None);
    }
}
