//! From whisper's segments to one transcript: drop what is not speech,
//! join the rest, and bound the timings by the audio.

use super::pool::Pass;

/// One segment as whisper.cpp reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Segment {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Probability of the no-speech token at the start of the segment's
    /// 30 s window.
    pub no_speech: f32,
}

/// The text of `segments` and the span it covers, clamped to `audio_ms`.
/// Segments whose no-speech probability exceeds `no_speech_threshold`,
/// and segments that are only a sound annotation (`[BLANK_AUDIO]`,
/// `(music)`, `*cough*`), are dropped. With no text left the span is the
/// whole audio.
pub(crate) fn join(
    segments: &[Segment],
    no_speech_threshold: f32,
    audio_ms: u64,
    pass: Pass,
) -> (String, u64, u64) {
    let mut words: Vec<&str> = Vec::new();
    let mut span: Option<(u64, u64)> = None;
    for seg in segments {
        if seg.no_speech > no_speech_threshold {
            continue;
        }
        let text = seg.text.trim();
        if text.is_empty() || is_annotation(text) {
            continue;
        }
        words.extend(text.split_whitespace());
        let (s, e) = (seg.start_ms.min(audio_ms), seg.end_ms.min(audio_ms));
        span = Some(match span {
            None => (s, e.max(s)),
            Some((s0, e0)) => (s0.min(s), e0.max(e)),
        });
    }
    if words.is_empty() {
        return (String::new(), 0, audio_ms);
    }
    // Partials carry no timestamps: they cover the audio so far.
    let (start, end) = match pass {
        Pass::Partial => (0, audio_ms),
        Pass::Final => span.unwrap_or((0, audio_ms)),
    };
    (words.join(" "), start, end)
}

/// True for text that is only a bracketed sound description.
fn is_annotation(text: &str) -> bool {
    let pairs = [('[', ']'), ('(', ')'), ('*', '*'), ('♪', '♪')];
    pairs.iter().any(|&(open, close)| {
        text.len() >= 2
            && text.starts_with(open)
            && text.ends_with(close)
            && !text[open.len_utf8()..text.len() - close.len_utf8()].contains([open, close])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(text: &str, start_ms: u64, end_ms: u64, no_speech: f32) -> Segment {
        Segment {
            text: text.into(),
            start_ms,
            end_ms,
            no_speech,
        }
    }

    #[test]
    fn segments_are_joined_with_single_spaces_and_their_span() {
        let s = [
            seg(" Hello,  my name", 120, 1800, 0.01),
            seg(" is John.", 1800, 2900, 0.01),
        ];
        assert_eq!(
            join(&s, 0.6, 3000, Pass::Final),
            ("Hello, my name is John.".into(), 120, 2900)
        );
    }

    #[test]
    fn timings_are_clamped_to_the_audio() {
        let s = [seg("Yes.", 0, 30_000, 0.0)];
        assert_eq!(join(&s, 0.6, 700, Pass::Final), ("Yes.".into(), 0, 700));
    }

    #[test]
    fn no_speech_segments_and_annotations_are_dropped() {
        let s = [
            seg(" [BLANK_AUDIO]", 0, 1000, 0.1),
            seg(" Thank you.", 1000, 2000, 0.9),
            seg(" (music)", 2000, 2500, 0.0),
            seg(" *cough*", 2500, 2600, 0.0),
        ];
        assert_eq!(join(&s, 0.6, 3000, Pass::Final), (String::new(), 0, 3000));
    }

    #[test]
    fn text_with_brackets_inside_is_kept() {
        let s = [seg("[Pause] and then (maybe) more", 0, 1000, 0.0)];
        assert_eq!(
            join(&s, 0.6, 1000, Pass::Final).0,
            "[Pause] and then (maybe) more"
        );
        assert!(is_annotation("[Laughter]"));
        assert!(!is_annotation("[a] b [c]"));
    }

    #[test]
    fn partials_cover_the_audio_so_far() {
        let s = [seg("Hello", 300, 900, 0.0)];
        assert_eq!(
            join(&s, 0.6, 2000, Pass::Partial),
            ("Hello".into(), 0, 2000)
        );
    }
}
