//! Checks on what API callers send: phone numbers in E.164, the numbers
//! Hotline must never dial, and the size of free-form metadata.

use std::collections::BTreeMap;

use super::error::FieldError;

/// Prefixes refused by default: emergency services (a robot must never
/// tie up an emergency line) and premium-rate ranges (a bug or a stolen
/// key must not run up a bill). Operators extend or replace the list in
/// the configuration.
pub const DEFAULT_DENY_PREFIXES: &[&str] = &[
    // NANP N11 service codes (911 emergency, 211-811 services) and 933
    // (the 911 address test line).
    "+1211", "+1311", "+1411", "+1511", "+1611", "+1711", "+1811", "+1911", "+1933",
    // NANP premium rate.
    "+1900", "+1976", // UK emergency (999, 112) and premium rate (09, 0871-0873).
    "+44999", "+44112", "+449", "+44871", "+44872", "+44873",
    // Germany, France, Italy, Spain premium rate.
    "+49900", "+49137", "+3389", "+39899", "+34803", "+34806", "+34807",
    // Australia emergency (000, 112) and premium rate (190x).
    "+61000", "+61112", "+61190",
];

/// Emergency and premium-rate prefixes a call may not be placed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyList {
    prefixes: Vec<String>,
}

impl Default for DenyList {
    fn default() -> Self {
        DenyList::new(DEFAULT_DENY_PREFIXES.iter().map(|s| s.to_string()))
    }
}

impl DenyList {
    /// A list of E.164 prefixes (`+1900`).
    pub fn new(prefixes: impl IntoIterator<Item = String>) -> Self {
        DenyList {
            prefixes: prefixes.into_iter().collect(),
        }
    }

    /// The prefix that refuses `e164`, if any.
    pub fn refuses(&self, e164: &str) -> Option<&str> {
        self.prefixes
            .iter()
            .find(|p| e164.starts_with(p.as_str()))
            .map(String::as_str)
    }
}

/// `value` as a canonical E.164 number (`+` and 7 to 15 digits, no
/// leading 0), accepting the usual visual separators (spaces, `-`, `.`,
/// parentheses).
pub fn e164(field: &str, value: &str) -> Result<String, FieldError> {
    let bad = || FieldError::body(field, "must be an E.164 number such as +14155550100");
    let rest = value.trim().strip_prefix('+').ok_or_else(bad)?;
    let digits: String = rest
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    if !(7..=15).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.starts_with('0')
    {
        return Err(bad());
    }
    Ok(format!("+{digits}"))
}

/// A number that may be called: E.164 and not on the deny list.
pub fn callable(field: &str, value: &str, deny: &DenyList) -> Result<String, FieldError> {
    let n = e164(field, value)?;
    if let Some(p) = deny.refuses(&n) {
        return Err(FieldError::body(
            field,
            format!("calls to {p}… are not allowed (emergency or premium-rate)"),
        ));
    }
    Ok(n)
}

/// Most metadata keys per resource.
pub const METADATA_MAX_KEYS: usize = 32;
/// Longest metadata key, in bytes.
pub const METADATA_MAX_KEY: usize = 64;
/// Longest metadata value, in bytes.
pub const METADATA_MAX_VALUE: usize = 512;

