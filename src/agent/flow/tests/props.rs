//! Property tests: no definition makes the checks panic, and no
//! conversation makes a checked flow panic, stall or misbehave.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::agent::flow::def::{
    CaseDef, ChoiceDef, Expect, FlowDef, HandlerDef, NodeDef, NodeType, Outcome, YesNo,
};
use crate::agent::flow::{Flow, FlowBrain, check_model, parse, validate};
use crate::agent::provider::{
    Brain, BrainEvent, BrainSession, CallInfo, Conversation, Message, ToolCall,
};

/// Field names of the format, and a few that are not.
const KEYS: &[&str] = &[
    "start",
    "nodes",
    "id",
    "type",
    "text",
    "prompt",
    "next",
    "choices",
    "slot",
    "expect",
    "min_length",
    "max_length",
    "min",
    "max",
    "country_code",
    "retries",
    "no_input",
    "no_match",
    "value",
    "cases",
    "default",
    "number",
    "on_failure",
    "digits",
    "outcome",
    "keywords",
    "dtmf",
    "intent",
    "reprompt",
    "equals",
    "one_of",
    "is_set",
    "colour",
];

/// Strings that mean something somewhere in the format.
const WORDS: &[&str] = &[
    "a",
    "b",
    "c",
    "say",
    "ask",
    "capture",
    "message",
    "branch",
    "set",
    "dtmf",
    "transfer",
    "hangup",
    "goto",
    "achieved",
    "partial",
    "not_achieved",
    "yes",
    "no",
    "text",
    "digits",
    "yes_no",
    "number",
    "phone",
    "name",
    "{a}",
    "{",
    "}",
    "{{",
    "+14155550100",
    "1",
    "#",
    "",
    " ",
    "Hi. {b}",
    "{call.from}",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e3f64..1e3).prop_map(|f| json!(f)),
        prop::sample::select(WORDS).prop_map(|s| json!(s)),
        "\\PC{0,8}".prop_map(Value::String),
    ]
}

fn json_ish() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..10).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// A definition shaped like a flow: nodes of every type whose fields come
/// from random bytes, references mostly along a spine so that a fair share
/// validate.
fn flow_def() -> impl Strategy<Value = FlowDef> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 16), 2..8).prop_map(|specs| {
        let n = specs.len();
        let nodes = specs
            .iter()
            .enumerate()
            .map(|(i, b)| node(i, n, b))
            .collect();
        FlowDef {
            start: "n0".into(),
            nodes,
        }
    })
}

const TEXTS: &[&str] = &[
    "Hello.",
    "Press 1 or say yes. Press 2 for no!",
    "Thanks, {a}.",
    "You said {b}? OK.",
    "From {call.from}.",
];

