//! Slot values, and the readers for names and phone numbers.

use serde_json::Value;

use super::normalize::is_filler;

/// What a slot holds. The kind decides how it is spoken back (a phone
/// number digit by digit) and how it appears in the call record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SlotValue {
    /// Words.
    Text(String),
    /// Digits, leading zeros kept.
    Digits(String),
    /// E.164.
    Phone(String),
    /// A whole number.
    Number(i64),
    /// Yes (true) or no.
    Bool(bool),
}

impl SlotValue {
    /// For the call record.
    pub fn to_json(&self) -> Value {
        match self {
            SlotValue::Text(s) | SlotValue::Digits(s) | SlotValue::Phone(s) => {
                Value::String(s.clone())
            }
            SlotValue::Number(n) => Value::from(*n),
            SlotValue::Bool(b) => Value::Bool(*b),
        }
    }

    /// As data (a transfer number, another slot): `+14155550100`.
    pub fn raw(&self) -> String {
        match self {
            SlotValue::Text(s) | SlotValue::Digits(s) | SlotValue::Phone(s) => s.clone(),
            SlotValue::Number(n) => n.to_string(),
            SlotValue::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        }
    }

    /// As speech: `1, 4 1 5, 5 5 5, 0 1 0 0`.
    pub fn spoken(&self) -> String {
        match self {
            SlotValue::Digits(d) => spoken_digits(d),
            SlotValue::Phone(p) => spoken_phone(p),
            other => other.raw(),
        }
    }

    /// The value as a number, when it is one.
    pub fn as_number(&self) -> Option<i64> {
        match self {
            SlotValue::Number(n) => Some(*n),
            SlotValue::Digits(s) | SlotValue::Text(s) => s.trim().parse().ok(),
            SlotValue::Phone(_) | SlotValue::Bool(_) => None,
        }
    }

    /// Whether the value equals a JSON scalar from a flow: text without
    /// regard to case or surrounding space, numbers by value, and yes/no
    /// against `true`/`false` or the words.
    pub fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (SlotValue::Bool(b), Value::Bool(o)) => b == o,
            (SlotValue::Bool(b), Value::String(s)) => match s.trim().to_lowercase().as_str() {
                "yes" | "true" => *b,
                "no" | "false" => !*b,
                _ => false,
            },
            (_, Value::Number(n)) => n.as_i64().is_some_and(|n| self.as_number() == Some(n)),
            (_, Value::String(s)) => self.raw().trim().to_lowercase() == s.trim().to_lowercase(),
            _ => false,
        }
    }
}

/// `1234` as `1 2 3 4`, so that TTS says digits, not a quantity.
pub(super) fn spoken_digits(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() * 2);
    for c in digits.chars() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// An E.164 number digit by digit in groups from the end (four, then
/// threes), the rhythm people read numbers back in:
/// `+14155550100` is `1, 4 1 5, 5 5 5, 0 1 0 0`.
pub(super) fn spoken_phone(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let mut groups: Vec<String> = Vec::new();
    let mut end = digits.len();
    let mut size = 4;
    while end > 0 {
        let start = end.saturating_sub(size);
        let group: String = digits[start..end].iter().collect();
        groups.push(spoken_digits(&group));
        end = start;
        size = 3;
    }
    groups.reverse();
    groups.join(", ")
}

/// `value` as canonical E.164 (`+`, 7 to 15 digits, no leading zero), if
/// it is one.
pub(super) fn e164(value: &str) -> Option<String> {
    let rest = value.trim().strip_prefix('+')?;
    let digits: String = rest
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let ok = (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    ok.then(|| format!("+{digits}"))
}

/// The ITU country calling codes of one and two digits; every other code
/// has three. The codes form a prefix code, so the longest match is the
/// only one.
const SHORT_CODES: &[&str] = &[
    "1", "7", "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45",
    "46", "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
    "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
];

/// The country calling code of an E.164 number (`1` for `+1415…`).
pub(super) fn country_code_of(number: &str) -> Option<String> {
    let n = e164(number)?;
    let digits = &n[1..];
    for len in 1..=2 {
        if let Some(code) = digits.get(..len)
            && SHORT_CODES.contains(&code)
        {
            return Some(code.to_owned());
        }
    }
    digits.get(..3).map(str::to_owned)
}

/// The E.164 number meant by `digits` as said or keyed. With `plus` (or
/// an international prefix, `00` or the North American `011`) the digits
/// carry their country code; otherwise `country_code` is added, after
/// dropping a national trunk prefix (`0`, or `1` and `8` where those are
/// used). North American numbers must have ten digits.
pub(super) fn phone_number(plus: bool, digits: &str, country_code: Option<&str>) -> Option<String> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if plus {
        return e164(&format!("+{digits}"));
    }
    if country_code == Some("1")
        && let Some(intl) = digits.strip_prefix("011")
    {
        return e164(&format!("+{intl}"));
    }
    if let Some(intl) = digits.strip_prefix("00") {
        return e164(&format!("+{intl}"));
    }
    let cc = country_code?;
    let national = match cc {
        "1" => match digits.len() {
            10 => digits,
            11 => digits.strip_prefix('1')?,
            _ => return None,
        },
        "7" if digits.len() == 11 && digits.starts_with('8') => &digits[1..],
        _ => digits.strip_prefix('0').unwrap_or(digits),
    };
    e164(&format!("+{cc}{national}"))
}

