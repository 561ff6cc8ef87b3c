//! E.164 normalisation of dialled numbers.

/// Normalises a Request-URI user part (or a `tel:` URI) to bare E.164
/// digits (country code first, no `+`), or `None` if it is not a number.
///
/// Rules, applied in order:
/// 1. A `tel:` scheme is stripped; anything from the first `;` on (URI or
///    user parameters such as `;phone-context=`, `;npdi`) is cut, except
///    that a `phone-context` of the form `+<digits>` is remembered as the
///    country code for a local number (RFC 3966 §5.1.5).
/// 2. Visual separators `-` `.` `(` `)` and spaces are removed (RFC 3966
///    §5.1.1 visual-separator).
/// 3. International forms: a leading `+`, the `00` international prefix
///    (ITU-T E.164 recommendation, most of the world) and the `011` NANP
///    prefix are stripped. `011` only counts when the default country code
///    is `1` or unknown, since elsewhere `011…` is a national number
///    (e.g. UK `0113…`).
/// 4. A national number (no international form) needs a country code from
///    `phone-context` or `default_country_code`; one leading `0` trunk
///    prefix is dropped before prepending it. Without a country code,
///    `None`.
/// 5. The result must be 7 to 15 ASCII digits (E.164 allows at most 15);
///    any other character (letters, `*`, `#`, `%`-escapes) gives `None`.
pub fn normalize_e164(user: &str, default_country_code: Option<&str>) -> Option<String> {
    let s = user.trim();
    let s = match s.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("tel:") => &s[4..],
        _ => s,
    };
    let (number, params) = match s.find(';') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let context_cc = super::scan::params_lookup(params, "phone-context")
        .flatten()
        .and_then(|c| c.strip_prefix('+').map(str::to_string))
        .map(|c| {
            c.chars()
                .filter(|c| !"-.() ".contains(*c))
                .collect::<String>()
        })
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()));
    let compact: String = number.chars().filter(|c| !"-.() ".contains(*c)).collect();

    let cc = context_cc.as_deref().or(default_country_code);
    let digits = if let Some(rest) = compact.strip_prefix('+') {
        rest.to_string()
    } else if let Some(rest) = compact.strip_prefix("00") {
        rest.to_string()
    } else if let (Some(rest), true) = (compact.strip_prefix("011"), cc.is_none_or(|c| c == "1")) {
        rest.to_string()
    } else {
        let cc = cc?;
        if !cc.bytes().all(|b| b.is_ascii_digit()) || cc.is_empty() {
            return None;
        }
        let national = compact.strip_prefix('0').unwrap_or(&compact);
        format!("{cc}{national}")
    };
    if !(7..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits)
}

#[cfg(test)]
mod tests {
    use super::normalize_e164 as n;

    #[test]
    fn rules() {
        assert_eq!(n("+1-212-555-0100", None).as_deref(), Some("12125550100"));
        assert_eq!(
            n("tel:+44.20.7946.0958", None).as_deref(),
            Some("442079460958")
        );
        assert_eq!(
            n("0044 (20) 7946 0958", None).as_deref(),
            Some("442079460958")
        );
        assert_eq!(
            n("01144 20 7946 0958", Some("1")).as_deref(),
            Some("442079460958")
        );
        assert_eq!(
            n("011320000000", Some("44")).as_deref(),
            Some("4411320000000")
        );
        assert_eq!(
            n("020 7946 0958", Some("44")).as_deref(),
            Some("442079460958")
        );
        assert_eq!(n("2125550100", Some("1")).as_deref(), Some("12125550100"));
        assert_eq!(
            n("7946-0958;phone-context=+4420", None).as_deref(),
            Some("442079460958")
        );
        assert_eq!(n("+15551234567;npdi", None).as_deref(), Some("15551234567"));
        assert_eq!(n("2125550100", None), None);
        assert_eq!(n("alice", Some("1")), None);
        assert_eq!(n("*69", Some("1")), None);
        assert_eq!(n("+1234567890123456", None), None);
        assert_eq!(n("", Some("1")), None);
        assert_eq!(n("+", None), None);
    }
}
