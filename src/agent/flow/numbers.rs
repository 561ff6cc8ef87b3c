//! Numbers as callers say them and STT writes them: digits (`415`),
//! words (`twenty three`), digit by digit (`one two three`, `oh` for
//! zero), `double five`, and mixtures (`4 one 5`).
//!
//! The reader turns the words of a turn into *runs*: stretches of number
//! words with nothing else between them. A run is a string of digits, the
//! way it was meant, which is what phone numbers, PINs and menu keys need
//! (`oh one` is `01`, not `1`).

/// How `hundred` and `thousand` combine with what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Quantities: `one hundred five` is 105.
    Cardinal,
    /// Digit strings: `one eight hundred five five five` is `1800555`
    /// (a hundred ends its group unless `and` follows).
    Digits,
}

/// One stretch of number words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Run {
    /// Said after `plus` (`+44 …`).
    pub plus: bool,
    /// The digits, in order.
    pub digits: String,
    /// A decimal point was written inside (`3.5`).
    pub point: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    Unit(u64),
    Teen(u64),
    Tens(u64),
    Hundred,
    Scale(u64),
    Literal,
    Repeat(usize),
    And,
    A,
    Plus,
    Other,
}

impl Word {
    fn is_number(self) -> bool {
        matches!(
            self,
            Word::Unit(_)
                | Word::Teen(_)
                | Word::Tens(_)
                | Word::Hundred
                | Word::Scale(_)
                | Word::Literal
                | Word::Repeat(_)
        )
    }
}

/// Words that are numbers only next to other numbers: `oh` ("oh, hi" is
/// not zero, "four oh one" has one) and STT's homophones ("four for one").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Weak {
    /// Zero when a neighbour is a number.
    Oh,
    /// This digit when both neighbours are numbers.
    Homophone(u64),
}

const UNITS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const TEENS: [&str; 10] = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

fn classify(word: &str) -> (Word, Option<Weak>) {
    if let Some(i) = UNITS.iter().position(|u| *u == word) {
        return (Word::Unit(i as u64), None);
    }
    if let Some(i) = TEENS.iter().position(|u| *u == word) {
        return (Word::Teen(10 + i as u64), None);
    }
    if let Some(i) = TENS.iter().position(|u| *u == word) {
        return (Word::Tens(20 + 10 * i as u64), None);
    }
    let w = match word {
        "nought" | "naught" => Word::Unit(0),
        "fourty" => Word::Tens(40),
        "hundred" => Word::Hundred,
        "thousand" => Word::Scale(1_000),
        "million" => Word::Scale(1_000_000),
        "billion" => Word::Scale(1_000_000_000),
        "double" => Word::Repeat(2),
        "triple" => Word::Repeat(3),
        "and" => Word::And,
        "a" | "an" => Word::A,
        "plus" => Word::Plus,
        "oh" | "o" => return (Word::Other, Some(Weak::Oh)),
        "to" | "too" => return (Word::Other, Some(Weak::Homophone(2))),
        "for" | "fore" => return (Word::Other, Some(Weak::Homophone(4))),
        "won" => return (Word::Other, Some(Weak::Homophone(1))),
        "ate" => return (Word::Other, Some(Weak::Homophone(8))),
        _ if is_literal(word) => Word::Literal,
        _ => Word::Other,
    };
    (w, None)
}

/// Digits as written, with decimal points inside (`0100`, `3.5`).
fn is_literal(word: &str) -> bool {
    !word.is_empty()
        && word.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && word.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && word.bytes().last().is_some_and(|b| b.is_ascii_digit())
}

