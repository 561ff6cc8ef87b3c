//! The demo agent: name, message, goodbye.

use serde_json::json;

use super::Call;
use crate::agent::flow::builtin::demo;

const GREETING: &str =
    "Hello! You've reached the Hotline demo agent. May I have your name, please?";
const ASK_MESSAGE: &str = "What message would you like to leave?";
const NO_NAME_INPUT: &str = "Sorry, I didn't hear anything. What's your name?";
const NO_NAME_MATCH: &str = "Sorry, I didn't catch your name. Please say just your name.";
const NO_MESSAGE_INPUT: &str =
    "Sorry, I didn't hear anything. What message would you like to leave?";

#[tokio::test]
async fn takes_a_name_and_a_message_and_reads_the_name_back() {
    let mut call = Call::new(demo());
    let greeting = call.reply().await;
    assert_eq!(
        greeting.texts,
        [
            "Hello! ",
            "You've reached the Hotline demo agent. ",
            "May I have your name, please?"
        ]
    );
    call.ends("not_achieved", "ask_name", json!({}));

    call.user("Um, my name is ada lovelace.");
    call.reply().await.says(ASK_MESSAGE);
    call.ends("partial", "ask_message", json!({"name": "Ada Lovelace"}));

    call.user("Uh, please call me back about the invoice.");
    let bye = call.reply().await;
    bye.hangs_up("Thank you, Ada Lovelace. I've got your message. Goodbye!");
    assert_eq!(bye.tools[0].id, "flow_1");
    call.ends(
        "achieved",
        "bye_named",
        json!({"name": "Ada Lovelace", "message": "please call me back about the invoice."}),
    );

    // The pipeline hangs up and reports it; the flow has nothing to add.
    call.result("flow_1", r#"{"ok": true}"#);
    call.reply().await.silent();
    call.ends(
        "achieved",
        "bye_named",
        json!({"name": "Ada Lovelace", "message": "please call me back about the invoice."}),
    );
}

#[tokio::test]
async fn silence_is_asked_again_then_the_flow_moves_on() {
    let mut call = Call::new(demo());
    call.reply().await.says(GREETING);
    call.silence();
    call.reply().await.says(NO_NAME_INPUT);
    // A final with no words is no input too.
    call.user("");
    call.reply().await.says(NO_NAME_INPUT);
    call.silence();
    call.reply().await.says(ASK_MESSAGE);
    // What STT writes for noise is no input either.
    call.user(" [BLANK_AUDIO] ");
    call.reply().await.says(NO_MESSAGE_INPUT);
    call.silence();
    call.reply().await.says(NO_MESSAGE_INPUT);
    call.silence();
    call.reply()
        .await
        .hangs_up("I didn't get a message. Goodbye!");
    call.ends("not_achieved", "bye_no_message", json!({}));
}

#[tokio::test]
async fn an_answer_that_is_not_a_name_is_asked_again() {
    let mut call = Call::new(demo());
    call.reply().await;
    call.user("I don't know.");
    call.reply().await.says(NO_NAME_MATCH);
    call.user("Grace.");
    call.reply().await.says(ASK_MESSAGE);
    call.user("It's about the meeting.");
    call.reply()
        .await
        .hangs_up("Thank you, Grace. I've got your message. Goodbye!");
    call.ends(
        "achieved",
        "bye_named",
        json!({"name": "Grace", "message": "It's about the meeting."}),
    );
}

#[tokio::test]
async fn without_a_name_the_message_is_still_taken() {
    let mut call = Call::new(demo());
    call.reply().await;
    call.user("What is this?");
    call.reply().await.says(NO_NAME_MATCH);
    // Keys are no answer to "what's your name".
    call.dtmf("5");
    call.reply().await.says(NO_NAME_MATCH);
    call.user("Is anybody there?");
    call.reply().await.says(ASK_MESSAGE);
    call.user("Tell Bob the server is down.");
    call.reply()
        .await
        .hangs_up("Thank you. I've got your message. Goodbye!");
    call.ends(
        "partial",
        "bye_anonymous",
        json!({"message": "Tell Bob the server is down."}),
    );
}

#[tokio::test]
async fn barging_in_answers_the_question_being_asked() {
    let mut call = Call::new(demo());
    call.reply().await;
    // The caller talks over the greeting: that is their answer.
    call.barge_in("Hello! You've")
        .user("Hi, it's Grace Hopper.");
    call.reply().await.says(ASK_MESSAGE);
    call.barge_in("What").user("Call me back, please.");
    call.reply()
        .await
        .hangs_up("Thank you, Grace Hopper. I've got your message. Goodbye!");
    call.ends(
        "achieved",
        "bye_named",
        json!({"name": "Grace Hopper", "message": "Call me back, please."}),
    );
}

#[tokio::test]
async fn a_goodbye_cut_off_before_the_hang_up_is_said_again() {
    let mut call = Call::new(demo());
    call.reply().await;
    call.user("Ada");
    call.reply().await;
    call.user("Bye for now.");
    let bye = call.reply().await;
    assert_eq!(bye.tools[0].id, "flow_1");
    // The caller talks over the goodbye, so end_call never went out.
    call.barge_in("Thank you,").user("Oh, one more thing");
    let again = call.reply().await;
    again.hangs_up("Thank you, Ada. I've got your message. Goodbye!");
    assert_eq!(again.tools[0].id, "flow_2");
    // Once the pipeline has the call, there is nothing more to say.
    call.user("hello?");
    call.reply().await.silent();
    call.ends(
        "achieved",
        "bye_named",
        json!({"name": "Ada", "message": "Bye for now."}),
    );
}
