//! Cuts a text segment into the pieces the voice speaks in one pass.
//!
//! Piper speaks a sentence per inference, its clauses joined by their
//! punctuation (espeak-ng's clause terminators become the `,` `.` `?` …
//! phonemes that shape the prosody). The same is done here, and a sentence
//! too long to wait for is cut at its clause boundaries (or, failing those,
//! between words), so that its first part plays while the rest is
//! synthesized.

/// A clause and the punctuation that ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Clause {
    /// The words, with their own punctuation (espeak-ng reads `Dr.` and
    /// `e.g.` better with the dot).
    pub text: String,
    /// The terminator Piper puts after the clause's phonemes: one of
    /// `. , ; : ! ?`, or none for a clause cut between words.
    pub end: Option<char>,
}

/// What one inference speaks: a sentence, or part of a long one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unit {
    /// Its clauses, in order.
    pub clauses: Vec<Clause>,
    /// True when a sentence starts with this unit (and so a pause goes
    /// before it when something was said already).
    pub starts_sentence: bool,
}

/// Characters that can end a clause when followed by white space or the
/// end of the text.
fn is_terminator(c: char) -> bool {
    matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | '…')
}

/// Closing quotes and brackets that may sit between a terminator and the
/// space after it (`"Yes." he said`).
fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '}' | '”' | '’' | '»')
}

/// The terminator phoneme for a run of punctuation such as `?!` or `...`:
/// a question wins, then an exclamation, then a full stop.
fn terminator_of(run: &str) -> Option<char> {
    ['?', '!', '.', ';', ':', ',']
        .into_iter()
        .find(|&p| run.contains(p) || (p == '.' && run.contains('…')))
}

fn ends_sentence(end: Option<char>) -> bool {
    matches!(end, Some('.' | '!' | '?'))
}

/// Splits `text` into sentences of clauses. Line breaks end sentences;
/// control characters are spaces. Clauses with nothing to pronounce (a
/// lone `--`) are dropped.
pub(super) fn sentences(text: &str) -> Vec<Vec<Clause>> {
    let mut out: Vec<Vec<Clause>> = Vec::new();
    let mut sentence: Vec<Clause> = Vec::new();
    let mut clause = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;

    let mut close = |clause: &mut String, end: Option<char>, sentence_end: bool| {
        let words = clause.split_whitespace().collect::<Vec<_>>().join(" ");
        clause.clear();
        if words.chars().any(char::is_alphanumeric) {
            sentence.push(Clause { text: words, end });
        } else if let Some(last) = sentence.last_mut()
            && end.is_some()
            && (last.end.is_none() || ends_sentence(end))
        {
            // Punctuation with no words ("Okay, ?") still shapes the
            // clause before it.
            last.end = end;
        }
        if sentence_end && !sentence.is_empty() {
            out.push(std::mem::take(&mut sentence));
        }
    };

    while i < chars.len() {
        let c = chars[i];
        if c == '\n' || c == '\r' || c == '\u{2028}' || c == '\u{2029}' {
            close(&mut clause, None, true);
            i += 1;
            continue;
        }
        if is_terminator(c) {
            let start = i;
            let mut j = i;
            while j < chars.len() && (is_terminator(chars[j]) || is_closer(chars[j])) {
                j += 1;
            }
            let at_break = j == chars.len() || chars[j].is_whitespace();
            if at_break {
                let run: String = chars[start..j].iter().collect();
                clause.push_str(&run);
                let end = terminator_of(&run);
                close(&mut clause, end, ends_sentence(end) || j == chars.len());
                i = j;
                continue;
            }
            clause.push(c);
            i += 1;
            continue;
        }
        clause.push(if c.is_control() { ' ' } else { c });
        i += 1;
    }
    close(&mut clause, None, true);
    out
}

