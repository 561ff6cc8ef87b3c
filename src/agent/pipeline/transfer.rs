//! The outcome of the brain's `transfer_call`.
//!
//! The tool does not answer at once: the call task sends REFER and, when
//! REFER is refused, calls the target itself and bridges it
//! ([`crate::engine::transfer`]). Meanwhile the agent says nothing and
//! ignores the caller (who hears ringback or the transferee's own
//! progress), and the tool call's result in the conversation reads
//! `{"status": "transferring"}`, so that the conversation stays valid for
//! a model that wants a result after each call. The result is settled by
//! the call's events:
//!
//! * [`CallEvent::TransferFailed`]: the result becomes
//!   `{"status": "failed", "sip_code": 486, "reason": "busy"}` and the
//!   brain is asked again, like after an HTTP tool: an LLM explains, a
//!   flow goes to its transfer node's `on_failure`;
//! * [`CallEvent::Bridged`] or a 2xx [`CallEvent::TransferStatus`]: the
//!   caller is with the target, the result becomes
//!   `{"status": "transferred", …}` and the agent's part is over.

use serde_json::json;

use crate::agent::provider::{Conversation, Message};
use crate::call::CallEvent;

/// The result a transfer under way shows the brain.
pub const TRANSFERRING: &str = r#"{"status":"transferring"}"#;

/// What a settled transfer means for the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The caller is still here: ask the brain again.
    Failed,
    /// The caller is with the target: the agent is done.
    Handed,
}

/// A `transfer_call` waiting for its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTransfer {
    call_id: String,
}

impl PendingTransfer {
    /// Waits on the conversation's last `transfer_call`, whose result
    /// becomes [`TRANSFERRING`]; `None` when the conversation has none.
    pub fn start(conversation: &mut Conversation) -> Option<PendingTransfer> {
        let call_id = conversation.messages.iter().rev().find_map(|m| match m {
            Message::Assistant { tool_calls, .. } => tool_calls
                .iter()
                .rev()
                .find(|c| c.name == "transfer_call")
                .map(|c| c.id.clone()),
            _ => None,
        })?;
        let pending = PendingTransfer { call_id };
        pending.set_result(conversation, TRANSFERRING.to_owned());
        Some(pending)
    }

    /// Settles the transfer on `event`, writing the result into
    /// `conversation`; `None` for events that say nothing about it.
    pub fn on_event(&self, event: &CallEvent, conversation: &mut Conversation) -> Option<Settled> {
        let (content, settled) = match event {
            CallEvent::TransferFailed { sip_code, reason } => (
                json!({"status": "failed", "sip_code": sip_code, "reason": reason}),
                Settled::Failed,
            ),
            CallEvent::Bridged { .. } => (
                json!({"status": "transferred", "via": "bridge"}),
                Settled::Handed,
            ),
            CallEvent::TransferStatus { sip_code } if (200..300).contains(sip_code) => (
                json!({"status": "transferred", "via": "refer"}),
                Settled::Handed,
            ),
            _ => return None,
        };
        self.set_result(conversation, content.to_string());
        Some(settled)
    }

    fn set_result(&self, conversation: &mut Conversation, content: String) {
        let result = conversation
            .messages
            .iter_mut()
            .rev()
            .find_map(|m| match m {
                Message::Tool { call_id, content } if *call_id == self.call_id => Some(content),
                _ => None,
            });
        match result {
            Some(c) => *c = content,
            None => conversation.messages.push(Message::Tool {
                call_id: self.call_id.clone(),
                content,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::provider::ToolCall;

    fn conversation() -> Conversation {
        let call = |id: &str, name: &str| ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: json!({}),
        };
        Conversation {
            messages: vec![
                Message::Assistant {
                    text: "Putting you through.".into(),
                    interrupted: false,
                    tool_calls: vec![call("d1", "send_dtmf"), call("t1", "transfer_call")],
                },
                Message::Tool {
                    call_id: "d1".into(),
                    content: r#"{"ok":true}"#.into(),
                },
                Message::Tool {
                    call_id: "t1".into(),
                    content: r#"{"ok":true}"#.into(),
                },
            ],
            ..Conversation::default()
        }
    }

    fn result(c: &Conversation, id: &str) -> String {
        c.messages
            .iter()
            .find_map(|m| match m {
                Message::Tool { call_id, content } if call_id == id => Some(content.clone()),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn a_failed_transfer_becomes_the_tools_failed_result() {
        let mut c = conversation();
        let p = PendingTransfer::start(&mut c).unwrap();
        assert_eq!(result(&c, "t1"), TRANSFERRING);
        assert_eq!(result(&c, "d1"), r#"{"ok":true}"#);
        // Progress and the REFER's own refusal are not the outcome.
        for ev in [
            CallEvent::TransferStatus { sip_code: 100 },
            CallEvent::TransferStatus { sip_code: 405 },
            CallEvent::Answered,
        ] {
            assert_eq!(p.on_event(&ev, &mut c), None);
        }
        let failed = CallEvent::TransferFailed {
            sip_code: 486,
            reason: "busy".into(),
        };
        assert_eq!(p.on_event(&failed, &mut c), Some(Settled::Failed));
        let v: serde_json::Value = serde_json::from_str(&result(&c, "t1")).unwrap();
        assert_eq!(
            v,
            json!({"status": "failed", "sip_code": 486, "reason": "busy"})
        );
        assert_eq!(c.messages.len(), 3);
    }

    #[test]
    fn a_bridge_or_a_referred_caller_ends_the_agents_part() {
        let mut c = conversation();
        let p = PendingTransfer::start(&mut c).unwrap();
        let bridged = CallEvent::Bridged {
            with: crate::call::CallId::from("call_2".to_owned()),
        };
        assert_eq!(p.on_event(&bridged, &mut c), Some(Settled::Handed));
        assert!(result(&c, "t1").contains("bridge"));
        let mut c = conversation();
        let p = PendingTransfer::start(&mut c).unwrap();
        let ok = CallEvent::TransferStatus { sip_code: 200 };
        assert_eq!(p.on_event(&ok, &mut c), Some(Settled::Handed));
        assert!(result(&c, "t1").contains("transferred"));
    }

    #[test]
    fn without_a_transfer_call_nothing_is_waited_for() {
        let mut c = Conversation::default();
        assert!(PendingTransfer::start(&mut c).is_none());
        // A result the pipeline left out is added.
        let mut c = conversation();
        c.messages.truncate(2);
        let p = PendingTransfer::start(&mut c).unwrap();
        assert_eq!(result(&c, "t1"), TRANSFERRING);
        assert_eq!(c.messages.len(), 3);
        drop(p);
    }
}