/// Decides the weak words from their neighbours until nothing changes:
/// "oh oh seven" needs two rounds.
fn resolve(words: &mut [Word], weak: &[Option<Weak>]) {
    loop {
        let mut changed = false;
        for i in 0..words.len() {
            let Some(kind) = weak[i] else { continue };
            if words[i] != Word::Other {
                continue;
            }
            let before = i
                .checked_sub(1)
                .and_then(|j| words.get(j))
                .is_some_and(|w| w.is_number());
            let after = words.get(i + 1).is_some_and(|w| w.is_number());
            let value = match kind {
                Weak::Oh if before || after => 0,
                Weak::Homophone(d) if before && after => d,
                _ => continue,
            };
            words[i] = Word::Unit(value);
            changed = true;
        }
        if !changed {
            return;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    Nothing,
    Unit,
    Teen,
    Tens,
    Hundred,
    Scale,
    Literal,
}

/// One number inside a run: `twenty one` or `415`.
#[derive(Debug)]
struct Group {
    total: u64,
    current: u64,
    top_scale: u64,
    last: Last,
    literal: String,
    overflow: bool,
}

impl Group {
    fn new() -> Self {
        Group {
            total: 0,
            current: 0,
            top_scale: 0,
            last: Last::Nothing,
            literal: String::new(),
            overflow: false,
        }
    }

    /// Takes `w` into this group, or returns false when `w` starts the
    /// next one ("one two": the two is a new digit).
    fn feed(&mut self, w: Word, token: &str, mode: Mode) -> bool {
        let open = matches!(self.last, Last::Nothing | Last::Hundred | Last::Scale);
        match w {
            Word::Unit(u) => {
                let after_tens = self.last == Last::Tens && self.current.is_multiple_of(10);
                if !(open || after_tens) || (mode == Mode::Digits && self.closed_by_scale()) {
                    return false;
                }
                self.add(u);
                self.last = Last::Unit;
            }
            Word::Teen(t) | Word::Tens(t) => {
                if !open || (mode == Mode::Digits && self.closed_by_scale()) {
                    return false;
                }
                self.add(t);
                self.last = if matches!(w, Word::Teen(_)) {
                    Last::Teen
                } else {
                    Last::Tens
                };
            }
            Word::Hundred => match self.last {
                Last::Nothing => {
                    self.current = 100;
                    self.last = Last::Hundred;
                }
                Last::Unit | Last::Teen | Last::Tens if self.current < 100 => {
                    self.current *= 100;
                    self.last = Last::Hundred;
                }
                Last::Literal => match self.literal.parse::<u64>() {
                    Ok(v) if v < 100 && !self.literal.contains('.') => {
                        self.literal.clear();
                        self.current = v * 100;
                        self.last = Last::Hundred;
                    }
                    _ => return false,
                },
                _ => return false,
            },
            Word::Scale(s) => {
                if self.top_scale != 0 && s >= self.top_scale {
                    return false;
                }
                match self.last {
                    Last::Nothing => self.current = 1,
                    Last::Unit | Last::Teen | Last::Tens | Last::Hundred => {}
                    Last::Literal => match self.literal.parse::<u64>() {
                        Ok(v) if !self.literal.contains('.') => {
                            self.literal.clear();
                            self.current = v;
                        }
                        _ => return false,
                    },
                    Last::Scale => return false,
                }
                match self
                    .current
                    .checked_mul(s)
                    .and_then(|v| v.checked_add(self.total))
                {
                    Some(t) => self.total = t,
                    None => self.overflow = true,
                }
                self.current = 0;
                self.top_scale = s;
                self.last = Last::Scale;
            }
            Word::Literal => {
                if self.last != Last::Nothing {
                    return false;
                }
                self.literal = token.to_owned();
                self.last = Last::Literal;
            }
            _ => return false,
        }
        true
    }

    /// In digit strings a group that reached a hundred or a thousand is
    /// complete unless `and` reopened it.
    fn closed_by_scale(&self) -> bool {
        matches!(self.last, Last::Hundred | Last::Scale)
    }

    fn add(&mut self, v: u64) {
        match self.current.checked_add(v) {
            Some(c) => self.current = c,
            None => self.overflow = true,
        }
    }

    fn is_empty(&self) -> bool {
        self.last == Last::Nothing
    }

    fn render(&self) -> Option<String> {
        if self.overflow {
            return None;
        }
        if self.last == Last::Literal {
            return Some(self.literal.clone());
        }
        self.total.checked_add(self.current).map(|v| v.to_string())
    }
}

/// A run being read.
struct RunBuilder {
    plus: bool,
    digits: String,
    point: bool,
    valid: bool,
    group: Group,
}

impl RunBuilder {
    fn new(plus: bool) -> Self {
        RunBuilder {
            plus,
            digits: String::new(),
            point: false,
            valid: true,
            group: Group::new(),
        }
    }

    fn close_group(&mut self) {
        if self.group.is_empty() {
            return;
        }
        match self.group.render() {
            Some(s) => {
                self.point |= s.contains('.');
                self.digits.extend(s.chars().filter(char::is_ascii_digit));
            }
            None => self.valid = false,
        }
        self.group = Group::new();
    }

    fn feed(&mut self, w: Word, token: &str, mode: Mode) {
        if !self.group.feed(w, token, mode) {
            self.close_group();
            // A fresh group takes any number word.
            self.group.feed(w, token, mode);
        }
    }

    fn finish(mut self, out: &mut Vec<Run>) {
        self.close_group();
        if self.valid && !self.digits.is_empty() {
            out.push(Run {
                plus: self.plus,
                digits: self.digits,
                point: self.point,
            });
        }
    }
}

/// The number runs in `tokens` (from [`super::normalize::tokens`]).
pub(super) fn runs(tokens: &[String], mode: Mode) -> Vec<Run> {
    let (mut words, weak): (Vec<Word>, Vec<Option<Weak>>) =
        tokens.iter().map(|t| classify(t)).unzip();
    resolve(&mut words, &weak);
    let mut out = Vec::new();
    let mut run = RunBuilder::new(false);
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let next = words.get(i + 1).copied();
        match w {
            Word::Plus => {
                std::mem::replace(&mut run, RunBuilder::new(true)).finish(&mut out);
            }
            Word::And => {
                let joins = matches!(run.group.last, Last::Hundred | Last::Scale)
                    && matches!(next, Some(Word::Unit(_) | Word::Teen(_) | Word::Tens(_)));
                if joins {
                    // "one hundred and five": the next word adds on.
                    if let Some(n) = next {
                        i += 1;
                        run.group.feed_after_and(n);
                    }
                } else {
                    std::mem::replace(&mut run, RunBuilder::new(false)).finish(&mut out);
                }
            }
            Word::A => {
                if matches!(next, Some(Word::Hundred | Word::Scale(_))) {
                    run.feed(Word::Unit(1), "1", mode);
                } else {
                    std::mem::replace(&mut run, RunBuilder::new(false)).finish(&mut out);
                }
            }
            Word::Repeat(n) => match next {
                Some(Word::Unit(u)) => {
                    run.close_group();
                    run.digits
                        .extend(std::iter::repeat_n(char::from(b'0' + u as u8), n));
                    i += 1;
                }
                _ => {
                    std::mem::replace(&mut run, RunBuilder::new(false)).finish(&mut out);
                }
            },
            Word::Other => {
                std::mem::replace(&mut run, RunBuilder::new(false)).finish(&mut out);
            }
            _ => run.feed(w, &tokens[i], mode),
        }
        i += 1;
    }
    run.finish(&mut out);
    out
}

impl Group {
    /// After "hundred and" the next word adds to the group in either mode.
    fn feed_after_and(&mut self, w: Word) {
        match w {
            Word::Unit(v) => {
                self.add(v);
                self.last = Last::Unit;
            }
            Word::Teen(v) => {
                self.add(v);
                self.last = Last::Teen;
            }
            Word::Tens(v) => {
                self.add(v);
                self.last = Last::Tens;
            }
            _ => {}
        }
    }
}

/// All the digits said in `tokens`, runs joined (`four one five, then
/// five five five` is `415555`), and whether they started with `plus`.
pub(super) fn digit_string(tokens: &[String]) -> (bool, String) {
    let runs = runs(tokens, Mode::Digits);
    let plus = runs.first().is_some_and(|r| r.plus);
    (plus, runs.into_iter().map(|r| r.digits).collect())
}

/// The one whole number said in `tokens`: `None` when there is none, more
/// than one ("two, no, three"), a decimal, or one too large.
pub(super) fn cardinal(tokens: &[String]) -> Option<i64> {
    let runs = runs(tokens, Mode::Cardinal);
    let [run] = runs.as_slice() else {
        return None;
    };
    if run.point || run.plus {
        return None;
    }
    let digits = run.digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    if digits.len() > 18 {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::super::normalize::tokens;
    use super::*;

    fn digits(text: &str) -> String {
        digit_string(&tokens(text)).1
    }

    fn number(text: &str) -> Option<i64> {
        cardinal(&tokens(text))
    }

    #[test]
    fn digit_by_digit_with_oh_for_zero() {
        assert_eq!(digits("one two three"), "123");
        assert_eq!(
            digits("Four one five, five five five, oh one oh oh."),
            "4155550100"
        );
        assert_eq!(digits("zero zero seven"), "007");
        assert_eq!(digits("oh oh seven"), "007");
        assert_eq!(digits("double five triple nine"), "55999");
    }

    #[test]
    fn digits_written_as_digits_and_mixed() {
        assert_eq!(digits("415-555-0100"), "4155550100");
        assert_eq!(digits("415.555.0100"), "4155550100");
        assert_eq!(digits("4 one 5"), "415");
        assert_eq!(digits("my number is 415 555 0100 thanks"), "4155550100");
    }

    #[test]
    fn grouped_digit_strings() {
        assert_eq!(digits("four fifteen"), "415");
        assert_eq!(digits("nineteen eighty four"), "1984");
        assert_eq!(digits("one eight hundred five five five"), "1800555");
        assert_eq!(digits("fifty one hundred"), "5100");
        assert_eq!(digits("twenty twenty"), "2020");
    }

    #[test]
    fn oh_and_homophones_only_count_next_to_numbers() {
        assert_eq!(digits("Oh, hi there"), "");
        assert_eq!(digits("oh"), "");
        assert_eq!(digits("I want to talk"), "");
        assert_eq!(digits("four for one"), "441");
        assert_eq!(digits("send it to 415"), "415");
    }

    #[test]
    fn plus_marks_an_international_number() {
        assert_eq!(
            digit_string(&tokens("+44 20 7946 0958")),
            (true, "442079460958".into())
        );
        assert_eq!(digit_string(&tokens("plus four four")), (true, "44".into()));
        assert_eq!(digit_string(&tokens("four four")), (false, "44".into()));
    }

    #[test]
    fn cardinals_in_words() {
        assert_eq!(number("twenty three"), Some(23));
        assert_eq!(number("one hundred and five"), Some(105));
        assert_eq!(number("one hundred five"), Some(105));
        assert_eq!(number("a hundred"), Some(100));
        assert_eq!(number("two thousand five hundred"), Some(2500));
        assert_eq!(
            number("three million two hundred thousand"),
            Some(3_200_000)
        );
        assert_eq!(number("Um, about forty two I think."), Some(42));
        assert_eq!(number("zero"), Some(0));
        assert_eq!(number("twelve"), Some(12));
    }

    #[test]
    fn cardinals_in_digits_and_digit_by_digit() {
        assert_eq!(number("1,500"), Some(1500));
        assert_eq!(number("42"), Some(42));
        assert_eq!(number("one two three"), Some(123));
        assert_eq!(number("five thousand"), Some(5000));
        assert_eq!(number("5 thousand"), Some(5000));
    }

    #[test]
    fn not_one_whole_number() {
        assert_eq!(number("nothing"), None);
        assert_eq!(number("two, no wait, three"), None);
        assert_eq!(number("3.5"), None);
        assert_eq!(number("99999999999999999999999"), None);
        assert_eq!(number("nine hundred billion billion billion billion"), None);
    }
}
