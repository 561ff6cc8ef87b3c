//! The reply language of an inbound AI number: `auto` (the caller's) or an
//! ISO 639-1 code with an optional region (`de`, `pt-BR`, `es-419`). At
//! call time it becomes one sentence appended to the prompt the brain gets
//! ([`directive`]); the stored prompt is never changed. Pure.

/// What `language` means for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyLanguage {
    /// Reply in whatever language the caller speaks.
    Auto,
    /// Always reply in this language: the ISO 639-1 code (lower case) and
    /// the region as given (`BR`, `419`), if any.
    Fixed {
        /// ISO 639-1, lower case.
        code: String,
        /// ISO 3166-1 alpha-2 (upper case) or a UN M49 area (3 digits).
        region: Option<String>,
    },
}

impl ReplyLanguage {
    /// Reads `auto` or `ll` / `ll-RR` / `ll-NNN` (case-insensitive); `None`
    /// for anything else, including codes ISO 639-1 does not assign.
    pub fn parse(value: &str) -> Option<ReplyLanguage> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("auto") {
            return Some(ReplyLanguage::Auto);
        }
        let (code, region) = match value.split_once(['-', '_']) {
            Some((c, r)) => (c, Some(r)),
            None => (value, None),
        };
        let code = code.to_ascii_lowercase();
        name_of(&code)?;
        let region = match region {
            None => None,
            Some(r) if r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic()) => {
                Some(r.to_ascii_uppercase())
            }
            Some(r) if r.len() == 3 && r.bytes().all(|b| b.is_ascii_digit()) => Some(r.to_owned()),
            Some(_) => return None,
        };
        Some(ReplyLanguage::Fixed { code, region })
    }

    /// The canonical spelling: `auto`, `de`, `pt-BR`.
    pub fn tag(&self) -> String {
        match self {
            ReplyLanguage::Auto => "auto".into(),
            ReplyLanguage::Fixed { code, region: None } => code.clone(),
            ReplyLanguage::Fixed {
                code,
                region: Some(r),
            } => format!("{code}-{r}"),
        }
    }

    /// The language speech engines are given: the tag, or none for
    /// `auto` (they detect it, or use their own default).
    pub fn speech_tag(&self) -> Option<String> {
        match self {
            ReplyLanguage::Auto => None,
            fixed => Some(fixed.tag()),
        }
    }

    /// The sentence appended to the brain's prompt.
    pub fn directive(&self) -> String {
        match self {
            ReplyLanguage::Auto => "Always reply in the language the caller speaks; if they                                     switch languages, switch with them."
                .into(),
            ReplyLanguage::Fixed { code, region } => {
                let name = name_of(code).unwrap_or(code.as_str());
                match region {
                    Some(r) => format!("Always reply in {name} (region {r})."),
                    None => format!("Always reply in {name}."),
                }
            }
        }
    }
}

/// The English name of an ISO 639-1 code (lower case).
pub fn name_of(code: &str) -> Option<&'static str> {
    ISO_639_1
        .binary_search_by(|(c, _)| c.cmp(&code))
        .ok()
        .map(|i| ISO_639_1[i].1)
}