fn node(i: usize, n: usize, b: &[u8]) -> NodeDef {
    let id = format!("n{i}");
    let pick = |k: usize| -> String {
        if b[k].is_multiple_of(4) {
            format!("n{}", b[k] as usize % n)
        } else {
            format!("n{}", (i + 1).min(n - 1))
        }
    };
    let text = |k: usize| TEXTS[b[k] as usize % TEXTS.len()];
    let slot = if b[3].is_multiple_of(2) { "a" } else { "b" };
    let outcome = [Outcome::Achieved, Outcome::Partial, Outcome::NotAchieved][b[4] as usize % 3];
    let handlers = |node: NodeDef| {
        node.retrying(
            u32::from(b[5] % 4),
            HandlerDef::new(
                b[6].is_multiple_of(2).then(|| text(7)),
                b[8].is_multiple_of(2).then(|| pick(9)).as_deref(),
            ),
            HandlerDef::new(None, Some(&pick(10))),
        )
    };
    let kind = if i + 1 == n {
        if b[0].is_multiple_of(2) {
            NodeType::Hangup
        } else {
            NodeType::Transfer
        }
    } else {
        [
            NodeType::Say,
            NodeType::Ask,
            NodeType::Capture,
            NodeType::Message,
            NodeType::Branch,
            NodeType::Set,
            NodeType::Dtmf,
            NodeType::Goto,
            NodeType::Hangup,
            NodeType::Transfer,
        ][b[0] as usize % 10]
    };
    match kind {
        NodeType::Say => NodeDef::say(&id, text(1), &pick(2)),
        NodeType::Goto => NodeDef::goto(&id, &pick(2)),
        NodeType::Ask => {
            let choices = (0..=(b[11] % 3) as usize)
                .map(|c| {
                    let mut ch = ChoiceDef::to(&pick(12 + c))
                        .keywords(&[["sales", "support", "acknowledge"][c]])
                        .dtmf(&(c + 1).to_string());
                    if b[15] % 3 == c as u8 {
                        ch = ch.intent(if c == 0 { YesNo::Yes } else { YesNo::No });
                    }
                    ch
                })
                .collect();
            handlers(NodeDef::ask(&id, text(1), choices))
        }
        NodeType::Capture => {
            let expect = [
                Expect::Text,
                Expect::Digits,
                Expect::YesNo,
                Expect::Number,
                Expect::Phone,
                Expect::Name,
            ][b[11] as usize % 6];
            let mut node = NodeDef::capture(&id, text(1), slot, expect, &pick(2));
            if expect == Expect::Digits {
                node.min_length = Some(u32::from(b[12] % 4) + 1);
                node.max_length = Some(u32::from(b[13] % 6) + 1);
            }
            if expect == Expect::Number {
                node.max = Some(i64::from(b[12]));
            }
            handlers(node)
        }
        NodeType::Message => handlers(NodeDef::message(&id, text(1), slot, &pick(2))),
        NodeType::Branch => NodeDef::branch(
            &id,
            vec![CaseDef {
                is_set: Some(b[11].is_multiple_of(2)),
                equals: b[12].is_multiple_of(2).then(|| json!("yes")),
                ..CaseDef::on(slot, &pick(13))
            }],
            &pick(2),
        ),
        NodeType::Set => {
            let value = [json!("{a} and {b}"), json!(7), json!(false), Value::Null]
                [b[11] as usize % 4]
                .clone();
            NodeDef::set(&id, slot, value, &pick(2))
        }
        NodeType::Dtmf => NodeDef::dtmf(&id, ["12#", "{a}", "*9"][b[11] as usize % 3], &pick(2)),
        NodeType::Hangup => NodeDef::hangup(&id, b[1].is_multiple_of(2).then(|| text(1)), outcome),
        NodeType::Transfer => NodeDef {
            on_failure: b[12].is_multiple_of(2).then(|| pick(2)),
            ..NodeDef::transfer(
                &id,
                b[1].is_multiple_of(2).then(|| text(1)),
                ["+14155550100", "{a}"][b[11] as usize % 2],
                outcome,
            )
        },
    }
}

/// Something the caller, the line or the pipeline does between turns.
#[derive(Debug, Clone)]
enum Step {
    Say(String),
    Key(String),
    Silence,
    Result(bool),
    BargeIn(String),
    Nothing,
}

const SAID: &[&str] = &[
    "yes",
    "No thanks.",
    "Um, one two three.",
    "four one five five five five oh one oh oh",
    "My name is Ada Lovelace.",
    "Sales please.",
    "acknowledged",
    "twenty three",
    "",
    "uh",
    "this number",
    "plus four four two oh seven nine four six oh nine five eight",
];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => prop::sample::select(SAID).prop_map(|s| Step::Say(s.to_owned())),
        1 => "\\PC{0,30}".prop_map(Step::Say),
        2 => "[0-9*#A-Dx]{1,6}".prop_map(Step::Key),
        2 => Just(Step::Silence),
        2 => any::<bool>().prop_map(Step::Result),
        1 => prop::sample::select(SAID).prop_map(|s| Step::BargeIn(s.to_owned())),
        1 => Just(Step::Nothing),
    ]
}