/// Cuts `text` into units of at most about `max_chars` characters:
/// whole sentences when they fit, else runs of clauses, else runs of words.
/// The first unit is held to `first_chars` by cutting at clause boundaries
/// only: nothing plays until it is synthesized, while later units are
/// synthesized as earlier ones play.
pub(super) fn units(text: &str, first_chars: usize, max_chars: usize) -> Vec<Unit> {
    let max_chars = max_chars.max(1);
    let mut units = Vec::new();
    for sentence in sentences(text) {
        let mut pieces: Vec<Clause> = Vec::new();
        for clause in sentence {
            if clause.text.chars().count() <= max_chars {
                pieces.push(clause);
            } else {
                pieces.extend(split_words(clause, max_chars));
            }
        }
        let mut first = true;
        let mut current: Vec<Clause> = Vec::new();
        let mut len = 0;
        for piece in pieces {
            let n = piece.text.chars().count();
            let limit = if units.is_empty() {
                first_chars.min(max_chars)
            } else {
                max_chars
            };
            if !current.is_empty() && len + 1 + n > limit {
                units.push(Unit {
                    clauses: std::mem::take(&mut current),
                    starts_sentence: first,
                });
                first = false;
                len = 0;
            }
            len += n + usize::from(!current.is_empty());
            current.push(piece);
        }
        if !current.is_empty() {
            units.push(Unit {
                clauses: current,
                starts_sentence: first,
            });
        }
    }
    units
}