/// Every ISO 639-1 code with its English name, sorted by code (from the
/// iso-codes project's ISO 639-2 table).
const ISO_639_1: [(&str, &str); 184] = [
    ("aa", "Afar"),
    ("ab", "Abkhazian"),
    ("ae", "Avestan"),
    ("af", "Afrikaans"),
    ("ak", "Akan"),
    ("am", "Amharic"),
    ("an", "Aragonese"),
    ("ar", "Arabic"),
    ("as", "Assamese"),
    ("av", "Avaric"),
    ("ay", "Aymara"),
    ("az", "Azerbaijani"),
    ("ba", "Bashkir"),
    ("be", "Belarusian"),
    ("bg", "Bulgarian"),
    ("bh", "Bihari languages"),
    ("bi", "Bislama"),
    ("bm", "Bambara"),
    ("bn", "Bengali"),
    ("bo", "Tibetan"),
    ("br", "Breton"),
    ("bs", "Bosnian"),
    ("ca", "Catalan"),
    ("ce", "Chechen"),
    ("ch", "Chamorro"),
    ("co", "Corsican"),
    ("cr", "Cree"),
    ("cs", "Czech"),
    ("cu", "Church Slavonic"),
    ("cv", "Chuvash"),
    ("cy", "Welsh"),
    ("da", "Danish"),
    ("de", "German"),
    ("dv", "Divehi"),
    ("dz", "Dzongkha"),
    ("ee", "Ewe"),
    ("el", "Greek"),
    ("en", "English"),
    ("eo", "Esperanto"),
    ("es", "Spanish"),
    ("et", "Estonian"),
    ("eu", "Basque"),
    ("fa", "Persian"),
    ("ff", "Fulah"),
    ("fi", "Finnish"),
    ("fj", "Fijian"),
    ("fo", "Faroese"),
    ("fr", "French"),
    ("fy", "Western Frisian"),
    ("ga", "Irish"),
    ("gd", "Scottish Gaelic"),
    ("gl", "Galician"),
    ("gn", "Guarani"),
    ("gu", "Gujarati"),
    ("gv", "Manx"),
    ("ha", "Hausa"),
    ("he", "Hebrew"),
    ("hi", "Hindi"),
    ("ho", "Hiri Motu"),
    ("hr", "Croatian"),
    ("ht", "Haitian Creole"),
    ("hu", "Hungarian"),
    ("hy", "Armenian"),
    ("hz", "Herero"),
    ("ia", "Interlingua"),
    ("id", "Indonesian"),
    ("ie", "Interlingue"),
    ("ig", "Igbo"),
    ("ii", "Sichuan Yi"),
    ("ik", "Inupiaq"),
    ("io", "Ido"),
    ("is", "Icelandic"),
    ("it", "Italian"),
    ("iu", "Inuktitut"),
    ("ja", "Japanese"),
    ("jv", "Javanese"),
    ("ka", "Georgian"),
    ("kg", "Kongo"),
    ("ki", "Kikuyu"),
    ("kj", "Kuanyama"),
    ("kk", "Kazakh"),
    ("kl", "Greenlandic"),
    ("km", "Central Khmer"),
    ("kn", "Kannada"),
    ("ko", "Korean"),
    ("kr", "Kanuri"),
    ("ks", "Kashmiri"),
    ("ku", "Kurdish"),
    ("kv", "Komi"),
    ("kw", "Cornish"),
    ("ky", "Kyrgyz"),
    ("la", "Latin"),
    ("lb", "Luxembourgish"),
    ("lg", "Ganda"),
    ("li", "Limburgish"),
    ("ln", "Lingala"),
    ("lo", "Lao"),
    ("lt", "Lithuanian"),
    ("lu", "Luba-Katanga"),
    ("lv", "Latvian"),
    ("mg", "Malagasy"),
    ("mh", "Marshallese"),
    ("mi", "Māori"),
    ("mk", "Macedonian"),
    ("ml", "Malayalam"),
    ("mn", "Mongolian"),
    ("mr", "Marathi"),
    ("ms", "Malay"),
    ("mt", "Maltese"),
    ("my", "Burmese"),
    ("na", "Nauru"),
    ("nb", "Norwegian Bokmål"),
    ("nd", "North Ndebele"),
    ("ne", "Nepali"),
    ("ng", "Ndonga"),
    ("nl", "Dutch"),
    ("nn", "Norwegian Nynorsk"),
    ("no", "Norwegian"),
    ("nr", "South Ndebele"),
    ("nv", "Navajo"),
    ("ny", "Chichewa"),
    ("oc", "Occitan"),
    ("oj", "Ojibwa"),
    ("om", "Oromo"),
    ("or", "Oriya"),
    ("os", "Ossetian"),
    ("pa", "Punjabi"),
    ("pi", "Pali"),
    ("pl", "Polish"),
    ("ps", "Pashto"),
    ("pt", "Portuguese"),
    ("qu", "Quechua"),
    ("rm", "Romansh"),
    ("rn", "Rundi"),
    ("ro", "Romanian"),
    ("ru", "Russian"),
    ("rw", "Kinyarwanda"),
    ("sa", "Sanskrit"),
    ("sc", "Sardinian"),
    ("sd", "Sindhi"),
    ("se", "Northern Sami"),
    ("sg", "Sango"),
    ("si", "Sinhala"),
    ("sk", "Slovak"),
    ("sl", "Slovenian"),
    ("sm", "Samoan"),
    ("sn", "Shona"),
    ("so", "Somali"),
    ("sq", "Albanian"),
    ("sr", "Serbian"),
    ("ss", "Swati"),
    ("st", "Southern Sotho"),
    ("su", "Sundanese"),
    ("sv", "Swedish"),
    ("sw", "Swahili"),
    ("ta", "Tamil"),
    ("te", "Telugu"),
    ("tg", "Tajik"),
    ("th", "Thai"),
    ("ti", "Tigrinya"),
    ("tk", "Turkmen"),
    ("tl", "Tagalog"),
    ("tn", "Tswana"),
    ("to", "Tongan"),
    ("tr", "Turkish"),
    ("ts", "Tsonga"),
    ("tt", "Tatar"),
    ("tw", "Twi"),
    ("ty", "Tahitian"),
    ("ug", "Uyghur"),
    ("uk", "Ukrainian"),
    ("ur", "Urdu"),
    ("uz", "Uzbek"),
    ("ve", "Venda"),
    ("vi", "Vietnamese"),
    ("vo", "Volapük"),
    ("wa", "Walloon"),
    ("wo", "Wolof"),
    ("xh", "Xhosa"),
    ("yi", "Yiddish"),
    ("yo", "Yoruba"),
    ("za", "Zhuang"),
    ("zh", "Chinese"),
    ("zu", "Zulu"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sorted_for_the_binary_search() {
        assert!(ISO_639_1.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(name_of("de"), Some("German"));
        assert_eq!(name_of("zz"), None);
    }

    #[test]
    fn tags_parse_to_directives() {
        let de = ReplyLanguage::parse("de").unwrap();
        assert_eq!(de.directive(), "Always reply in German.");
        assert_eq!(de.speech_tag().as_deref(), Some("de"));
        let br = ReplyLanguage::parse("PT_br").unwrap();
        assert_eq!(br.tag(), "pt-BR");
        assert_eq!(br.directive(), "Always reply in Portuguese (region BR).");
        assert_eq!(ReplyLanguage::parse("es-419").unwrap().tag(), "es-419");
        let auto = ReplyLanguage::parse("Auto").unwrap();
        assert_eq!(auto, ReplyLanguage::Auto);
        assert_eq!(auto.speech_tag(), None);
        assert!(auto.directive().contains("language the caller speaks"));
        for bad in ["", "deu", "xx", "de-", "de-Berlin", "en-U1", "english"] {
            assert_eq!(ReplyLanguage::parse(bad), None, "{bad}");
        }
    }
}
