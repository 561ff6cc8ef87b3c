//! Splits the brain's streamed text into sentences for TTS, so the first
//! sentence is spoken while the rest is still being written.

/// Abbreviations whose full stop does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "vs", "etc", "e.g", "i.e", "no", "approx",
    "dept", "apt", "inc", "ltd", "co", "mt", "ave", "rd",
];

/// A run of text longer than this is cut at a clause boundary (or a space)
/// even without a full stop, so a run-on reply does not delay speech.
const MAX_SEGMENT: usize = 240;

/// See the module documentation.
#[derive(Debug, Default, Clone)]
pub struct SentenceSplitter {
    buf: String,
}

impl SentenceSplitter {
    /// An empty splitter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds text; returns the sentences it completed, trimmed, in order.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        while let Some(end) = self.boundary() {
            let rest = self.buf.split_off(end);
            let sentence = std::mem::replace(&mut self.buf, rest);
            let sentence = sentence.trim();
            if has_words(sentence) {
                out.push(sentence.to_owned());
            }
        }
        out
    }

    /// The text left at the end of the reply.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        let rest = rest.trim();
        has_words(rest).then(|| rest.to_owned())
    }

    /// Byte offset just past the first complete sentence in the buffer.
    fn boundary(&self) -> Option<usize> {
        let b = &self.buf;
        let chars: Vec<(usize, char)> = b.char_indices().collect();
        for (k, &(i, c)) in chars.iter().enumerate() {
            if c == '\n' {
                return Some(i + 1);
            }
            if !matches!(c, '.' | '!' | '?' | ';' | '…') {
                continue;
            }
            // Closing quotes or brackets belong to the sentence.
            let mut j = k + 1;
            while j < chars.len()
                && matches!(chars[j].1, '"' | '\'' | ')' | '”' | '’' | '.' | '!' | '?')
            {
                j += 1;
            }
            // Only a following space proves the sentence ended: "3.5" and
            // a stop at the very end of the buffer may still continue.
            let &(next_i, next) = chars.get(j)?;
            if !next.is_whitespace() {
                continue;
            }
            if c == '.' && self.is_abbreviation_or_initial(i) {
                continue;
            }
            return Some(next_i);
        }
        if b.len() > MAX_SEGMENT {
            let cut = b[..MAX_SEGMENT]
                .rfind([',', ':', '—'])
                .map(|i| i + 1)
                .or_else(|| b[..MAX_SEGMENT].rfind(' '))
                .unwrap_or(MAX_SEGMENT);
            let mut cut = cut.max(1);
            while !b.is_char_boundary(cut) {
                cut += 1;
            }
            return Some(cut);
        }
        None
    }

    fn is_abbreviation_or_initial(&self, dot: usize) -> bool {
        let word: String = self.buf[..dot]
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '.' | '\'' | '’'))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<String>()
            .to_lowercase();
        if word.is_empty() {
            return false;
        }
        // A single capital letter ("J. Smith") is an initial.
        let single = word.chars().count() == 1 && word.chars().all(|c| c.is_alphabetic());
        single || ABBREVIATIONS.contains(&word.as_str())
    }
}

fn has_words(s: &str) -> bool {
    s.chars().any(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&str]) -> Vec<String> {
        let mut s = SentenceSplitter::new();
        let mut out: Vec<String> = chunks.iter().flat_map(|c| s.push(c)).collect();
        out.extend(s.finish());
        out
    }

    #[test]
    fn sentences_come_out_as_soon_as_the_next_one_starts() {
        let mut s = SentenceSplitter::new();
        assert!(s.push("Hello there").is_empty());
        assert_eq!(s.push(". How"), ["Hello there."]);
        assert_eq!(s.push(" are you?"), Vec::<String>::new());
        assert_eq!(s.push(" Fine"), vec!["How are you?"]);
        assert_eq!(s.finish().as_deref(), Some("Fine"));
    }

    #[test]
    fn tokens_split_anywhere_give_the_same_sentences() {
        let text = "Hi! I'm Dr. Smith, from St. Mary's. It costs 3.5 dollars; okay? \"Yes.\" Bye";
        let whole = split(&[text]);
        assert_eq!(
            whole,
            [
                "Hi!",
                "I'm Dr. Smith, from St. Mary's.",
                "It costs 3.5 dollars;",
                "okay?",
                "\"Yes.\"",
                "Bye"
            ]
        );
        for size in 1..6 {
            let chunks: Vec<String> = text
                .chars()
                .collect::<Vec<_>>()
                .chunks(size)
                .map(|c| c.iter().collect())
                .collect();
            let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
            assert_eq!(split(&refs), whole, "chunk size {size}");
        }
    }

    #[test]
    fn initials_and_newlines() {
        assert_eq!(
            split(&["Ask J. Smith.\nThen call."]),
            ["Ask J. Smith.", "Then call."]
        );
    }

    #[test]
    fn a_run_on_reply_is_cut_at_a_clause() {
        let long = "word, ".repeat(60);
        let out = split(&[&long]);
        assert!(out.len() > 1);
        assert!(out.iter().all(|s| s.len() <= MAX_SEGMENT));
        assert_eq!(out.join(" ").matches("word").count(), 60);
    }

    #[test]
    fn punctuation_only_and_empty_text_give_nothing() {
        assert!(split(&["", "...", " ! "]).is_empty());
        // Non-ASCII never splits inside a character.
        let s = "é".repeat(300);
        assert_eq!(split(&[&s]).concat(), s);
    }
}
