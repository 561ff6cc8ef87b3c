//! What speech-to-text writes, reduced to words that compare: lowercase,
//! no punctuation, apostrophes dropped (`don't` is `dont`), numbers kept
//! whole (`1,500` is `1500`, `+44` is `plus 44`).

/// Hesitation sounds that STT writes out. "uh huh" and "mm hmm" mean yes;
/// the yes/no reader sees them before these are dropped.
const FILLERS: &[&str] = &[
    "um", "umm", "uhm", "uh", "uhh", "er", "erm", "ah", "ahh", "hmm", "hm", "mm", "eh",
];

/// Longest text the matchers read. A longer turn is a monologue, not an
/// answer, and the bound keeps the work per turn small.
pub(super) const MAX_CHARS: usize = 2_000;

/// The words of `text`, fillers included.
pub(super) fn tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().take(MAX_CHARS).collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let next = chars.get(i + 1).copied();
        let between_digits =
            prev.is_some_and(|p| p.is_ascii_digit()) && next.is_some_and(|n| n.is_ascii_digit());
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else if matches!(c, '\'' | '’')
            && prev.is_some_and(char::is_alphanumeric)
            && next.is_some_and(char::is_alphanumeric)
        {
            // "don't" → "dont": one word, spelled the way keywords are.
        } else if c == ',' && between_digits {
            // "1,500": a thousands separator.
        } else if c == '.' && between_digits {
            // "3.5" or "415.555.0100": the number readers decide.
            cur.push('.');
        } else {
            flush(&mut cur, &mut out);
            if c == '+' && next.is_some_and(|n| n.is_ascii_digit()) {
                out.push("plus".to_owned());
            }
        }
    }
    flush(&mut cur, &mut out);
    out
}

fn flush(cur: &mut String, out: &mut Vec<String>) {
    if !cur.is_empty() {
        out.push(std::mem::take(cur));
    }
}

/// Whether `word` is a hesitation sound.
pub(super) fn is_filler(word: &str) -> bool {
    FILLERS.contains(&word)
}

/// The words of `text` without fillers.
pub(super) fn words(text: &str) -> Vec<String> {
    let mut t = tokens(text);
    t.retain(|w| !is_filler(w));
    t
}

/// `text` trimmed, without the fillers and punctuation it starts with
/// ("Um, well… I wanted" is "well… I wanted"), at most `max` characters.
pub(super) fn clean_text(text: &str, max: usize) -> String {
    let mut rest = text.trim();
    loop {
        let start = rest.trim_start_matches(|c: char| !c.is_alphanumeric());
        let end = start
            .find(|c: char| !c.is_alphanumeric())
            .unwrap_or(start.len());
        if end > 0 && is_filler(&start[..end].to_lowercase()) {
            rest = &start[end..];
        } else {
            // Keep opening punctuation that belongs to the text (a quote),
            // but not the separators left by a dropped filler.
            rest = rest.trim_start_matches([',', '.', ' ', '…', '-', ';', ':']);
            break;
        }
    }
    let out: String = rest.trim().chars().take(max).collect();
    out.trim_end().to_owned()
}

/// `text` without the sound annotations STT engines write for what is
/// not speech (`[BLANK_AUDIO]`, `(coughs)`, `*music*`); a group holding
/// digits is kept, as in `(415) 555-0100`.
pub(super) fn strip_annotations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['[', '(', '*']) {
        let close = match rest.as_bytes()[i] {
            b'[' => ']',
            b'(' => ')',
            _ => '*',
        };
        let after = &rest[i + 1..];
        match after.find(close) {
            Some(j) if !after[..j].contains(|c: char| c.is_ascii_digit()) => {
                out.push_str(&rest[..i]);
                rest = &after[j + 1..];
            }
            _ => {
                out.push_str(&rest[..=i]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `text` holds any word or number.
pub(super) fn has_words(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// A light stem, so that a keyword matches the forms STT writes for it:
/// `acknowledge`, `acknowledged` and `acknowledging` all stem to
/// `acknowledg`. Short words are left alone.
pub(super) fn stem(word: &str) -> &str {
    if word.chars().count() < 4 || !word.is_ascii() {
        return word;
    }
    for suffix in ["ing", "ed", "es", "s", "e", "d"] {
        if let Some(s) = word.strip_suffix(suffix)
            && s.len() >= 3
        {
            return s;
        }
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_drop_case_and_punctuation_but_keep_numbers_whole() {
        assert_eq!(tokens("Yes, please!"), ["yes", "please"]);
        assert_eq!(tokens("I don't know."), ["i", "dont", "know"]);
        assert_eq!(tokens("It’s 1,500 dollars"), ["its", "1500", "dollars"]);
        assert_eq!(tokens("+44 20 7946"), ["plus", "44", "20", "7946"]);
        assert_eq!(tokens("415-555-0100"), ["415", "555", "0100"]);
        assert_eq!(tokens("3.5 stars."), ["3.5", "stars"]);
        assert_eq!(tokens("Uh-huh."), ["uh", "huh"]);
        assert_eq!(tokens("ÉCOLE"), ["école"]);
        assert!(tokens("...?!").is_empty());
    }

    #[test]
    fn words_drop_fillers() {
        assert_eq!(words("Um, uh, sales please"), ["sales", "please"]);
        assert!(words("Hmm... um.").is_empty());
    }

    #[test]
    fn clean_text_trims_leading_fillers_and_caps_the_length() {
        assert_eq!(
            clean_text("  Um, uh... Call me back.  ", 100),
            "Call me back."
        );
        assert_eq!(clean_text("Umbrella stand", 100), "Umbrella stand");
        assert_eq!(clean_text("Hello there", 5), "Hello");
        assert_eq!(clean_text("um", 100), "");
        assert_eq!(clean_text("\"Quoted\" text", 100), "\"Quoted\" text");
    }

    #[test]
    fn annotations_are_not_speech() {
        assert_eq!(strip_annotations("[BLANK_AUDIO]"), "");
        assert_eq!(strip_annotations("Yes (coughs) please"), "Yes  please");
        assert_eq!(strip_annotations("*music* hello"), " hello");
        assert_eq!(strip_annotations("(415) 555-0100"), "(415) 555-0100");
        assert_eq!(strip_annotations("a [b"), "a [b");
        assert_eq!(strip_annotations("2 * 3"), "2 * 3");
        assert!(!has_words(&strip_annotations(" [Music] ... ")));
        assert!(has_words("é"));
    }

    #[test]
    fn stem_joins_the_forms_of_a_word() {
        for w in ["acknowledge", "acknowledged", "acknowledging"] {
            assert_eq!(stem(w), "acknowledg");
        }
        assert_eq!(stem("sales"), stem("sale"));
        assert_eq!(stem("yes"), "yes");
        assert_eq!(stem("bill"), "bill");
    }
}
