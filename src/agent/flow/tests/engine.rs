//! The other node types and the pipeline's edge cases: transfers, keys
//! sent, slots set and tested, captures of numbers and yes/no, trimmed
//! history, cancelled replies.

use serde_json::json;

use super::{Call, Turn};
use crate::agent::flow::builtin::showcase;
use crate::agent::flow::def::{CaseDef, ChoiceDef, Expect, FlowDef, HandlerDef, NodeDef, Outcome};
use crate::agent::flow::{FlowBrain, check_model};
use crate::agent::provider::{Brain, CallInfo, Conversation, Message};

const MENU: &str = "For sales press 1, for an order press 2, or say operator.";

#[tokio::test]
async fn a_transfer_that_works_ends_the_flow() {
    let mut call = Call::new(showcase());
    call.reply().await.says(MENU);
    call.user("Sales, please.");
    let t = call.reply().await;
    assert_eq!(t.text(), "Connecting you to sales.");
    assert_eq!(
        t.calls(),
        [("transfer_call", &json!({"number": "+14155550100"}))]
    );
    // Until the result says otherwise, the transfer is the outcome.
    call.ends("achieved", "to_sales", json!({}));
    call.result(&t.tools[0].id, r#"{"ok": true}"#);
    call.reply().await.silent();
    call.ends("achieved", "to_sales", json!({}));
}

#[tokio::test]
async fn a_failed_transfer_goes_on_failure() {
    let mut call = Call::new(showcase());
    call.reply().await;
    call.dtmf("1");
    let t = call.reply().await;
    call.result(&t.tools[0].id, r#"{"ok": false, "error": "busy"}"#);
    call.reply().await.hangs_up("Sales is busy. Goodbye.");
    call.ends("partial", "hangup", json!({}));
}

#[tokio::test]
async fn a_transfer_cut_off_before_it_went_out_is_made_again() {
    let mut call = Call::new(showcase());
    call.reply().await;
    call.dtmf("1");
    let first = call.reply().await;
    call.barge_in("Connecting").user("hello?");
    let again = call.reply().await;
    assert_eq!(again.text(), "Connecting you to sales.");
    assert_eq!(again.calls(), first.calls());
    assert_ne!(again.tools[0].id, first.tools[0].id);
    // Made, but no result yet: the flow waits quietly.
    call.user("hello?");
    call.reply().await.silent();
}

#[tokio::test]
async fn keys_are_sent_and_the_flow_goes_on_after_the_result() {
    let mut call = Call::new(showcase());
    call.reply().await;
    call.user("Operator.");
    let t = call.reply().await;
    assert_eq!(t.texts, Vec::<String>::new());
    assert_eq!(t.calls(), [("send_dtmf", &json!({"digits": "100#"}))]);
    call.result(&t.tools[0].id, "sent");
    call.reply().await.hangs_up("Goodbye.");
}

#[tokio::test]
async fn digits_are_captured_set_into_another_slot_and_read_back() {
    let mut call = Call::new(showcase());
    call.reply().await;
    call.dtmf("2");
    call.reply()
        .await
        .says("Please key in or say your order number.");
    call.dtmf("123456");
    let t = call.reply().await;
    assert_eq!(t.texts, ["Order 1 2 3 4 5 6, thank you. ", "Goodbye."]);
    call.ends(
        "partial",
        "hangup",
        json!({"order": "123456", "topic": "order 123456"}),
    );

    let mut call = Call::new(showcase());
    call.reply().await;
    call.user("My order");
    call.reply().await;
    call.user("It's oh one two, three four five.");
    call.reply()
        .await
        .hangs_up("Order 0 1 2 3 4 5, thank you. Goodbye.");
}

#[tokio::test]
async fn the_wrong_number_of_digits_is_no_match() {
    let mut call = Call::new(showcase());
    call.reply().await;
    call.dtmf("2");
    call.reply().await;
    call.dtmf("12345#");
    call.reply()
        .await
        .says("Order numbers have six digits. Please try again.");
    // Typed ahead: the first six keys are the entry.
    call.dtmf("1234567");
    call.reply()
        .await
        .hangs_up("Order 1 2 3 4 5 6, thank you. Goodbye.");

    let mut call = Call::new(showcase());
    call.reply().await;
    call.dtmf("2");
    call.reply().await;
    call.user("one two three");
    call.reply()
        .await
        .says("Order numbers have six digits. Please try again.");
    // One retry, then back to the menu.
    call.user("I don't know it");
    call.reply().await.says(MENU);
    call.ends("not_achieved", "menu", json!({}));
}

/// A flow asking for a number of guests, then yes/no, then transferring
/// to a number the caller gives.
fn booking() -> FlowDef {
    let mut guests = NodeDef::capture(
        "guests",
        "How many guests?",
        "guests",
        Expect::Number,
        "big",
    )
    .retrying(
        1,
        HandlerDef::new(None, Some("bye")),
        HandlerDef::new(Some("Between 1 and 20 guests, please."), None),
    );
    guests.min = Some(1);
    guests.max = Some(20);
    FlowDef {
        start: "guests".into(),
        nodes: vec![
            guests,
            NodeDef::branch(
                "big",
                vec![CaseDef {
                    min: Some(8),
                    ..CaseDef::on("guests", "terrace")
                }],
                "phone",
            ),
            NodeDef::capture(
                "terrace",
                "Would you like the terrace?",
                "terrace",
                Expect::YesNo,
                "terrace_no",
            )
            .retrying(0, HandlerDef::new(None, Some("bye")), HandlerDef::default()),
            NodeDef::branch(
                "terrace_no",
                vec![CaseDef {
                    equals: Some(json!("no")),
                    ..CaseDef::on("terrace", "clear")
                }],
                "phone",
            ),
            NodeDef::set("clear", "guests", json!(null), "phone"),
            NodeDef::capture(
                "phone",
                "Which number should I put you through to?",
                "target",
                Expect::Phone,
                "copy",
            )
            .retrying(0, HandlerDef::new(None, Some("bye")), HandlerDef::default()),
            NodeDef::set("copy", "dial", json!("{target}"), "connect"),
            NodeDef::transfer(
                "connect",
                Some("Putting you through to {dial}."),
                "{dial}",
                Outcome::Achieved,
            ),
            NodeDef::hangup("bye", None, Outcome::NotAchieved),
        ],
    }
}

#[tokio::test]
async fn numbers_yes_no_branches_and_a_transfer_to_a_captured_number() {
    let mut call = Call::new(booking());
    call.reply().await.says("How many guests?");
    call.user("Five hundred.");
    call.reply().await.says("Between 1 and 20 guests, please.");
    call.user("twelve");
    call.reply().await.says("Would you like the terrace?");
    call.dtmf("2");
    call.reply()
        .await
        .says("Which number should I put you through to?");
    // "no" cleared the guests.
    call.ends("partial", "phone", json!({"terrace": false}));
    call.user("four one five five five five oh one oh oh");
    let t = call.reply().await;
    assert_eq!(t.text(), "Putting you through to 1, 4 1 5, 5 5 5, 0 1 0 0.");
    assert_eq!(
        t.calls(),
        [("transfer_call", &json!({"number": "+14155550100"}))]
    );
    call.ends(
        "achieved",
        "connect",
        json!({"terrace": false, "target": "+14155550100", "dial": "+14155550100"}),
    );
}

#[tokio::test]
async fn a_small_party_skips_the_terrace_and_silence_hangs_up_quietly() {
    let mut call = Call::new(booking());
    call.reply().await;
    call.user("Um, three please.");
    call.reply()
        .await
        .says("Which number should I put you through to?");
    call.silence();
    let t = call.reply().await;
    assert_eq!(t.texts, Vec::<String>::new());
    assert_eq!(t.calls(), [("end_call", &json!({}))]);
    call.ends("not_achieved", "bye", json!({"guests": 3}));
}

#[tokio::test]
async fn a_transfer_to_a_slot_without_a_number_ends_the_call() {
    let def = FlowDef {
        start: "ask".into(),
        nodes: vec![
            NodeDef::capture("ask", "Where to?", "dest", Expect::Text, "go").retrying(
                0,
                HandlerDef::new(None, Some("go")),
                HandlerDef::default(),
            ),
            NodeDef::transfer("go", None, "{dest}", Outcome::Achieved),
        ],
    };
    let mut call = Call::new(def);
    call.reply().await;
    call.user("The moon.");
    let t = call.reply().await;
    assert_eq!(t.calls(), [("end_call", &json!({}))]);
    call.ends("not_achieved", "go", json!({"dest": "The moon."}));
}

#[tokio::test]
async fn the_flow_reads_only_what_is_new_even_if_history_was_trimmed() {
    let mut call = Call::new(crate::agent::flow::builtin::demo());
    call.reply().await;
    call.user("Ada");
    call.reply().await;
    // The pipeline keeps only the last reply and what followed.
    let last = call.conv.messages.pop();
    call.conv.messages.clear();
    call.conv.messages.extend(last);
    call.user("Call me.");
    call.reply()
        .await
        .hangs_up("Thank you, Ada. I've got your message. Goodbye!");
}

#[tokio::test]
async fn a_turn_with_only_tool_results_does_not_count_as_no_input() {
    let mut call = Call::new(crate::agent::flow::builtin::demo());
    call.reply().await;
    call.result("elsewhere_1", "{}");
    call.reply().await.silent();
    call.user("Ada");
    call.reply()
        .await
        .says("What message would you like to leave?");
}

#[tokio::test]
async fn a_reply_dropped_unread_still_moves_the_flow() {
    let brain = FlowBrain::demo();
    let mut session = brain.start_call(&CallInfo::default());
    let mut conv = Conversation::default();
    // The pipeline cancels the greeting before reading it…
    drop(session.respond(&conv));
    conv.messages.push(Message::Assistant {
        text: String::new(),
        interrupted: true,
        tool_calls: vec![],
    });
    // …because the caller was already talking.
    conv.messages.push(Message::User {
        text: "This is Ada.".into(),
    });
    let mut rx = session.respond(&conv);
    let mut texts = Vec::new();
    while let Some(ev) = rx.recv().await {
        texts.push(ev);
    }
    assert_eq!(
        texts,
        [
            crate::agent::provider::BrainEvent::Text(
                "What message would you like to leave?".into()
            ),
            crate::agent::provider::BrainEvent::Done
        ]
    );
}

#[tokio::test]
async fn agents_models_become_brains() {
    let model = json!({"provider": "flow", "flow": serde_json::to_value(showcase()).unwrap()});
    assert_eq!(check_model(&model), []);
    let brain = FlowBrain::from_model(&model).unwrap();
    assert_eq!(brain.flow().definition(), &showcase());
    assert_eq!(
        brain.flow().transfer_numbers(),
        [("flow.nodes.4.number".to_owned(), "+14155550100".to_owned())]
    );
    let e = FlowBrain::from_model(&json!({"provider": "flow"})).unwrap_err();
    assert_eq!(e[0].path, "flow");
    let e = FlowBrain::from_model(&json!({"provider": "flow", "flow": {"start": 1}})).unwrap_err();
    assert_eq!(e[0].path, "flow.start");
}

#[tokio::test]
async fn each_menu_key_leads_where_it_says() {
    let mut seen = std::collections::BTreeSet::new();
    for keys in ["1", "2", "0"] {
        let mut call = Call::new(showcase());
        call.reply().await;
        call.dtmf(keys);
        let t: Turn = call.reply().await;
        seen.insert(call.outcome().end_state);
        assert!(!t.tools.is_empty() || !t.texts.is_empty());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["ext", "order", "to_sales"]
    );
}

#[tokio::test]
async fn a_longer_key_choice_waits_for_its_last_key() {
    let def = FlowDef {
        start: "menu".into(),
        nodes: vec![
            NodeDef::ask(
                "menu",
                "Extension?",
                vec![ChoiceDef::to("a").dtmf("1"), ChoiceDef::to("b").dtmf("21")],
            )
            .retrying(
                1,
                HandlerDef::new(None, Some("bye")),
                HandlerDef::new(Some("No such extension."), None),
            ),
            NodeDef::hangup("a", Some("One."), Outcome::Achieved),
            NodeDef::hangup("b", Some("Twenty-one."), Outcome::Achieved),
            NodeDef::hangup("bye", None, Outcome::NotAchieved),
        ],
    };
    let mut call = Call::new(def.clone());
    call.reply().await.says("Extension?");
    call.dtmf("2");
    call.reply().await.silent();
    call.dtmf("1");
    call.reply().await.hangs_up("Twenty-one.");

    // Silence after the first key of a longer entry: no such choice.
    let mut call = Call::new(def);
    call.reply().await;
    call.dtmf("2");
    call.reply().await.silent();
    call.silence();
    call.reply().await.says("No such extension.");
    // The same choice, said.
    call.user("Twenty one.");
    call.reply().await.hangs_up("Twenty-one.");
}

/// The example in `docs/flows.md`.
fn documented_example() -> serde_json::Value {
    let doc = include_str!("../../../../docs/flows.md");
    let start = doc
        .find("```json")
        .expect("docs/flows.md has a JSON example")
        + "```json".len();
    let len = doc[start..]
        .find("```")
        .expect("the example block is closed");
    serde_json::from_str(&doc[start..start + len]).expect("the example is JSON")
}

#[tokio::test]
async fn the_documented_example_validates_and_runs() {
    let model = documented_example();
    assert_eq!(check_model(&model), []);
    let def = crate::agent::flow::parse(&model["flow"]).unwrap();

    let mut call = Call::new(def.clone());
    call.reply().await.says(
        "Thanks for calling Acme Dental. To book an appointment, press 1 or say appointment. \
         To leave a message, press 2 or say message.",
    );
    call.user("I'd like to leave a message.");
    call.reply().await.says("What's your name?");
    call.user("Ada");
    call.reply()
        .await
        .says("What number should we call you back on?");
    call.user("415 555 0100");
    call.reply().await.says("Go ahead with your message.");
    call.user("Please call me.");
    call.reply()
        .await
        .hangs_up("Thanks, Ada. We'll call you back. Goodbye!");
    call.ends(
        "achieved",
        "bye_named",
        json!({"name": "Ada", "callback": "+14155550100", "message": "Please call me."}),
    );

    let mut call = Call::new(def);
    call.reply().await;
    call.dtmf("1");
    let t = call.reply().await;
    assert_eq!(t.text(), "Putting you through to the front desk.");
    assert_eq!(
        t.calls(),
        [("transfer_call", &json!({"number": "+14155550100"}))]
    );
    call.result(&t.tools[0].id, r#"{"status": "busy"}"#);
    call.reply()
        .await
        .says("The front desk is busy, so let me take a message. What's your name?");
}

#[tokio::test]
async fn the_fallback_flow_apologises_and_hangs_up() {
    let flow = crate::agent::flow::Flow::hang_up("Sorry, {not} here.");
    let brain = FlowBrain::new(flow);
    let mut session = brain.start_call(&CallInfo::default());
    let mut rx = session.respond(&Conversation::default());
    let mut events = Vec::new();
    while let Some(ev) = rx.recv().await {
        events.push(ev);
    }
    assert_eq!(
        events[0],
        crate::agent::provider::BrainEvent::Text("Sorry, {not} here.".into())
    );
    assert!(
        matches!(&events[1], crate::agent::provider::BrainEvent::ToolCall(c) if c.name == "end_call")
    );
    assert_eq!(events.len(), 3);
    let o = session.outcome().unwrap();
    assert_eq!(
        (o.outcome.as_str(), o.end_state.as_str()),
        ("not_achieved", "bye")
    );
    assert_eq!(crate::agent::flow::validate(brain.flow().definition()), []);
}
