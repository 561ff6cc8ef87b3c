//! Yes or no, the many ways callers say it.
//!
//! The words of a turn are scanned for phrases (longest first) that mean
//! yes, mean no, or mean neither ("I'm not sure" is not a no). An answer
//! with only yeses is yes, only noes is no; a mixture ("yes… no") or
//! neither is no answer, and the flow asks again rather than guess.

use super::def::YesNo;
use super::normalize::{is_filler, tokens};

const YES: &[&[&str]] = &[
    &["that", "is", "correct"],
    &["that", "is", "right"],
    &["thats", "correct"],
    &["thats", "right"],
    &["sounds", "good"],
    &["no", "problem"],
    &["of", "course"],
    &["go", "ahead"],
    &["please", "do"],
    &["why", "not"],
    &["you", "bet"],
    &["for", "sure"],
    &["all", "right"],
    &["uh", "huh"],
    &["mm", "hmm"],
    &["mm", "hm"],
    &["i", "do"],
    &["i", "did"],
    &["i", "am"],
    &["it", "is"],
    &["yes"],
    &["yeah"],
    &["yea"],
    &["yep"],
    &["yup"],
    &["ya"],
    &["yah"],
    &["sure"],
    &["ok"],
    &["okay"],
    &["alright"],
    &["correct"],
    &["right"],
    &["affirmative"],
    &["absolutely"],
    &["definitely"],
    &["certainly"],
    &["indeed"],
    &["exactly"],
    &["true"],
    &["mhm"],
    &["mmhmm"],
    &["uhhuh"],
];

const NO: &[&[&str]] = &[
    &["i", "dont", "think", "so"],
    &["dont", "think", "so"],
    &["no", "thank", "you"],
    &["no", "thanks"],
    &["not", "really"],
    &["not", "right"],
    &["not", "correct"],
    &["thats", "wrong"],
    &["not", "at", "all"],
    &["not", "now"],
    &["rather", "not"],
    &["i", "dont"],
    &["i", "do", "not"],
    &["i", "didnt"],
    &["i", "did", "not"],
    &["no"],
    &["nope"],
    &["nah"],
    &["nay"],
    &["negative"],
    &["not"],
    &["never"],
    &["wrong"],
    &["incorrect"],
    &["false"],
];

/// Phrases that look like a yes or a no but are neither.
const NEITHER: &[&[&str]] = &[
    &["not", "sure"],
    &["im", "not", "sure"],
    &["dont", "know"],
    &["i", "dont", "know"],
    &["no", "idea"],
    &["not", "certain"],
    &["maybe"],
    &["perhaps"],
];

/// The yes or no in `text`, if it says exactly one of them.
pub(super) fn yes_no(text: &str) -> Option<YesNo> {
    let words = tokens(text);
    let mut yes = false;
    let mut no = false;
    let mut neither = false;
    let mut i = 0;
    while i < words.len() {
        let rest = &words[i..];
        let (len, meaning) = longest(rest);
        match meaning {
            Some(Some(YesNo::Yes)) => yes = true,
            Some(Some(YesNo::No)) => no = true,
            Some(None) => neither = true,
            None => {}
        }
        i += len.max(1);
    }
    // "Hmm, yes" is a yes; a bare "hmm" is nothing.
    match (yes, no, neither) {
        (true, false, false) => Some(YesNo::Yes),
        (false, true, false) => Some(YesNo::No),
        _ => None,
    }
}

/// The longest phrase at the start of `words` and what it means
/// (`Some(None)` for a phrase that means neither).
fn longest(words: &[String]) -> (usize, Option<Option<YesNo>>) {
    let mut best = (0, None);
    let lists: [(&[&[&str]], Option<YesNo>); 3] = [
        (NEITHER, None),
        (YES, Some(YesNo::Yes)),
        (NO, Some(YesNo::No)),
    ];
    for (list, meaning) in lists {
        for phrase in list {
            let fits = phrase.len() <= words.len() && phrase.iter().zip(words).all(|(p, w)| p == w);
            if fits && phrase.len() > best.0 {
                best = (phrase.len(), Some(meaning));
            }
        }
    }
    if best.0 == 0 && words.first().is_some_and(|w| is_filler(w)) {
        return (1, None);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ways_of_saying_yes() {
        for t in [
            "Yes.",
            "yeah",
            "Yep!",
            "Sure.",
            "Yes, please.",
            "Uh-huh.",
            "Mm-hmm.",
            "That's right.",
            "That's correct.",
            "Okay",
            "Um, yes.",
            "Yeah, sure, go ahead.",
            "Of course!",
            "Yes, no problem.",
            "Absolutely",
            "I do.",
        ] {
            assert_eq!(yes_no(t), Some(YesNo::Yes), "{t}");
        }
    }

    #[test]
    fn the_ways_of_saying_no() {
        for t in [
            "No.",
            "Nope",
            "no thanks",
            "No, thank you.",
            "Nah.",
            "Not really.",
            "I don't think so.",
            "That's wrong.",
            "Uh, no.",
            "No, no, no.",
            "That's not right",
        ] {
            assert_eq!(yes_no(t), Some(YesNo::No), "{t}");
        }
    }

    #[test]
    fn neither_or_both_is_no_answer() {
        for t in [
            "",
            "Um.",
            "I'm not sure.",
            "I don't know",
            "Maybe",
            "Yes, no",
            "What?",
            "Sales please",
        ] {
            assert_eq!(yes_no(t), None, "{t}");
        }
    }
}
