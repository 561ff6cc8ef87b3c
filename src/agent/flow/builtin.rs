//! The flows Hotline ships: the demo agent, a receptionist and a phone
//! alert. Each is an ordinary [`FlowDef`], so `serde_json::to_string`
//! prints it as an example of the format.

use super::def::{CaseDef, ChoiceDef, Expect, FlowDef, HandlerDef, NodeDef, Outcome, YesNo};
use super::template::escape;

/// The agent behind `sip:agent@…` when nothing is configured: it greets,
/// asks the caller's name and message, reads the name back and hangs up.
///
/// Outcomes: `achieved` with a name and a message, `partial` with a
/// message but no name, `not_achieved` without a message.
pub fn demo() -> FlowDef {
    FlowDef {
        start: "greet".into(),
        nodes: vec![
            NodeDef::say(
                "greet",
                "Hello! You've reached the Hotline demo agent.",
                "ask_name",
            ),
            NodeDef::capture(
                "ask_name",
                "May I have your name, please?",
                "name",
                Expect::Name,
                "ask_message",
            )
            .retrying(
                2,
                HandlerDef::new(
                    Some("Sorry, I didn't hear anything. What's your name?"),
                    Some("ask_message"),
                ),
                HandlerDef::new(
                    Some("Sorry, I didn't catch your name. Please say just your name."),
                    None,
                ),
            ),
            NodeDef {
                retries: Some(2),
                no_input: Some(HandlerDef::new(
                    Some("Sorry, I didn't hear anything. What message would you like to leave?"),
                    Some("bye_no_message"),
                )),
                ..NodeDef::message(
                    "ask_message",
                    "What message would you like to leave?",
                    "message",
                    "check_name",
                )
            },
            NodeDef::branch(
                "check_name",
                vec![CaseDef {
                    is_set: Some(true),
                    ..CaseDef::on("name", "bye_named")
                }],
                "bye_anonymous",
            ),
            NodeDef::hangup(
                "bye_named",
                Some("Thank you, {name}. I've got your message. Goodbye!"),
                Outcome::Achieved,
            ),
            NodeDef::hangup(
                "bye_anonymous",
                Some("Thank you. I've got your message. Goodbye!"),
                Outcome::Partial,
            ),
            NodeDef::hangup(
                "bye_no_message",
                Some("I didn't get a message. Goodbye!"),
                Outcome::NotAchieved,
            ),
        ],
    }
}

/// A receptionist for `business`: takes the caller's name, a callback
/// number (said or keyed; "this number" means the one calling) and a
/// message, reads them back for confirmation, and says goodbye.
/// Numbers said without a country code take `country_code`, or the
/// caller's own when it is `None`.
///
/// Outcomes: `achieved` when confirmed, `partial` when everything was
/// taken but not confirmed, `not_achieved` when the caller could not give
/// a name, a number or a message.
pub fn receptionist(business: &str, country_code: Option<&str>) -> FlowDef {
    let trouble = Some("trouble");
    let mut number = NodeDef::capture(
        "ask_number",
        "What's the best number to call you back on?",
        "callback",
        Expect::Phone,
        "ask_message",
    )
    .retrying(
        2,
        HandlerDef::new(
            Some("Sorry, I didn't hear anything. What number should we call you back on?"),
            trouble,
        ),
        HandlerDef::new(
            Some(
                "Sorry, I didn't get that number. Please say it or key it in, with the area code, then press pound.",
            ),
            None,
        ),
    );
    number.country_code = country_code.map(str::to_owned);
    FlowDef {
        start: "greet".into(),
        nodes: vec![
            NodeDef::say(
                "greet",
                &format!(
                    "Thank you for calling {}. I can take a message for you.",
                    escape(business)
                ),
                "ask_name",
            ),
            NodeDef::capture(
                "ask_name",
                "May I have your name, please?",
                "name",
                Expect::Name,
                "ask_number",
            )
            .retrying(
                2,
                HandlerDef::new(
                    Some("Sorry, I didn't hear anything. May I have your name, please?"),
                    trouble,
                ),
                HandlerDef::new(
                    Some("Sorry, I didn't catch your name. Please say just your name."),
                    None,
                ),
            ),
            number,
            NodeDef {
                retries: Some(2),
                no_input: Some(HandlerDef::new(
                    Some("Sorry, I didn't hear anything. What message would you like to leave?"),
                    trouble,
                )),
                ..NodeDef::message(
                    "ask_message",
                    "And what message would you like to leave?",
                    "message",
                    "confirm",
                )
            },
            NodeDef::ask(
                "confirm",
                "Let me read that back. Your name is {name}, your number is {callback}, \
                 and your message is: {message}. Is that right?",
                vec![
                    ChoiceDef::to("bye").intent(YesNo::Yes).dtmf("1"),
                    ChoiceDef::to("start_over")
                        .intent(YesNo::No)
                        .keywords(&["start over", "start again", "change"])
                        .dtmf("2"),
                ],
            )
            .retrying(
                2,
                HandlerDef::new(
                    Some("Sorry, I didn't hear anything. Is that right? Say yes or no."),
                    Some("bye_unconfirmed"),
                ),
                HandlerDef::new(
                    Some("Sorry, please say yes if that's right, or no to start again."),
                    None,
                ),
            ),
            NodeDef::say("start_over", "No problem, let's start again.", "ask_name"),
            NodeDef::hangup(
                "bye",
                Some("Thank you, {name}. We'll call you back soon. Goodbye!"),
                Outcome::Achieved,
            ),
            NodeDef::hangup(
                "bye_unconfirmed",
                Some("I'll pass your message on as it is. Goodbye!"),
                Outcome::Partial,
            ),
            NodeDef::hangup(
                "trouble",
                Some("Sorry, I'm having trouble hearing you. Please call again later. Goodbye."),
                Outcome::NotAchieved,
            ),
        ],
    }
}

