//! The receptionist: name, callback number, message, confirmation.

use serde_json::json;

use super::{CALLER, Call};
use crate::agent::flow::builtin::receptionist;
use crate::agent::provider::CallInfo;

const GREETING: &str = "Thank you for calling Acme Dental. I can take a message for you. May I have your name, please?";
const ASK_NUMBER: &str = "What's the best number to call you back on?";
const ASK_MESSAGE: &str = "And what message would you like to leave?";
const BAD_NUMBER: &str = "Sorry, I didn't get that number. Please say it or key it in, with the area code, then press pound.";
const TROUBLE: &str = "Sorry, I'm having trouble hearing you. Please call again later. Goodbye.";

fn confirm(name: &str, number: &str, message: &str) -> String {
    format!(
        "Let me read that back. Your name is {name}, your number is {number}, and your message is: {message} Is that right?"
    )
}

/// A call that has given its name and number and is asked for the
/// message.
async fn at_message(number_said: &str) -> Call {
    let mut call = Call::new(receptionist("Acme Dental", None));
    call.reply().await.says(GREETING);
    call.user("This is John Smith.");
    call.reply().await.says(ASK_NUMBER);
    call.user(number_said);
    call.reply().await.says(ASK_MESSAGE);
    call
}

#[tokio::test]
async fn takes_name_number_and_message_and_confirms() {
    let mut call = at_message("Four one five, five five five, oh one oh oh.").await;
    call.user("Call me about the lease.");
    let t = call.reply().await;
    assert_eq!(
        t.texts,
        [
            "Let me read that back. ",
            "Your name is John Smith, your number is 1, 4 1 5, 5 5 5, 0 1 0 0, and your message is: Call me about the lease. ",
            "Is that right?"
        ]
    );
    let data = json!({
        "name": "John Smith",
        "callback": "+14155550100",
        "message": "Call me about the lease."
    });
    call.ends("partial", "confirm", data.clone());
    call.user("Yep, that's right.");
    call.reply()
        .await
        .hangs_up("Thank you, John Smith. We'll call you back soon. Goodbye!");
    call.ends("achieved", "bye", data);
}

#[tokio::test]
async fn the_number_may_be_keyed_in_pieces_with_pound() {
    let mut call = Call::new(receptionist("Acme Dental", None));
    call.reply().await;
    call.user("Ada");
    call.reply().await.says(ASK_NUMBER);
    // The pipeline may pass keys on as they come: the flow waits for #.
    call.dtmf("415");
    call.reply().await.silent();
    call.dtmf("555");
    call.reply().await.silent();
    call.dtmf("0100#");
    call.reply().await.says(ASK_MESSAGE);
    call.user("Hi.");
    call.reply()
        .await
        .says(&confirm("Ada", "1, 4 1 5, 5 5 5, 0 1 0 0", "Hi."));
    // 1 confirms, like yes.
    call.dtmf("1");
    call.reply().await;
    call.ends(
        "achieved",
        "bye",
        json!({"name": "Ada", "callback": "+14155550100", "message": "Hi."}),
    );
}

#[tokio::test]
async fn keys_without_pound_end_when_the_caller_stops() {
    let mut call = Call::new(receptionist("Acme Dental", None));
    call.reply().await;
    call.user("Ada");
    call.reply().await;
    call.dtmf("4155550100");
    call.reply().await.silent();
    // The silence after the last key ends the entry.
    call.silence();
    call.reply().await.says(ASK_MESSAGE);
    assert_eq!(call.outcome().data["callback"], "+14155550100");
}

#[tokio::test]
async fn this_number_means_the_callers_own() {
    let mut call = at_message("Just use this number.").await;
    assert_eq!(call.outcome().data["callback"], CALLER);
    call.user("Thanks");
    call.reply().await.says(&confirm(
        "John Smith",
        "1, 4 1 5, 5 5 5, 0 1 2 3",
        "Thanks.",
    ));
}