/// Phrases that mean "the number I'm calling from".
const OWN_NUMBER: &[&[&str]] = &[
    &["this", "number"],
    &["same", "number"],
    &["this", "phone"],
    &["this", "line"],
    &["calling", "from"],
    &["caller", "id"],
];

/// Whether `words` point at the caller's own number.
pub(super) fn means_own_number(words: &[String]) -> bool {
    OWN_NUMBER.iter().any(|p| {
        words
            .windows(p.len())
            .any(|w| w.iter().zip(*p).all(|(a, b)| a == b))
    })
}

/// Words that come before a name and are not part of it.
const LEAD: &[&str] = &[
    "oh", "well", "so", "yes", "yeah", "yep", "hi", "hello", "hey", "sure", "ok", "okay", "right",
    "alright", "sorry",
];

/// How callers introduce a name.
const INTRO: &[&[&str]] = &[
    &["you", "can", "call", "me"],
    &["they", "call", "me"],
    &["my", "name", "is"],
    &["the", "name", "is"],
    &["my", "names"],
    &["name", "is"],
    &["this", "is"],
    &["it", "is"],
    &["call", "me"],
    &["i", "am"],
    &["i", "go", "by"],
    &["names"],
    &["its"],
    &["im"],
];

/// Words that end a name ("John from Acme", "Ada, calling about…").
const STOP: &[&str] = &[
    "from",
    "calling",
    "speaking",
    "here",
    "and",
    "with",
    "at",
    "thanks",
    "thank",
    "please",
    "but",
    "i",
    "im",
    "who",
    "about",
    "regarding",
    "on",
    "for",
];

/// Words that are never part of a name: an answer made of these is not a
/// name ("I don't know", "no").
const NOT_NAME: &[&str] = &[
    "yes", "no", "yeah", "nope", "dont", "know", "what", "why", "want", "need", "the", "a", "an",
    "to", "is", "am", "are", "you", "your", "me", "my", "it", "that", "this", "not", "could",
    "would", "like", "speak", "talk", "help", "hello", "hi", "nothing", "nobody", "none", "okay",
    "ok", "sorry", "name", "can", "there", "anybody", "somebody", "someone", "person", "human",
    "operator",
];

/// Most words in a name.
const NAME_WORDS: usize = 4;

/// The name in `text` ("Um, my name is ada lovelace." gives
/// `Ada Lovelace`), if it holds one: a few words of letters after any
/// introduction, up to a word that ends it.
pub(super) fn name(text: &str) -> Option<String> {
    let mut words: Vec<(String, String)> = text
        .split_whitespace()
        .take(64)
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(|w| {
            let key: String = w
                .chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect();
            (w.to_owned(), key)
        })
        .collect();
    // Leading interjections and introductions, in any order ("Hi, yes,
    // this is, um, Ada").
    loop {
        let before = words.len();
        while words
            .first()
            .is_some_and(|(_, k)| is_filler(k) || LEAD.contains(&k.as_str()))
        {
            words.remove(0);
        }
        if let Some(len) = INTRO
            .iter()
            .find(|p| p.len() <= words.len() && p.iter().zip(&words).all(|(a, (_, k))| a == k))
            .map(|p| p.len())
        {
            words.drain(..len);
        }
        if words.len() == before {
            break;
        }
    }
    if let Some(stop) = words.iter().position(|(_, k)| STOP.contains(&k.as_str())) {
        words.truncate(stop);
    }
    words.retain(|(_, k)| !is_filler(k));
    let words = join_spelled(words);
    if words.is_empty() || words.len() > NAME_WORDS {
        return None;
    }
    let letters_only = words.iter().all(|(w, _)| {
        w.chars()
            .all(|c| c.is_alphabetic() || matches!(c, '\'' | '’' | '-' | '.'))
    });
    if !letters_only || words.iter().any(|(_, k)| NOT_NAME.contains(&k.as_str())) {
        return None;
    }
    let out: Vec<String> = words.iter().map(|(w, _)| capitalize(w)).collect();
    Some(out.join(" "))
}

/// "J O H N" is one spelled word, `JOHN`.
fn join_spelled(words: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut spelled = String::new();
    let single = |w: &str| w.chars().count() == 1 && w.chars().all(char::is_alphabetic);
    let flush =
        |spelled: &mut String, out: &mut Vec<(String, String)>| match spelled.chars().count() {
            0 => {}
            1 => {
                let w = std::mem::take(spelled);
                let k = w.to_lowercase();
                out.push((w, k));
            }
            _ => {
                let lower = spelled.to_lowercase();
                spelled.clear();
                out.push((lower.clone(), lower));
            }
        };
    for (w, k) in words {
        if single(&w) {
            spelled.push_str(&w);
        } else {
            flush(&mut spelled, &mut out);
            out.push((w, k));
        }
    }
    flush(&mut spelled, &mut out);
    out
}

