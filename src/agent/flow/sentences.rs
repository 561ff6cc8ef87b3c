//! Splits what the flow says into sentences, so that TTS can start on the
//! first while the rest is queued.

/// Words ending in a dot that do not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "vs", "etc", "inc", "ltd", "co", "mt", "ft",
    "approx", "dept", "ave",
];

/// The sentences of `text`, trimmed, whitespace collapsed. A sentence ends
/// at `.`, `!`, `?` or `…` (with any closing quote or bracket) followed by
/// a space and something that is not a lowercase letter, or at a line
/// break.
pub(super) fn sentences(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' || c == '\r' {
            flush(&mut cur, &mut out);
        } else if c.is_whitespace() {
            if !cur.is_empty() && !cur.ends_with(' ') {
                cur.push(' ');
            }
        } else {
            cur.push(c);
            if matches!(c, '.' | '!' | '?' | '…') {
                while let Some(&n) = chars.get(i + 1) {
                    if !matches!(
                        n,
                        '.' | '!' | '?' | '…' | '"' | '\'' | ')' | '”' | '’' | ']'
                    ) {
                        break;
                    }
                    cur.push(n);
                    i += 1;
                }
                let mut j = i + 1;
                while chars
                    .get(j)
                    .is_some_and(|n| n.is_whitespace() && *n != '\n')
                {
                    j += 1;
                }
                let spaced = j > i + 1;
                let ends = match chars.get(j) {
                    None => true,
                    Some('\n') => true,
                    Some(n) => spaced && !n.is_lowercase() && !(c == '.' && abbreviation(&cur)),
                };
                if ends {
                    flush(&mut cur, &mut out);
                }
            }
        }
        i += 1;
    }
    flush(&mut cur, &mut out);
    out
}

fn flush(cur: &mut String, out: &mut Vec<String>) {
    let s = cur.trim();
    if !s.is_empty() {
        out.push(s.to_owned());
    }
    cur.clear();
}

/// Whether `sentence` ends in an abbreviation's dot (`… Dr.`).
fn abbreviation(sentence: &str) -> bool {
    let body = sentence.trim_end_matches('.');
    let word = body
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("");
    ABBREVIATIONS.contains(&word.to_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_sentence_ends() {
        assert_eq!(
            sentences("Hello! You've reached Acme.  What's your name?"),
            ["Hello!", "You've reached Acme.", "What's your name?"]
        );
        assert_eq!(
            sentences("He said \"stop.\" Then left…  OK?!"),
            ["He said \"stop.\"", "Then left…", "OK?!"]
        );
        assert_eq!(sentences("Line one\nline two"), ["Line one", "line two"]);
        assert_eq!(sentences("No end"), ["No end"]);
        assert!(sentences("  \n ").is_empty());
    }

    #[test]
    fn keeps_numbers_abbreviations_and_lowercase_continuations_whole() {
        assert_eq!(
            sentences("Dr. Smith costs 3.5 dollars, e.g. today. Bye."),
            ["Dr. Smith costs 3.5 dollars, e.g. today.", "Bye."]
        );
        assert_eq!(sentences("Wait... what? ok."), ["Wait... what? ok."]);
    }
}