#[tokio::test]
async fn numbers_take_the_callers_country_code_or_the_configured_one() {
    let uk = CallInfo {
        call_id: "c".into(),
        from: "+442079460000".into(),
        to: "+442079460001".into(),
        direction: "inbound".into(),
    };
    let mut call = Call::from(receptionist("Acme", None), uk.clone());
    call.reply().await;
    call.user("Ada");
    call.reply().await;
    call.user("oh two oh, seven nine four six, oh nine five eight");
    call.reply().await.says(ASK_MESSAGE);
    assert_eq!(call.outcome().data["callback"], "+442079460958");

    let mut call = Call::from(receptionist("Acme", Some("1")), uk);
    call.reply().await;
    call.user("Ada");
    call.reply().await;
    call.user("415 555 0100");
    call.reply().await.says(ASK_MESSAGE);
    assert_eq!(call.outcome().data["callback"], "+14155550100");
}

#[tokio::test]
async fn a_wrong_number_is_asked_again() {
    let mut call = Call::new(receptionist("Acme Dental", None));
    call.reply().await;
    call.user("Ada");
    call.reply().await;
    call.user("I don't have one.");
    call.reply().await.says(BAD_NUMBER);
    call.user("five five five");
    call.reply().await.says(BAD_NUMBER);
    call.user("plus one, four one five, five five five, oh one oh oh");
    call.reply().await.says(ASK_MESSAGE);
    assert_eq!(call.outcome().data["callback"], "+14155550100");
}

#[tokio::test]
async fn no_starts_over_and_keeps_nothing_stale() {
    let mut call = at_message("4155550100").await;
    call.user("See you.");
    call.reply().await;
    call.user("No, that's wrong.");
    call.reply()
        .await
        .says("No problem, let's start again. May I have your name, please?");
    call.user("Jon Smyth");
    call.reply().await.says(ASK_NUMBER);
    call.user("415 555 0199");
    call.reply().await.says(ASK_MESSAGE);
    call.user("See you soon.");
    call.reply().await.says(&confirm(
        "Jon Smyth",
        "1, 4 1 5, 5 5 5, 0 1 9 9",
        "See you soon.",
    ));
    call.user("Correct.");
    call.reply().await;
    call.ends(
        "achieved",
        "bye",
        json!({"name": "Jon Smyth", "callback": "+14155550199", "message": "See you soon."}),
    );
}

#[tokio::test]
async fn an_unconfirmed_message_is_partial() {
    let mut call = at_message("4155550100").await;
    call.user("Bye.");
    call.reply().await;
    call.user("Hmm, maybe.");
    call.reply()
        .await
        .says("Sorry, please say yes if that's right, or no to start again.");
    call.silence();
    call.reply()
        .await
        .says("Sorry, I didn't hear anything. Is that right? Say yes or no.");
    call.silence();
    call.reply()
        .await
        .hangs_up("I'll pass your message on as it is. Goodbye!");
    call.ends(
        "partial",
        "bye_unconfirmed",
        json!({"name": "John Smith", "callback": "+14155550100", "message": "Bye."}),
    );
}

#[tokio::test]
async fn a_caller_who_cannot_be_heard_is_told_to_call_again() {
    let mut call = Call::new(receptionist("Acme Dental", None));
    call.reply().await;
    for _ in 0..2 {
        call.silence();
        call.reply()
            .await
            .says("Sorry, I didn't hear anything. May I have your name, please?");
    }
    call.silence();
    call.reply().await.hangs_up(TROUBLE);
    call.ends("not_achieved", "trouble", json!({}));
}

#[tokio::test]
async fn barge_in_over_the_read_back_answers_it() {
    let mut call = at_message("4155550100").await;
    call.user("Thanks.");
    call.reply().await;
    call.barge_in("Let me read that back. Your name is")
        .user("Yes, yes.");
    call.reply()
        .await
        .hangs_up("Thank you, John Smith. We'll call you back soon. Goodbye!");
    call.ends(
        "achieved",
        "bye",
        json!({"name": "John Smith", "callback": "+14155550100", "message": "Thanks."}),
    );
}
