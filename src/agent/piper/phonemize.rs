//! Text to Piper phonemes with the espeak-ng command line.
//!
//! Piper voices are trained on espeak-ng's IPA (as `piper-phonemize`
//! produces it: stress marks `ˈ ˌ`, length `ː`, one line per clause), with
//! each clause's terminator appended as a phoneme and a space between
//! clauses. `espeak-ng -q --ipa` gives the same phonemes, one clause per
//! output line, but drops the punctuation; the clauses are cut here
//! (see [`super::split`]), handed over one per line (a line break ends a
//! clause for espeak-ng), and their terminators put back.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::PiperError;
use super::split::Unit;

/// espeak-ng needs milliseconds for a sentence; this only catches a hung
/// process.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The phonemes of `unit` as Piper would write them, e.g.
/// `həlˈoʊ ðˈɛɹ, hˌaʊ ɑːɹ juː?`.
pub(super) async fn phonemize(
    espeak: &Path,
    voice: &str,
    unit: &Unit,
) -> Result<String, PiperError> {
    let input: String = unit
        .clauses
        .iter()
        .map(|c| format!("{}\n", c.text))
        .collect();
    let lines = run_espeak(espeak, voice, &input).await?;
    let ends: Vec<Option<char>> = unit.clauses.iter().map(|c| c.end).collect();
    Ok(join(&lines, &ends))
}

/// Puts the clause terminators back. espeak-ng may break a clause further
/// than we did (an abbreviation it reads as a sentence end); then the lines
/// no longer pair with the clauses, and only the unit's last terminator is
/// kept.
fn join(lines: &[String], ends: &[Option<char>]) -> String {
    let mut out = String::new();
    let paired = lines.len() == ends.len();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(line);
        let end = if paired {
            ends[i]
        } else if i + 1 == lines.len() {
            ends.last().copied().flatten()
        } else {
            None
        };
        if let Some(p) = end {
            out.push(p);
        }
    }
    out
}

/// Runs `espeak-ng -q --ipa` on `input` and returns its non-empty output
/// lines, without the language-switch marks (`(fr)`) it inserts around
/// foreign words.
async fn run_espeak(espeak: &Path, voice: &str, input: &str) -> Result<Vec<String>, PiperError> {
    let spawn_err =
        |e: std::io::Error| PiperError::Espeak(format!("cannot run {}: {e}", espeak.display()));
    let mut child = Command::new(espeak)
        // -b 1: the input is UTF-8, whatever the locale.
        .args(["-q", "--ipa", "-b", "1", "-v", voice])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // A unit is a few hundred bytes: it fits in the pipe, so writing all of
    // it before reading cannot deadlock.
    stdin.write_all(input.as_bytes()).await.map_err(spawn_err)?;
    drop(stdin);
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| PiperError::Espeak(format!("{} timed out", espeak.display())))?
        .map_err(spawn_err)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    // An unknown voice is reported on stderr with a zero exit status.
    if !output.status.success() || stderr.contains("Error") {
        return Err(PiperError::Espeak(format!(
            "{} -v {voice} failed ({}): {}",
            espeak.display(),
            output.status,
            stderr.trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(strip_language_marks)
        .filter(|l| !l.is_empty())
        .collect())
}

/// Removes `(xx)` / `(xx-yy)` language-switch marks; espeak-ng's IPA never
/// contains brackets otherwise.
fn strip_language_marks(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        match rest[open..].find(')') {
            Some(close) => rest = &rest[open + close + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::piper::split::units;

    #[test]
    fn terminators_follow_their_clauses() {
        let lines = vec!["həlˈoʊ ðˈɛɹ".to_owned(), "hˌaʊ ɑːɹ juː".to_owned()];
        assert_eq!(
            join(&lines, &[Some(','), Some('?')]),
            "həlˈoʊ ðˈɛɹ, hˌaʊ ɑːɹ juː?"
        );
        // espeak-ng split a clause of ours in two: keep only the last
        // terminator.
        let lines = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(join(&lines, &[Some(','), Some('.')]), "a b c.");
        assert_eq!(join(&[], &[Some('.')]), "");
    }

    #[test]
    fn language_marks_are_removed() {
        assert_eq!(
            strip_language_marks(" (fr)bɔ̃ʒuːʁ(en) wˈɜːld "),
            "bɔ̃ʒuːʁ wˈɜːld"
        );
        assert_eq!(strip_language_marks("ab (unclosed"), "ab");
    }

    #[tokio::test]
    async fn espeak_gives_piper_style_phonemes() {
        let unit = &units("Hello there, how are you?", 200, 200)[0];
        let p = phonemize(Path::new("espeak-ng"), "en-us", unit)
            .await
            .unwrap();
        assert!(p.ends_with('?'), "{p}");
        assert!(p.contains(", "), "{p}");
        assert!(p.contains('ˈ'), "stress marks are kept: {p}");
        assert!(p.starts_with("həlˈoʊ"), "{p}");
    }

    #[tokio::test]
    async fn a_missing_espeak_is_a_clear_error() {
        let unit = &units("Hello.", 200, 200)[0];
        let err = phonemize(Path::new("/nonexistent/espeak-ng"), "en-us", unit)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/espeak-ng"), "{err}");
        let err = phonemize(Path::new("espeak-ng"), "nosuchvoice", unit)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nosuchvoice"), "{err}");
    }
}
