//! The tool rounds of one reply. When the brain calls HTTP tools, the
//! requests run in tasks of their own while the call goes on (the words
//! said before the call keep playing, barge-in still works); once the
//! brain's stream has ended and every result is in, the round closes and
//! the brain is asked again with the tool calls and their results, so it
//! speaks the answer. Dropping a [`ToolRounds`] (the caller barged in, the
//! reply went stale, the call ended) abandons the requests still running.
//!
//! The rounds are kept here rather than in the conversation until the
//! reply is over, because only then is it known how much of each round's
//! words the caller heard.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::oneshot;

use crate::agent::provider::{Message, ToolCall};
use crate::agent::tools::run::call_tool;
use crate::agent::tools::{HttpTool, ToolResult};

/// What runs a call's HTTP tools.
#[derive(Debug, Clone)]
pub struct ToolRunner {
    tools: Arc<[HttpTool]>,
    call_id: String,
}

impl ToolRunner {
    /// The runner for call `call_id`.
    pub fn new(tools: &[HttpTool], call_id: &str) -> Self {
        ToolRunner {
            tools: tools.into(),
            call_id: call_id.to_owned(),
        }
    }

    /// Whether `name` is one of the call's HTTP tools.
    pub fn has(&self, name: &str) -> bool {
        self.tools.iter().any(|t| t.spec.name == name)
    }

    fn spawn(&self, tool: &HttpTool, tc: &ToolCall) -> oneshot::Receiver<ToolResult> {
        let (mut tx, rx) = oneshot::channel();
        let (tool, tc, call_id) = (tool.clone(), tc.clone(), self.call_id.clone());
        tokio::spawn(async move {
            let result = tokio::select! {
                r = call_tool(&tool, &call_id, &tc) => r,
                // Nobody wants the answer any more: drop the request.
                _ = tx.closed() => return,
            };
            let _ = tx.send(result);
        });
        rx
    }
}

/// A result the current round owes the brain.
#[derive(Debug)]
enum Owed {
    Ready(String, ToolResult),
    Running(String, oneshot::Receiver<ToolResult>),
}

/// A round already answered: what the agent said in it, the calls it
/// made and their results.
#[derive(Debug)]
struct Round {
    text: String,
    tool_calls: Vec<ToolCall>,
    results: Vec<(String, String)>,
}

/// The tool rounds of one reply.
#[derive(Debug, Default)]
pub struct ToolRounds {
    closed: Vec<Round>,
    /// Text said since the last round closed.
    text: String,
    owed: Vec<Owed>,
    failed: bool,
}

