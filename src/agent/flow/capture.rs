//! How a `capture` node reads the caller's answer: keys first (an entry
//! ends at `#`, at its longest, or at a turn without new keys), else
//! speech, parsed for what the node expects.

use super::def::YesNo;
use super::nodes::Capture;
use super::normalize::{clean_text, tokens, words};
use super::numbers::{cardinal, digit_string};
use super::slots::{SlotValue, country_code_of, e164, means_own_number, name, phone_number};
use super::turn::Input;
use super::yesno::yes_no;
use crate::agent::provider::CallInfo;

/// Most digits of a number keyed for a `number` capture.
const NUMBER_DIGITS: usize = 18;
/// Most digits of a phone number (E.164).
const PHONE_DIGITS: usize = 15;

/// How a listening node takes the turn.
pub(super) enum Verdict {
    /// Keys so far begin a longer entry: say nothing, keep listening.
    Wait,
    /// Go on to this node.
    Go(usize),
    /// Fill the node's slot and go on.
    Fill(SlotValue, usize),
    /// Nothing from the caller: ask again or give up.
    NoInput,
    /// An answer that does not fit: ask again or give up.
    NoMatch,
}

/// Keys for an entry of up to `max` digits: the digits once the entry
/// is complete (`#`, `max` keys, or a turn without new keys, which is
/// the pipeline's inter-digit timeout), else `None` to wait.
fn entry(keyed: &str, max: usize, input: &Input) -> Option<String> {
    let ended = keyed.contains('#');
    let keys: String = keyed.split('#').next().unwrap_or("").to_owned();
    let complete = ended || keys.len() >= max || input.dtmf.is_empty();
    complete.then(|| keys.chars().take(max).collect())
}

/// How a `capture` takes the turn, given the keys pressed at it so far.
pub(super) fn capture(
    keyed: &str,
    call: &CallInfo,
    expect: &Capture,
    next: usize,
    input: &Input,
) -> Verdict {
    let speech = input.speech();
    let has_keys = !keyed.is_empty();
    if !has_keys && input.speech.is_empty() {
        return Verdict::NoInput;
    }
    let value = match expect {
        Capture::Digits { min, max } => {
            let digits = if has_keys {
                match entry(keyed, *max, input) {
                    Some(d) => d,
                    None => return Verdict::Wait,
                }
            } else {
                digit_string(&tokens(&speech)).1
            };
            let fits =
                (*min..=*max).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
            fits.then_some(SlotValue::Digits(digits))
        }
        Capture::Number { min, max } => {
            let n = if has_keys {
                match entry(keyed, NUMBER_DIGITS, input) {
                    Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => {
                        d.parse::<i64>().ok()
                    }
                    Some(_) => None,
                    None => return Verdict::Wait,
                }
            } else {
                cardinal(&tokens(&speech))
            };
            n.filter(|n| min.is_none_or(|m| *n >= m) && max.is_none_or(|m| *n <= m))
                .map(SlotValue::Number)
        }
        Capture::Phone { country_code } => {
            let cc = country_code.clone().or_else(|| country_code_of(&call.from));
            let (plus, digits) = if has_keys {
                match entry(keyed, PHONE_DIGITS, input) {
                    Some(d) => (false, d),
                    None => return Verdict::Wait,
                }
            } else {
                digit_string(&tokens(&speech))
            };
            if !has_keys && digits.is_empty() && means_own_number(&words(&speech)) {
                e164(&call.from)
            } else {
                phone_number(plus, &digits, cc.as_deref())
            }
            .map(SlotValue::Phone)
        }
        Capture::YesNo => {
            if has_keys {
                match keyed.chars().next() {
                    Some('1') => Some(SlotValue::Bool(true)),
                    Some('2') => Some(SlotValue::Bool(false)),
                    _ => None,
                }
            } else {
                yes_no(&speech).map(|a| SlotValue::Bool(a == YesNo::Yes))
            }
        }
        Capture::Name => name(&speech).map(SlotValue::Text),
        Capture::Text { max } => {
            let text = clean_text(&speech, *max);
            (!text.is_empty()).then_some(SlotValue::Text(text))
        }
    };
    match value {
        Some(v) => Verdict::Fill(v, next),
        None => Verdict::NoMatch,
    }
}
