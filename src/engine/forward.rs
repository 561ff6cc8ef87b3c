//! `forward` numbers: an inbound call makes Hotline call the number's
//! `forward_to` and bridge the two calls, as a B2BUA.
//!
//! * **Answer timing.** The inbound call is not answered while the target
//!   rings. When the target rings (180/183) the caller gets 180 Ringing,
//!   or, with the number's `early_media`, 183 with the SDP answer and a
//!   ringback tone (the plan of `sip.default_country_code`) as early
//!   media. Only the target's 200 OK makes Hotline answer the caller: an
//!   unanswered forward is never billed as answered.
//! * **Failures.** When the target does not answer, the caller gets a
//!   final response that means the same ([`refusal_status`]): 486 (or
//!   600) for busy, 480 for no answer within `sip.ring_timeout_secs`, the
//!   target's 404/410/484/603/604, 503 when the call cannot even be
//!   placed, 502 for anything else.
//! * **The caller gives up** (CANCEL) or the call is hung up through the
//!   API while the target rings: the target's call is canceled too.
//! * **Bridge.** Once both are answered [`super::bridge::join`] moves audio
//!   both ways, relays DTMF (RFC 4733, SIP INFO or in-band in; RFC 4733
//!   out) and ends each call with the other.
//! * **Records.** The target's call is a call of its own (outbound, its
//!   own id and SIP dialog), announced on the inbound call as
//!   [`CallEvent::Forwarding`](crate::call::CallEvent::Forwarding); the
//!   two records link through `bridged_with`, and the inbound call's
//!   hang-up reason starts with "forwarded to" (or "forward to … failed").
//! * **Caller ID** ([`caller_id`]): a `sip:` target sees the original
//!   caller; through a trunk the target sees the forwarded number itself,
//!   which the carrier accepts as the customer's (a caller's number
//!   usually is not).
//! * **Loops** ([`loops`], [`hops_left`]): a number never forwards to
//!   itself (refused when configured), a chain of this server's own
//!   `forward` numbers that comes back to the start is refused with 482
//!   Loop Detected, and the outbound INVITE carries the inbound one's
//!   Max-Forwards less one (483 Too Many Hops at zero), so that a loop
//!   through other systems ends too. Every leg of a loop also counts
//!   against `sip.max_calls`.

use crate::call::Outcome;

use super::bridge::Unanswered;

/// Longest chain of this server's own `forward` numbers followed when
/// looking for a loop; a longer one is treated as a loop.
pub const MAX_CHAIN: usize = 16;

/// The final response the caller gets when the target did not answer.
pub fn refusal_status(u: Unanswered) -> u16 {
    match (u.outcome, u.sip_code) {
        (Outcome::Busy, c @ (486 | 600)) => c,
        (Outcome::Busy, _) => 486,
        // Our own CANCEL at the ring timeout ends the target's INVITE with
        // 487; to the caller that is no answer, not a cancel of its own.
        (Outcome::NoAnswer | Outcome::Canceled, _) => 480,
        // The target's own definite answers mean the same to the caller.
        (_, c @ (404 | 410 | 484 | 603 | 604)) => c,
        // Hotline could not place the call: no trunk, no port, full.
        (_, 503) => 503,
        // Anything else (401 from the trunk, 488, 5xx…) is the target
        // side's trouble; passing it on would mislead the caller (a 401
        // would challenge it).
        _ => 502,
    }
}

/// The Max-Forwards a forwarded INVITE carries, from the inbound one's
/// (70 when absent or unreadable); `None` when no hop is left (483).
pub fn hops_left(received: Option<&str>) -> Option<u8> {
    let received = received
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(70)
        .min(70);
    match received.checked_sub(1) {
        Some(0) | None => None,
        Some(n) => u8::try_from(n).ok(),
    }
}

/// Whether forwarding `number` to `target` comes back to `number` through
/// this server's own `forward` numbers; `next` gives a number's forward
/// target if it is one.
pub fn loops(number: &str, target: &str, next: impl Fn(&str) -> Option<String>) -> bool {
    let same = |a: &str, b: &str| a.trim_start_matches('+') == b.trim_start_matches('+');
    let mut seen = vec![number.to_owned()];
    let mut at = target.to_owned();
    for _ in 0..MAX_CHAIN {
        if seen.iter().any(|s| same(s, &at)) {
            return true;
        }
        match next(&at) {
            Some(n) => seen.push(std::mem::replace(&mut at, n)),
            None => return false,
        }
    }
    true
}