impl ToolRounds {
    /// Text the agent says in the current round.
    pub fn said(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Starts `tc`, a call of an HTTP tool or of a tool nobody declared
    /// (the brain hears that it does not exist). Beyond `max_rounds`
    /// rounds the tool is not run and the brain hears why.
    pub fn start(&mut self, runner: &ToolRunner, tc: &ToolCall, max_rounds: usize) {
        let id = tc.id.clone();
        let tool = runner.tools.iter().find(|t| t.spec.name == tc.name);
        let owed = match tool {
            _ if self.closed.len() >= max_rounds => Owed::Ready(
                id,
                ToolResult::error("too many tool calls for one turn; answer without tools"),
            ),
            Some(tool) => Owed::Running(id, runner.spawn(tool, tc)),
            None => Owed::Ready(
                id,
                ToolResult::error(format!("there is no tool named {:?}", tc.name)),
            ),
        };
        self.owed.push(owed);
    }

    /// Answers `tc` at once with `result` (a tool the call handles
    /// itself).
    pub fn answered(&mut self, tc: &ToolCall, result: ToolResult) {
        self.owed.push(Owed::Ready(tc.id.clone(), result));
    }

    /// Whether the current round called tools whose results the brain
    /// has not seen.
    pub fn in_round(&self) -> bool {
        !self.owed.is_empty()
    }

    /// Whether every result of the current round is in.
    pub fn results_ready(&self) -> bool {
        self.owed.iter().all(|o| matches!(o, Owed::Ready(..)))
    }

    /// Rounds answered so far.
    pub fn rounds(&self) -> usize {
        self.closed.len()
    }

    /// Whether a tool failed (timed out, answered an error, was refused).
    pub fn any_failed(&self) -> bool {
        self.failed
    }

    /// Whether the agent has said anything since the last round closed.
    pub fn said_since_round(&self) -> bool {
        !self.text.trim().is_empty()
    }

    /// Waits for the next running request to finish. Never returns when
    /// none is running.
    pub async fn next_result(&mut self) {
        let running = self.owed.iter_mut().enumerate().find_map(|(i, o)| match o {
            Owed::Running(_, rx) => Some((i, rx)),
            Owed::Ready(..) => None,
        });
        let Some((i, rx)) = running else {
            return std::future::pending().await;
        };
        let result = rx
            .await
            .unwrap_or_else(|_| ToolResult::error("the tool call was lost"));
        if let Owed::Running(id, _) = &mut self.owed[i] {
            self.owed[i] = Owed::Ready(std::mem::take(id), result);
        }
    }

    /// Closes the current round, whose calls were `tool_calls` (the
    /// built-in ones included), once its results are in.
    pub fn close_round(&mut self, tool_calls: Vec<ToolCall>) {
        let results = self.results_for(&tool_calls, "");
        self.closed.push(Round {
            text: std::mem::take(&mut self.text),
            tool_calls,
            results,
        });
    }

    /// The closed rounds as messages, for asking the brain again.
    pub fn messages(&self) -> Vec<Message> {
        let mut out = Vec::new();
        for r in &self.closed {
            push_round(&mut out, r.text.trim(), false, r);
        }
        out
    }

    /// The whole reply as messages: `text` (what the caller heard of all
    /// rounds, in order) split over the rounds, each round's calls and
    /// results, then the last part with `tool_calls`, the calls of the
    /// round that was under way.
    pub fn into_messages(
        mut self,
        text: &str,
        interrupted: bool,
        tool_calls: Vec<ToolCall>,
    ) -> Vec<Message> {
        if self.closed.is_empty() && self.owed.is_empty() {
            if text.is_empty() && tool_calls.is_empty() && !interrupted {
                return Vec::new();
            }
            return vec![Message::Assistant {
                text: text.to_owned(),
                interrupted,
                tool_calls,
            }];
        }
        let mut out = Vec::new();
        let mut rest = text;
        let mut cut = false;
        for r in &self.closed {
            let words = r.text.split_whitespace().count();
            let (part, after) = split_words(rest, words);
            rest = after;
            let short = part.split_whitespace().count() < words;
            push_round(&mut out, part.trim(), interrupted && short && !cut, r);
            cut |= short;
        }
        let rest = rest.trim();
        let why = if interrupted {
            "cancelled: the caller interrupted"
        } else {
            "cancelled: the reply ended"
        };
        let results = self.results_for(&tool_calls, why);
        if !rest.is_empty() || !tool_calls.is_empty() || (interrupted && !cut) {
            out.push(Message::Assistant {
                text: rest.to_owned(),
                interrupted,
                tool_calls,
            });
            out.extend(
                results
                    .into_iter()
                    .map(|(call_id, content)| Message::Tool { call_id, content }),
            );
        }
        out
    }

    /// The results of `tool_calls`: what the owed ones got (`unfinished`
    /// for those still running), and an acknowledgement for the built-in
    /// ones, which act on the call rather than answer.
    fn results_for(&mut self, tool_calls: &[ToolCall], unfinished: &str) -> Vec<(String, String)> {
        let owed = std::mem::take(&mut self.owed);
        let mut results = Vec::with_capacity(tool_calls.len());
        for tc in tool_calls {
            let content = owed.iter().find_map(|o| match o {
                Owed::Ready(id, r) if *id == tc.id => Some(r.clone()),
                Owed::Running(id, _) if *id == tc.id => Some(ToolResult::error(unfinished)),
                _ => None,
            });
            let content = content.unwrap_or_else(|| ToolResult {
                content: json!({"ok": true}).to_string(),
                ok: true,
            });
            self.failed |= !content.ok;
            results.push((tc.id.clone(), content.content));
        }
        results
    }
}

fn push_round(out: &mut Vec<Message>, text: &str, interrupted: bool, r: &Round) {
    out.push(Message::Assistant {
        text: text.to_owned(),
        interrupted,
        tool_calls: r.tool_calls.clone(),
    });
    out.extend(r.results.iter().map(|(call_id, content)| Message::Tool {
        call_id: call_id.clone(),
        content: content.clone(),
    }));
}

/// `text` cut after its first `n` words.
fn split_words(text: &str, n: usize) -> (&str, &str) {
    if n == 0 {
        return ("", text);
    }
    let mut count = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                count += 1;
                in_word = false;
                if count == n {
                    return (&text[..i], &text[i..]);
                }
            }
        } else {
            in_word = true;
        }
    }
    (text, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, name: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: json!({}),
        }
    }

    #[test]
    fn words_split_where_they_should() {
        assert_eq!(
            split_words("Let me check. Done now", 3),
            ("Let me check.", " Done now")
        );
        assert_eq!(split_words("a b", 0), ("", "a b"));
        assert_eq!(split_words("a b", 5), ("a b", ""));
    }

    #[test]
    fn a_reply_without_rounds_is_one_message_as_before() {
        assert!(
            ToolRounds::default()
                .into_messages("", false, vec![])
                .is_empty()
        );
        let m = ToolRounds::default().into_messages("Hi there.", true, vec![]);
        assert_eq!(
            m,
            [Message::Assistant {
                text: "Hi there.".into(),
                interrupted: true,
                tool_calls: vec![]
            }]
        );
    }

    #[tokio::test]
    async fn rounds_become_calls_results_and_the_answer() {
        let runner = ToolRunner::new(&[], "call_1");
        let mut r = ToolRounds::default();
        r.said("Let me check.");
        r.start(&runner, &call("t1", "nope"), 3);
        assert!(r.in_round() && r.results_ready());
        r.close_round(vec![call("t1", "nope"), call("t2", "send_dtmf")]);
        assert!(r.any_failed());
        assert!(!r.in_round());
        assert_eq!(r.rounds(), 1);
        let asked = r.messages();
        assert_eq!(asked.len(), 3);
        assert!(
            matches!(&asked[1], Message::Tool { call_id, content } if call_id == "t1" && content.contains("no tool named"))
        );
        assert!(
            matches!(&asked[2], Message::Tool { call_id, content } if call_id == "t2" && content.contains("ok"))
        );
        r.said("It shipped today.");
        let m = r.into_messages("Let me check. It shipped today.", false, vec![]);
        assert_eq!(m.len(), 4);
        assert!(
            matches!(&m[0], Message::Assistant { text, interrupted: false, tool_calls } if text == "Let me check." && tool_calls.len() == 2)
        );
        assert!(
            matches!(&m[3], Message::Assistant { text, interrupted: false, .. } if text == "It shipped today.")
        );
    }

    #[tokio::test]
    async fn a_cut_in_the_first_round_marks_it_and_cancels_the_rest() {
        let runner = ToolRunner::new(&[], "call_1");
        let mut r = ToolRounds::default();
        r.said("Let me check that for you.");
        r.start(&runner, &call("t1", "nope"), 0);
        let m = r.into_messages("Let me", true, vec![call("t1", "nope")]);
        assert_eq!(m.len(), 2);
        assert!(
            matches!(&m[0], Message::Assistant { text, interrupted: true, tool_calls } if text == "Let me" && tool_calls.len() == 1)
        );
        assert!(
            matches!(&m[1], Message::Tool { content, .. } if content.contains("too many tool calls"))
        );
    }
}