/// Reads a reply (filled before `respond` returns) and checks its shape.
fn read(session: &mut dyn BrainSession, conv: &Conversation) -> (String, Vec<ToolCall>) {
    let mut rx = session.respond(conv);
    let mut text = String::new();
    let mut tools = Vec::new();
    let mut events = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        events.push(ev);
    }
    assert!(events.len() <= 200, "{} events", events.len());
    assert_eq!(events.last(), Some(&BrainEvent::Done), "{events:?}");
    for ev in &events[..events.len() - 1] {
        match ev {
            BrainEvent::Text(t) => {
                assert!(!t.trim().is_empty());
                text.push_str(t);
            }
            BrainEvent::ToolCall(c) => {
                match c.name.as_str() {
                    "end_call" => assert_eq!(c.arguments, json!({})),
                    "transfer_call" => {
                        let n = c.arguments["number"].as_str().unwrap_or("");
                        assert!(n.starts_with('+') && n.len() >= 8, "{n}");
                    }
                    "send_dtmf" => {
                        let d = c.arguments["digits"].as_str().unwrap_or("");
                        assert!(!d.is_empty() && d.len() <= 32, "{d}");
                    }
                    other => panic!("unknown tool {other}"),
                }
                tools.push(c.clone());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    (text, tools)
}

fn drive(flow: Flow, steps: &[Step]) {
    let ids: Vec<String> = flow
        .definition()
        .nodes
        .iter()
        .map(|n| n.id.clone())
        .collect();
    let brain = FlowBrain::new(flow);
    let mut session = brain.start_call(&CallInfo {
        call_id: "p".into(),
        from: "+14155550123".into(),
        to: "+14155550199".into(),
        direction: "outbound".into(),
    });
    let mut conv = Conversation::default();
    let mut last_tool: Option<String> = None;
    for (k, s) in steps.iter().enumerate() {
        if k > 0 {
            match s {
                Step::Say(t) => conv.messages.push(Message::User { text: t.clone() }),
                Step::Key(d) => conv.messages.push(Message::Dtmf { digits: d.clone() }),
                Step::Silence => conv.messages.push(Message::Event {
                    text: "silence".into(),
                }),
                Step::Result(ok) => {
                    if let Some(id) = &last_tool {
                        let content = if *ok {
                            r#"{"ok":true}"#
                        } else {
                            r#"{"ok":false}"#
                        };
                        conv.messages.push(Message::Tool {
                            call_id: id.clone(),
                            content: content.into(),
                        });
                    }
                }
                Step::BargeIn(t) => {
                    if let Some(Message::Assistant {
                        interrupted,
                        tool_calls,
                        ..
                    }) = conv.messages.last_mut()
                    {
                        *interrupted = true;
                        tool_calls.clear();
                    }
                    conv.messages.push(Message::User { text: t.clone() });
                }
                Step::Nothing => {}
            }
        }
        let (text, tools) = read(session.as_mut(), &conv);
        last_tool = tools.last().map(|c| c.id.clone()).or(last_tool);
        conv.messages.push(Message::Assistant {
            text,
            interrupted: false,
            tool_calls: tools,
        });
        let o = session.outcome().expect("flows report an outcome");
        assert!(
            ["achieved", "partial", "not_achieved"].contains(&o.outcome.as_str()),
            "{o:?}"
        );
        assert!(ids.contains(&o.end_state), "{o:?}");
        assert!(o.data.is_object());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_definition_makes_the_checks_panic(v in json_ish()) {
        let _ = check_model(&json!({"provider": "flow", "flow": v.clone()}));
        if let Ok(def) = parse(&v) {
            let problems = validate(&def);
            match Flow::new(def) {
                Ok(flow) => {
                    prop_assert!(problems.is_empty());
                    drive(flow, &[Step::Nothing, Step::Silence, Step::Say("yes".into())]);
                }
                Err(issues) => {
                    prop_assert_eq!(&issues, &problems);
                    prop_assert!(!issues.is_empty());
                    for i in &issues {
                        prop_assert!(i.path == "flow" || i.path.starts_with("flow."), "{}", i);
                        prop_assert!(!i.message.is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn no_conversation_makes_a_flow_panic(def in flow_def(), steps in prop::collection::vec(step(), 1..25)) {
        let problems = validate(&def);
        match Flow::new(def) {
            Ok(flow) => drive(flow, &steps),
            Err(issues) => prop_assert_eq!(issues, problems),
        }
    }
}

#[test]
fn the_generator_makes_a_fair_share_of_valid_flows() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = flow_def();
    let valid = (0..400)
        .filter(|_| {
            let def = strategy.new_tree(&mut runner).unwrap().current();
            validate(&def).is_empty()
        })
        .count();
    assert!(valid >= 40, "only {valid} of 400 generated flows validate");
}