/// The caller ID of the call to the target: the original caller for a
/// `sip:` target, else the forwarded number when it is E.164, else the
/// trunk's (`None`).
pub fn caller_id(target: &str, caller: &str, number: &str) -> Option<String> {
    let direct = target.starts_with("sip:") || target.starts_with("sips:");
    let usable = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-_.!~*'()".contains(&b))
    };
    if direct && usable(caller) {
        Some(caller.to_owned())
    } else if number.starts_with('+') && usable(number) {
        Some(number.to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(outcome: Outcome, sip_code: u16) -> Unanswered {
        Unanswered { sip_code, outcome }
    }

    #[test]
    fn the_caller_hears_what_the_target_said() {
        assert_eq!(refusal_status(u(Outcome::Busy, 486)), 486);
        assert_eq!(refusal_status(u(Outcome::Busy, 600)), 600);
        // The ring timeout: our CANCEL got 487.
        assert_eq!(refusal_status(u(Outcome::NoAnswer, 487)), 480);
        assert_eq!(refusal_status(u(Outcome::NoAnswer, 408)), 480);
        assert_eq!(refusal_status(u(Outcome::Failed, 603)), 603);
        assert_eq!(refusal_status(u(Outcome::Failed, 404)), 404);
        assert_eq!(refusal_status(u(Outcome::Failed, 503)), 503);
        for code in [401, 407, 488, 500, 502, 403] {
            assert_eq!(refusal_status(u(Outcome::Failed, code)), 502, "{code}");
        }
    }

    #[test]
    fn max_forwards_counts_down_to_a_refusal() {
        assert_eq!(hops_left(None), Some(69));
        assert_eq!(hops_left(Some("70")), Some(69));
        assert_eq!(hops_left(Some(" 5 ")), Some(4));
        assert_eq!(hops_left(Some("2")), Some(1));
        assert_eq!(hops_left(Some("1")), None);
        assert_eq!(hops_left(Some("0")), None);
        // A peer cannot raise the budget.
        assert_eq!(hops_left(Some("4000")), Some(69));
        assert_eq!(hops_left(Some("junk")), Some(69));
    }

    #[test]
    fn loops_through_our_own_numbers_are_found() {
        let table = |n: &str| match n {
            "+1001" => Some("+1002".to_owned()),
            "+1002" => Some("+1003".to_owned()),
            "+1003" => Some("+1001".to_owned()),
            "+2001" => Some("+2002".to_owned()),
            _ => None,
        };
        assert!(loops("+1001", "+1001", table));
        assert!(loops("+1001", "1001", table));
        assert!(loops("+1001", "+1002", table));
        // A chain that leaves the server ends there.
        assert!(!loops("+2001", "+2002", table));
        assert!(!loops("+3001", "+14155550123", table));
        assert!(!loops("+3001", "sip:bob@127.0.0.1", table));
        // A cycle that does not include the start is still a loop.
        assert!(loops("+9", "+1002", table));
        // An endless chain is treated as a loop.
        let endless = |n: &str| Some(format!("{n}1"));
        assert!(loops("+5", "+6", endless));
    }

    #[test]
    fn the_target_sees_the_caller_or_the_forwarded_number() {
        assert_eq!(
            caller_id("sip:desk@10.0.0.5", "+14155550199", "+14155550100").as_deref(),
            Some("+14155550199")
        );
        assert_eq!(
            caller_id("+14155550123", "+14155550199", "+14155550100").as_deref(),
            Some("+14155550100")
        );
        // A config number that is a plain SIP user: the trunk's caller ID.
        assert_eq!(caller_id("+14155550123", "+14155550199", "sales"), None);
        // A caller that cannot go into a From user part.
        assert_eq!(
            caller_id("sip:desk@10.0.0.5", "a b<c>", "+14155550100").as_deref(),
            Some("+14155550100")
        );
    }
}