/// A phone alert: reads `text`, then asks the callee to press 1 or say
/// "acknowledge" (any yes works too), or 2 to hear it again.
///
/// Outcomes: `achieved` on acknowledgement; `not_achieved` when the
/// callee does not acknowledge within the retries (or hangs up first).
pub fn alert(text: &str) -> FlowDef {
    let menu = "Press 1 or say acknowledge to acknowledge, 2 to hear it again.";
    FlowDef {
        start: "intro".into(),
        nodes: vec![
            NodeDef::say("intro", "Hello, this is an automated alert.", "alert"),
            NodeDef::say("alert", &escape(text), "ack"),
            NodeDef::ask(
                "ack",
                menu,
                vec![
                    ChoiceDef::to("acknowledged")
                        .keywords(&["acknowledge", "got it", "confirm", "received", "roger"])
                        .intent(YesNo::Yes)
                        .dtmf("1"),
                    ChoiceDef::to("alert")
                        .keywords(&[
                            "again",
                            "repeat",
                            "hear it",
                            "what",
                            "pardon",
                            "say that again",
                        ])
                        .dtmf("2"),
                ],
            )
            .retrying(
                2,
                HandlerDef::new(
                    Some(&format!("Sorry, I didn't hear anything. {menu}")),
                    Some("not_acknowledged"),
                ),
                HandlerDef::new(Some(&format!("Sorry, I didn't understand. {menu}")), None),
            ),
            NodeDef::hangup(
                "acknowledged",
                Some("Thank you. The alert has been acknowledged. Goodbye!"),
                Outcome::Achieved,
            ),
            NodeDef::hangup(
                "not_acknowledged",
                Some("The alert was not acknowledged. Goodbye."),
                Outcome::NotAchieved,
            ),
        ],
    }
}

#[cfg(test)]
/// A flow showing every node type, for the docs and the tests: a menu
/// that takes an order number, transfers to sales (or takes a message
/// when the transfer fails), and keys an extension.
pub(super) fn showcase() -> FlowDef {
    use serde_json::json;

    let mut order = NodeDef::capture(
        "order",
        "Please key in or say your order number.",
        "order",
        Expect::Digits,
        "order_ok",
    )
    .retrying(
        1,
        HandlerDef::new(None, Some("menu")),
        HandlerDef::new(
            Some("Order numbers have six digits. Please try again."),
            None,
        ),
    );
    order.min_length = Some(6);
    order.max_length = Some(6);
    FlowDef {
        start: "menu".into(),
        nodes: vec![
            NodeDef::ask(
                "menu",
                "For sales press 1, for an order press 2, or say operator.",
                vec![
                    ChoiceDef::to("to_sales")
                        .keywords(&["sales", "buy"])
                        .dtmf("1"),
                    ChoiceDef::to("order").keywords(&["order"]).dtmf("2"),
                    ChoiceDef::to("ext").keywords(&["operator"]).dtmf("0"),
                ],
            )
            .retrying(
                2,
                HandlerDef::new(None, Some("bye")),
                HandlerDef::new(Some("Sorry. Press 1 for sales or 2 for an order."), None),
            ),
            order,
            NodeDef::set("order_ok", "topic", json!("order {order}"), "order_said"),
            NodeDef::say("order_said", "Order {order}, thank you.", "bye"),
            NodeDef {
                text: Some("Connecting you to sales.".into()),
                on_failure: Some("sales_busy".into()),
                ..NodeDef::transfer("to_sales", None, "+14155550100", Outcome::Achieved)
            },
            NodeDef::say("sales_busy", "Sales is busy.", "bye"),
            NodeDef::dtmf("ext", "100#", "bye"),
            NodeDef::goto("bye", "hangup"),
            NodeDef::hangup("hangup", Some("Goodbye."), Outcome::Partial),
        ],
    }
}