/// Cuts an over-long clause between words (and a word longer than
/// `max_chars` anywhere), the last piece keeping the clause's terminator.
fn split_words(clause: Clause, max_chars: usize) -> Vec<Clause> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut len = 0;
    for word in clause.text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > max_chars {
            if !current.is_empty() {
                pieces.push(std::mem::take(&mut current));
                len = 0;
            }
            pieces.push(word.drain(..max_chars).collect());
        }
        if word.is_empty() {
            continue;
        }
        if !current.is_empty() && len + 1 + word.len() > max_chars {
            pieces.push(std::mem::take(&mut current));
            len = 0;
        }
        if !current.is_empty() {
            current.push(' ');
            len += 1;
        }
        len += word.len();
        current.extend(word);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    let last = pieces.len().saturating_sub(1);
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, text)| Clause {
            text,
            end: if i == last { clause.end } else { None },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(units: &[Unit]) -> Vec<Vec<(&str, Option<char>)>> {
        units
            .iter()
            .map(|u| u.clauses.iter().map(|c| (c.text.as_str(), c.end)).collect())
            .collect()
    }

    #[test]
    fn sentences_and_clauses_keep_their_punctuation() {
        let s = sentences("Hello there, how are you? I'm fine; thanks! Bye");
        assert_eq!(
            s,
            vec![
                vec![
                    Clause {
                        text: "Hello there,".into(),
                        end: Some(',')
                    },
                    Clause {
                        text: "how are you?".into(),
                        end: Some('?')
                    },
                ],
                vec![
                    Clause {
                        text: "I'm fine;".into(),
                        end: Some(';')
                    },
                    Clause {
                        text: "thanks!".into(),
                        end: Some('!')
                    },
                ],
                vec![Clause {
                    text: "Bye".into(),
                    end: None
                }],
            ]
        );
    }

    #[test]
    fn numbers_and_abbreviations_inside_words_do_not_split() {
        let s = sentences("It costs 3.5 dollars, or 1,000 cents.");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0][0].text, "It costs 3.5 dollars,");
        assert_eq!(s[0][1].text, "or 1,000 cents.");
        // "e.g. the" ends a clause at the dot, as espeak-ng does, and the
        // dot stays for espeak-ng to read the abbreviation.
        let s = sentences("Pick one, e.g. the red one.");
        assert_eq!(s[0][1].text, "e.g.");
    }

    #[test]
    fn runs_of_punctuation_and_quotes_make_one_terminator() {
        let s = sentences("Really?! \"Yes.\" Wait... what…");
        let ends: Vec<Vec<Option<char>>> = s
            .iter()
            .map(|c| c.iter().map(|c| c.end).collect())
            .collect();
        assert_eq!(
            ends,
            vec![
                vec![Some('?')],
                vec![Some('.')],
                vec![Some('.')],
                vec![Some('.')]
            ]
        );
        assert_eq!(s[1][0].text, "\"Yes.\"");
    }

    #[test]
    fn nothing_to_say_gives_no_sentence() {
        for text in ["", "   ", "...", "?!", " -- ", "\n\n", "\0\u{7}"] {
            assert!(sentences(text).is_empty(), "{text:?}");
            assert!(units(text, 100, 100).is_empty(), "{text:?}");
        }
        // Punctuation alone after a clause lends it its terminator.
        let s = sentences("Okay, ?");
        assert_eq!(
            s,
            vec![vec![Clause {
                text: "Okay,".into(),
                end: Some('?')
            }]]
        );
    }

    #[test]
    fn line_breaks_end_sentences_and_controls_are_spaces() {
        let s = sentences("first line\nsecond\tline\r\nthird");
        let t: Vec<&str> = s.iter().map(|c| c[0].text.as_str()).collect();
        assert_eq!(t, ["first line", "second line", "third"]);
    }

    #[test]
    fn short_sentences_are_one_unit_each() {
        let u = units("One, two. Three!", 100, 100);
        assert_eq!(
            texts(&u),
            vec![
                vec![("One,", Some(',')), ("two.", Some('.'))],
                vec![("Three!", Some('!'))],
            ]
        );
        assert!(u.iter().all(|u| u.starts_sentence));
    }

    #[test]
    fn long_sentences_split_at_clauses_then_words() {
        let text = "alpha beta gamma, delta epsilon zeta, eta theta iota kappa lambda mu.";
        let u = units(text, 20, 20);
        assert_eq!(
            texts(&u),
            vec![
                vec![("alpha beta gamma,", Some(','))],
                vec![("delta epsilon zeta,", Some(','))],
                vec![("eta theta iota kappa", None)],
                vec![("lambda mu.", Some('.'))],
            ]
        );
        assert_eq!(
            u.iter().map(|u| u.starts_sentence).collect::<Vec<_>>(),
            [true, false, false, false]
        );
        for unit in &u {
            let n: usize = unit
                .clauses
                .iter()
                .map(|c| c.text.chars().count() + 1)
                .sum();
            assert!(n - 1 <= 20, "{unit:?}");
        }
    }

    #[test]
    fn the_first_unit_is_cut_shorter_at_a_clause_boundary() {
        let text = "Thank you for calling Acme Dental, I can help you book, \
                    move or cancel an appointment. Anything else?";
        let u = units(text, 60, 160);
        assert_eq!(
            texts(&u),
            vec![
                vec![
                    ("Thank you for calling Acme Dental,", Some(',')),
                    ("I can help you book,", Some(','))
                ],
                vec![("move or cancel an appointment.", Some('.'))],
                vec![("Anything else?", Some('?'))],
            ]
        );
        // A first clause longer than the limit is not cut between words.
        let u = units("one two three four five six, seven.", 10, 100);
        assert_eq!(u[0].clauses[0].text, "one two three four five six,");
        assert_eq!(u.len(), 2);
    }

    #[test]
    fn a_word_longer_than_a_unit_is_cut() {
        let word = "a".repeat(45);
        let u = units(&format!("{word}!"), 20, 20);
        let lens: Vec<usize> = u
            .iter()
            .map(|u| u.clauses[0].text.chars().count())
            .collect();
        assert_eq!(lens, [20, 20, 6]);
        assert_eq!(u[2].clauses[0].end, Some('!'));
        // Multi-byte characters are cut on character boundaries.
        let u = units(&"é".repeat(30), 7, 7);
        assert_eq!(u.len(), 5);
    }
}