/// `ada` is `Ada`; `McDonald` and `DeShawn` stay as written.
fn capitalize(word: &str) -> String {
    if word.chars().any(char::is_uppercase) {
        return word.to_owned();
    }
    let mut out = String::with_capacity(word.len());
    let mut start = true;
    for c in word.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
            start = false;
        } else {
            out.push(c);
            // Mary-jane → Mary-Jane.
            start = c == '-';
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::normalize::tokens;
    use super::*;

    #[test]
    fn names_as_callers_say_them() {
        for (said, want) in [
            ("John Smith", "John Smith"),
            ("My name is John Smith.", "John Smith"),
            ("Um, it's ada lovelace.", "Ada Lovelace"),
            ("Hi, yes, this is, uh, Ada.", "Ada"),
            ("This is John from Acme.", "John"),
            ("I'm Grace Hopper, calling about my order", "Grace Hopper"),
            ("call me mary-jane o'brien", "Mary-Jane O'brien"),
            ("You can call me DeShawn.", "DeShawn"),
            ("J O H N", "John"),
            ("Chloé", "Chloé"),
        ] {
            assert_eq!(name(said).as_deref(), Some(want), "{said}");
        }
    }

    #[test]
    fn answers_that_are_not_names() {
        for said in [
            "",
            "Um.",
            "Yes.",
            "No",
            "I don't know",
            "I want to talk to someone about my bill",
            "My name is",
            "It's 42",
            "Please hold on a second while I find a pen to write",
            "Can I talk to a person?",
        ] {
            assert_eq!(name(said), None, "{said}");
        }
    }

    #[test]
    fn e164_and_country_codes() {
        assert_eq!(e164("+1 (415) 555-0100").as_deref(), Some("+14155550100"));
        assert_eq!(e164("14155550100"), None);
        assert_eq!(e164("+0123456"), None);
        assert_eq!(country_code_of("+14155550100").as_deref(), Some("1"));
        assert_eq!(country_code_of("+442079460958").as_deref(), Some("44"));
        assert_eq!(country_code_of("+353123456789").as_deref(), Some("353"));
        assert_eq!(country_code_of("+79161234567").as_deref(), Some("7"));
        assert_eq!(country_code_of("alice"), None);
    }

    #[test]
    fn phone_numbers_said_nationally_and_internationally() {
        let us = Some("1");
        assert_eq!(
            phone_number(false, "4155550100", us).as_deref(),
            Some("+14155550100")
        );
        assert_eq!(
            phone_number(false, "14155550100", us).as_deref(),
            Some("+14155550100")
        );
        assert_eq!(phone_number(false, "5550100", us), None);
        assert_eq!(
            phone_number(false, "011442079460958", us).as_deref(),
            Some("+442079460958")
        );
        assert_eq!(
            phone_number(true, "442079460958", us).as_deref(),
            Some("+442079460958")
        );
        let uk = Some("44");
        assert_eq!(
            phone_number(false, "02079460958", uk).as_deref(),
            Some("+442079460958")
        );
        assert_eq!(
            phone_number(false, "0014155550100", uk).as_deref(),
            Some("+14155550100")
        );
        assert_eq!(
            phone_number(false, "89161234567", Some("7")).as_deref(),
            Some("+79161234567")
        );
        assert_eq!(phone_number(false, "4155550100", None), None);
        assert_eq!(phone_number(true, "0123", None), None);
    }

    #[test]
    fn own_number_phrases() {
        assert!(means_own_number(&tokens("The number I'm calling from.")));
        assert!(means_own_number(&tokens("this number is fine")));
        assert!(!means_own_number(&tokens("four one five")));
    }

    #[test]
    fn values_speak_and_compare() {
        assert_eq!(
            SlotValue::Phone("+14155550100".into()).spoken(),
            "1, 4 1 5, 5 5 5, 0 1 0 0"
        );
        assert_eq!(SlotValue::Digits("0042".into()).spoken(), "0 0 4 2");
        assert_eq!(SlotValue::Number(42).spoken(), "42");
        assert_eq!(SlotValue::Bool(true).spoken(), "yes");
        assert!(SlotValue::Bool(true).equals(&Value::Bool(true)));
        assert!(SlotValue::Bool(false).equals(&"No".into()));
        assert!(SlotValue::Text(" Sales ".into()).equals(&"sales".into()));
        assert!(SlotValue::Number(3).equals(&3.into()));
        assert!(SlotValue::Digits("003".into()).equals(&3.into()));
        assert!(!SlotValue::Text("x".into()).equals(&Value::Null));
        assert_eq!(SlotValue::Number(7).to_json(), Value::from(7));
    }
}