/// Metadata is a small string map: bounded so that a client cannot turn
/// call records into blob storage.
pub fn metadata(field: &str, map: &BTreeMap<String, String>) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if map.len() > METADATA_MAX_KEYS {
        errors.push(FieldError::body(
            field,
            format!("at most {METADATA_MAX_KEYS} keys"),
        ));
    }
    for (k, v) in map {
        if k.is_empty() || k.len() > METADATA_MAX_KEY {
            errors.push(FieldError::body(
                field,
                format!("keys must be 1 to {METADATA_MAX_KEY} bytes"),
            ));
        }
        if v.len() > METADATA_MAX_VALUE {
            errors.push(FieldError::body(
                &format!("{field}.{k}"),
                format!("at most {METADATA_MAX_VALUE} bytes"),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Longest URL a client may register (webhooks, context webhooks).
pub const URL_MAX: usize = 2048;

/// Collects the problems with a request body, all of them at once, so a
/// client fixes its request in one round.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<FieldError>);

impl Problems {
    /// One problem with body field `field` (dotted: `inbound.mode`).
    pub fn add(&mut self, field: &str, msg: impl Into<String>) {
        self.0.push(FieldError::body(field, msg));
    }

    /// A required text: not blank, at most `max` characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.add(field, "must not be empty");
        } else if value.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
        }
    }

    /// An optional text.
    pub fn opt_text(&mut self, field: &str, value: Option<&str>, max: usize) {
        if let Some(v) = value {
            self.text(field, v, max);
        }
    }

    /// An absolute `http://` or `https://` URL of at most
    /// [`URL_MAX`] characters, with a host.
    pub fn http_url(&mut self, field: &str, url: &str) {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let host_ok = rest.is_some_and(|r| {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !host.contains(char::is_whitespace)
        });
        if url.len() > URL_MAX {
            self.add(field, format!("must be at most {URL_MAX} characters"));
        } else if !host_ok {
            self.add(field, "must be an absolute http:// or https:// URL");
        }
    }

    /// `Ok` if there were none, else a 422 listing them all.
    pub fn finish(self) -> Result<(), super::error::ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(super::error::ApiError::Validation(self.0))
        }
    }
}

/// A field that may not be `null` in a PATCH (it has no empty state).
pub fn not_null<T>(problems: &mut Problems, field: &str, value: Option<Option<T>>) -> Option<T> {
    match value {
        Some(None) => {
            problems.add(field, "may not be null");
            None
        }
        Some(Some(v)) => Some(v),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn e164_accepts_separators_and_refuses_the_rest() {
        assert_eq!(e164("to", "+1 (415) 555-0100").unwrap(), "+14155550100");
        assert_eq!(e164("to", "+44.20.7946.0958").unwrap(), "+442079460958");
        for bad in [
            "14155550100",
            "+0123456789",
            "+1415",
            "+1234567890123456",
            "+1415555010a",
            "",
        ] {
            let e = e164("to", bad).unwrap_err();
            assert_eq!(e.loc, vec!["body", "to"], "{bad}");
        }
    }

    #[test]
    fn emergency_and_premium_numbers_are_refused() {
        let deny = DenyList::default();
        for n in [
            "+19115550100",
            "+19005551234",
            "+449098790000",
            "+61000123456",
        ] {
            assert!(callable("to", n, &deny).is_err(), "{n}");
        }
        assert_eq!(
            callable("to", "+14155550100", &deny).unwrap(),
            "+14155550100"
        );
        let custom = DenyList::new(["+1415".to_string()]);
        assert!(callable("to", "+14155550100", &custom).is_err());
        assert!(callable("to", "+19115550100", &custom).is_ok());
    }

    #[test]
    fn metadata_is_bounded() {
        let mut m = BTreeMap::new();
        m.insert("crm_id".to_string(), "42".to_string());
        assert!(metadata("metadata", &m).is_ok());
        m.insert("big".to_string(), "x".repeat(METADATA_MAX_VALUE + 1));
        let errs = metadata("metadata", &m).unwrap_err();
        assert_eq!(errs[0].loc, vec!["body", "metadata", "big"]);
        let many: BTreeMap<String, String> = (0..=METADATA_MAX_KEYS)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        assert!(metadata("metadata", &many).is_err());
    }

    proptest! {
        #[test]
        fn e164_never_panics_and_output_is_canonical(s in ".{0,40}") {
            if let Ok(n) = e164("to", &s) {
                prop_assert!(n.starts_with('+'));
                prop_assert!(n[1..].bytes().all(|b| b.is_ascii_digit()));
                prop_assert!((8..=16).contains(&n.len()));
            }
        }
    }
}
