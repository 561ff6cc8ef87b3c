//! Every problem `validate` reports, at its exact path.

use serde_json::{Value, json};

use crate::agent::flow::builtin::{alert, demo, receptionist, showcase};
use crate::agent::flow::limits::{MAX_NODES, MAX_RETRIES};
use crate::agent::flow::{Flow, FlowDef, parse, validate};

/// A small valid flow: greet, ask a name, say goodbye.
fn base() -> Value {
    json!({"start": "hello", "nodes": [
        {"id": "hello", "type": "say", "text": "Hi.", "next": "ask"},
        {"id": "ask", "type": "capture", "prompt": "Your name?", "slot": "name",
         "expect": "name", "next": "bye", "no_match": {"next": "bye"}},
        {"id": "bye", "type": "hangup", "text": "Bye {name}.", "outcome": "achieved"}
    ]})
}

/// The problems with `flow`, as `(path, message)`.
fn issues(flow: Value) -> Vec<(String, String)> {
    match Flow::from_json(&flow) {
        Ok(_) => Vec::new(),
        Err(issues) => issues.into_iter().map(|i| (i.path, i.message)).collect(),
    }
}

/// Asserts that `flow` has exactly the one problem `(path, message)`.
#[track_caller]
fn only(flow: Value, path: &str, message: &str) {
    assert_eq!(issues(flow), [(path.to_owned(), message.to_owned())]);
}

/// Asserts that `flow` has, among others, a problem at `path` whose
/// message contains `part`.
#[track_caller]
fn has(flow: Value, path: &str, part: &str) {
    let all = issues(flow);
    assert!(
        all.iter().any(|(p, m)| p == path && m.contains(part)),
        "no {path}: …{part}… in {all:#?}"
    );
}

#[test]
fn the_base_flow_and_the_built_ins_are_valid() {
    assert_eq!(issues(base()), []);
    for def in [
        demo(),
        receptionist("Acme {Dental}", None),
        receptionist("Acme", Some("44")),
        alert("Down."),
        showcase(),
    ] {
        assert_eq!(validate(&def), [], "{def:?}");
        // They print as JSON and read back the same.
        let json = serde_json::to_value(&def).unwrap();
        assert_eq!(parse(&json).unwrap(), def);
    }
}

#[test]
fn unknown_references_name_the_field_and_the_id() {
    let mut f = base();
    f["nodes"][1]["next"] = json!("thanks");
    f["nodes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "thanks", "type": "say", "text": "Thanks.", "next": "confirm"}));
    only(f, "flow.nodes.3.next", "unknown node \"confirm\"");

    let mut f = base();
    f["nodes"][1]["no_match"]["next"] = json!("nowhere");
    has(f, "flow.nodes.1.no_match.next", "unknown node \"nowhere\"");
}

#[test]
fn the_start_node_is_required_and_must_exist() {
    let mut f = base();
    f["start"] = json!("");
    only(f, "flow.start", "required: the id of the first node");
    let mut f = base();
    f.as_object_mut().unwrap().remove("start");
    only(f, "flow.start", "required: the id of the first node");
    let mut f = base();
    f["start"] = json!("nope");
    only(f, "flow.start", "unknown node \"nope\"");
}

#[test]
fn unreachable_nodes_are_errors() {
    let mut f = base();
    f["nodes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "orphan", "type": "say", "text": "Never.", "next": "bye"}));
    only(
        f,
        "flow.nodes.3",
        "node \"orphan\" is never reached from the start node \"hello\"",
    );
}

#[test]
fn texts_must_not_be_empty() {
    let mut f = base();
    f["nodes"][0]["text"] = json!("  ");
    only(f, "flow.nodes.0.text", "must not be empty");
    let mut f = base();
    f["nodes"][1]["prompt"] = json!("");
    only(f, "flow.nodes.1.prompt", "must not be empty");
    let mut f = base();
    f["nodes"][1]["no_match"]["reprompt"] = json!("");
    only(f, "flow.nodes.1.no_match.reprompt", "must not be empty");
    let mut f = base();
    f["nodes"][0]["text"] = json!("x".repeat(4_001));
    only(f, "flow.nodes.0.text", "must be at most 4000 characters");
}

#[test]
fn templates_must_parse_and_read_slots_that_exist() {
    let mut f = base();
    f["nodes"][2]["text"] = json!("Bye {nmae}.");
    only(
        f,
        "flow.nodes.2.text",
        "uses {nmae}, but no node sets slot \"nmae\"",
    );
    let mut f = base();
    f["nodes"][2]["text"] = json!("Bye {name.");
    only(
        f,
        "flow.nodes.2.text",
        "has a { that is not closed (write {{ for a brace)",
    );
    let mut f = base();
    f["nodes"][2]["text"] = json!("Bye {call.from} {{ok}}.");
    assert_eq!(issues(f), []);
}

#[test]
fn slot_names_are_checked() {
    let mut f = base();
    f["nodes"][1]["slot"] = json!("Name");
    let all = issues(f);
    assert!(all.contains(&(
        "flow.nodes.1.slot".into(),
        "\"Name\" is not a slot name: use lowercase letters, digits and _, starting with a letter or _, at most 64".into()
    )), "{all:#?}");
    // And {name} is now read but set by nobody.
    assert!(
        all.iter().any(|(p, _)| p == "flow.nodes.2.text"),
        "{all:#?}"
    );
}

#[test]
fn loops_that_never_listen_are_errors() {
    let f = json!({"start": "a", "nodes": [
        {"id": "a", "type": "say", "text": "Hi.", "next": "b"},
        {"id": "b", "type": "branch", "cases": [{"slot": "name", "is_set": true, "next": "ask"}],
         "default": "a"},
        {"id": "ask", "type": "capture", "prompt": "Name?", "slot": "name", "expect": "name",
         "next": "bye", "no_input": {"next": "bye"}},
        {"id": "bye", "type": "hangup", "outcome": "achieved"}
    ]});
    only(
        f,
        "flow.nodes.0",
        "loops through \"a\" → \"b\" → \"a\" without listening to the caller: the call would talk forever",
    );

    let mut f = base();
    f["nodes"][0]["next"] = json!("spin");
    f["nodes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "spin", "type": "goto", "next": "spin"}));
    has(f, "flow.nodes.3", "loops through \"spin\" → \"spin\"");

    // A loop through a question is a menu, not a problem.
    let menu = json!({"start": "menu", "nodes": [
        {"id": "menu", "type": "ask", "prompt": "1 to repeat, 2 to leave.", "choices": [
            {"dtmf": "1", "next": "again"}, {"dtmf": "2", "next": "bye"}],
         "no_match": {"next": "bye"}},
        {"id": "again", "type": "say", "text": "Again.", "next": "menu"},
        {"id": "bye", "type": "hangup", "outcome": "partial"}
    ]});
    assert_eq!(issues(menu), []);
}

#[test]
fn ids_are_unique_and_well_formed() {
    let mut f = base();
    f["nodes"][2]["id"] = json!("hello");
    let all = issues(f);
    assert!(all.contains(&(
        "flow.nodes.2.id".into(),
        "\"hello\" is also the id of node 0".into()
    )));
    let mut f = base();
    f["nodes"][2]["id"] = json!("good bye");
    has(f, "flow.nodes.2.id", "is not a node id");
    let mut f = base();
    f["nodes"][2]["id"] = json!("");
    has(f, "flow.nodes.2.id", "required");
}

#[test]
fn each_type_has_required_fields_and_refuses_the_others() {
    let mut f = base();
    f["nodes"][0].as_object_mut().unwrap().remove("next");
    has(f, "flow.nodes.0.next", "required for a say node");
    let mut f = base();
    f["nodes"][0]["prompt"] = json!("Huh?");
    only(f, "flow.nodes.0.prompt", "is not used by a say node");
    let mut f = base();
    f["nodes"][1]["min_length"] = json!(3);
    only(
        f,
        "flow.nodes.1.min_length",
        "is not used when a capture expects a name",
    );
    let mut f = base();
    f["nodes"][1]["outcome"] = json!("achieved");
    only(f, "flow.nodes.1.outcome", "is not used by a capture node");
    let mut f = base();
    f["nodes"][2].as_object_mut().unwrap().remove("outcome");
    only(f, "flow.nodes.2.outcome", "required for a hangup node");
    let mut f = base();
    f["nodes"][0].as_object_mut().unwrap().remove("type");
    has(f, "flow.nodes.0.type", "required");
}

fn menu(choices: Value) -> Value {
    json!({"start": "menu", "nodes": [
        {"id": "menu", "type": "ask", "prompt": "Which?", "choices": choices,
         "no_match": {"next": "bye"}},
        {"id": "bye", "type": "hangup", "outcome": "partial"}
    ]})
}

#[test]
fn choices_are_checked() {
    only(
        menu(json!([])),
        "flow.nodes.0.choices",
        "must have at least one choice",
    );
    only(
        menu(json!([{"next": "bye"}])),
        "flow.nodes.0.choices.0",
        "listens for nothing: give it keywords, dtmf or an intent",
    );
    only(
        menu(
            json!([{"keywords": ["Sales"], "next": "bye"}, {"keywords": ["sales!"], "next": "bye"}]),
        ),
        "flow.nodes.0.choices.1.keywords.0",
        "\"sales!\" is also a keyword of choice 0",
    );
    only(
        menu(json!([{"keywords": ["sales", "um..."], "next": "bye"}])),
        "flow.nodes.0.choices.0.keywords.1",
        "has no words to listen for",
    );
    only(
        menu(json!([{"dtmf": "1", "next": "bye"}, {"dtmf": "1", "next": "bye"}])),
        "flow.nodes.0.choices.1.dtmf",
        "\"1\" is also the dtmf of choice 0",
    );
    only(
        menu(json!([{"dtmf": "1", "next": "bye"}, {"dtmf": "12", "next": "bye"}])),
        "flow.nodes.0.choices.1.dtmf",
        "\"12\" and choice 0's \"1\" begin alike: the shorter would always be taken first",
    );
    only(
        menu(json!([{"dtmf": "1#", "next": "bye"}])),
        "flow.nodes.0.choices.0.dtmf",
        "must be 1 to 8 keys from 0-9, * and A-D (# ends what the caller keys)",
    );
    only(
        menu(
            json!([{"intent": "yes", "next": "bye"}, {"intent": "yes", "keywords": ["ok"], "next": "bye"}]),
        ),
        "flow.nodes.0.choices.1.intent",
        "is also the intent of choice 0",
    );
    only(
        menu(json!([{"intent": "no", "next": "gone"}])),
        "flow.nodes.0.choices.0.next",
        "unknown node \"gone\"",
    );
}

#[test]
fn retries_and_handlers_are_checked() {
    let mut f = base();
    f["nodes"][1]["retries"] = json!(MAX_RETRIES + 1);
    only(f, "flow.nodes.1.retries", "must be at most 10");
    let mut f = base();
    f["nodes"][1].as_object_mut().unwrap().remove("no_match");
    only(
        f,
        "flow.nodes.1.no_match",
        "needs a next: where the call goes when the retries run out (no_input and no_match share it when only one has it)",
    );
    let f = json!({"start": "m", "nodes": [
        {"id": "m", "type": "message", "prompt": "Go ahead.", "slot": "msg", "next": "bye"},
        {"id": "bye", "type": "hangup", "text": "Got {msg}.", "outcome": "achieved"}
    ]});
    has(f, "flow.nodes.0.no_input", "needs a next");
}

#[test]
fn capture_limits_are_checked() {
    let digits = |extra: Value| {
        let mut f = base();
        f["nodes"][1]["expect"] = json!("digits");
        for (k, v) in extra.as_object().unwrap() {
            f["nodes"][1][k] = v.clone();
        }
        f
    };
    assert_eq!(
        issues(digits(json!({"min_length": 4, "max_length": 4}))),
        []
    );
    only(
        digits(json!({"min_length": 5, "max_length": 3})),
        "flow.nodes.1.min_length",
        "must be at most max_length (3)",
    );
    only(
        digits(json!({"max_length": 0})),
        "flow.nodes.1.max_length",
        "must be between 1 and 32",
    );
    let mut f = base();
    f["nodes"][1]["expect"] = json!("phone");
    f["nodes"][1]["country_code"] = json!("0");
    only(
        f,
        "flow.nodes.1.country_code",
        "must be a country calling code of 1 to 3 digits (1, 44, 353)",
    );
    let mut f = base();
    f["nodes"][1]["expect"] = json!("number");
    f["nodes"][1]["min"] = json!(5);
    f["nodes"][1]["max"] = json!(1);
    only(f, "flow.nodes.1.min", "must be at most max (1)");
    let mut f = base();
    f["nodes"][1]["expect"] = json!("text");
    f["nodes"][1]["max_length"] = json!(5_000);
    only(f, "flow.nodes.1.max_length", "must be between 1 and 2000");
}

#[test]
fn set_and_branch_are_checked() {
    let flow = |set_value: Value, case: Value| {
        json!({"start": "s", "nodes": [
            {"id": "s", "type": "set", "slot": "x", "value": set_value, "next": "b"},
            {"id": "b", "type": "branch", "cases": [case], "default": "bye"},
            {"id": "bye", "type": "hangup", "outcome": "achieved"}
        ]})
    };
    let ok_case = json!({"slot": "x", "equals": 1, "next": "bye"});
    for v in [
        json!("a {x}"),
        json!(3),
        json!(true),
        json!(null),
        json!(""),
    ] {
        assert_eq!(issues(flow(v, ok_case.clone())), []);
    }
    only(
        flow(json!(1.5), ok_case.clone()),
        "flow.nodes.0.value",
        "must be text, a whole number, true/false or null",
    );
    only(
        flow(json!([1]), ok_case.clone()),
        "flow.nodes.0.value",
        "must be text, a whole number, true/false or null",
    );
    only(
        flow(json!(1), json!({"slot": "x", "next": "bye"})),
        "flow.nodes.1.cases.0",
        "tests nothing: give it equals, one_of, is_set, min or max",
    );
    only(
        flow(
            json!(1),
            json!({"slot": "x", "equals": {"a": 1}, "next": "bye"}),
        ),
        "flow.nodes.1.cases.0.equals",
        "must be text, a whole number or true/false",
    );
    only(
        flow(json!(1), json!({"slot": "x", "one_of": [], "next": "bye"})),
        "flow.nodes.1.cases.0.one_of",
        "must have 1 to 64 values",
    );
    only(
        flow(
            json!(1),
            json!({"slot": "y", "is_set": true, "next": "bye"}),
        ),
        "flow.nodes.1.cases.0.slot",
        "no node sets slot \"y\"",
    );
    only(
        flow(
            json!(1),
            json!({"slot": "x", "min": 3, "max": 2, "next": "bye"}),
        ),
        "flow.nodes.1.cases.0.min",
        "must be at most max (2)",
    );
}

#[test]
fn transfer_and_dtmf_values_are_checked() {
    let flow = |node: Value| json!({"start": "t", "nodes": [node, {"id": "bye", "type": "hangup", "outcome": "partial"}]});
    assert_eq!(
        issues(flow(
            json!({"id": "t", "type": "transfer", "number": "+14155550100",
            "outcome": "achieved", "on_failure": "bye"})
        )),
        []
    );
    only(
        flow(
            json!({"id": "t", "type": "transfer", "number": "555-0100", "outcome": "achieved",
            "on_failure": "bye"}),
        ),
        "flow.nodes.0.number",
        "must be an E.164 number such as +14155550100, or a {slot} that holds one",
    );
    has(
        flow(
            json!({"id": "t", "type": "transfer", "number": "+14155550100",
            "outcome": "achieved", "on_failure": "nope"}),
        ),
        "flow.nodes.0.on_failure",
        "unknown node \"nope\"",
    );
    only(
        flow(json!({"id": "t", "type": "dtmf", "digits": "12x", "next": "bye"})),
        "flow.nodes.0.digits",
        "must be 1 to 32 keys from 0-9, *, # and A-D",
    );
}

#[test]
fn a_flow_must_be_able_to_end() {
    let f = json!({"start": "menu", "nodes": [
        {"id": "menu", "type": "ask", "prompt": "Say hi.", "choices": [
            {"keywords": ["hi"], "next": "menu"}], "no_match": {"next": "menu"}}
    ]});
    only(
        f,
        "flow.nodes",
        "has no hangup or transfer node, so the call could never end",
    );
}

#[test]
fn node_count_is_bounded() {
    let mut f = json!({"start": "x", "nodes": []});
    let all = issues(f.clone());
    assert!(all.contains(&("flow.nodes".into(), "must have at least one node".into())));
    assert!(all.contains(&("flow.start".into(), "unknown node \"x\"".into())));
    let nodes: Vec<Value> = (0..=MAX_NODES)
        .map(|i| json!({"id": format!("n{i}"), "type": "goto", "next": "n0"}))
        .collect();
    f["nodes"] = Value::Array(nodes);
    only(f, "flow.nodes", "must have at most 500 nodes");
}

#[test]
fn every_problem_is_reported_at_once() {
    let f = json!({"start": "hello", "nodes": [
        {"id": "hello", "type": "say", "text": "", "next": "ask"},
        {"id": "ask", "type": "capture", "prompt": "Name?", "slot": "Bad", "next": "byee",
         "no_match": {"next": "bye"}},
        {"id": "bye", "type": "hangup", "text": "Bye.", "outcome": "achieved", "next": "hello"}
    ]});
    let paths: Vec<String> = issues(f).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "flow.nodes.0.text",
            "flow.nodes.1.next",
            "flow.nodes.1.slot",
            "flow.nodes.2.next",
        ]
    );
}

#[test]
fn validate_and_flow_new_agree() {
    let def: FlowDef = parse(&base()).unwrap();
    assert!(validate(&def).is_empty());
    assert!(Flow::new(def).is_ok());
    let mut bad = base();
    bad["start"] = json!("nope");
    let def = parse(&bad).unwrap();
    assert_eq!(validate(&def), Flow::new(def).unwrap_err());
}
