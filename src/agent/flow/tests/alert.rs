//! The phone alert: read it, press 1 to acknowledge, 2 to hear it again.

use serde_json::json;

use super::Call;
use crate::agent::flow::builtin::alert;

const TEXT: &str = "The database on db-1 is down.";
const MENU: &str = "Press 1 or say acknowledge to acknowledge, 2 to hear it again.";
const FIRST: &str = "Hello, this is an automated alert. The database on db-1 is down. \
                     Press 1 or say acknowledge to acknowledge, 2 to hear it again.";
const ACKED: &str = "Thank you. The alert has been acknowledged. Goodbye!";
const NOT_ACKED: &str = "The alert was not acknowledged. Goodbye.";

#[tokio::test]
async fn pressing_1_acknowledges() {
    let mut call = Call::new(alert(TEXT));
    let first = call.reply().await;
    assert_eq!(
        first.texts,
        [
            "Hello, this is an automated alert. ",
            "The database on db-1 is down. ",
            MENU
        ]
    );
    call.ends("not_achieved", "ack", json!({}));
    call.dtmf("1");
    call.reply().await.hangs_up(ACKED);
    call.ends("achieved", "acknowledged", json!({}));
}

#[tokio::test]
async fn saying_it_acknowledges_in_any_everyday_form() {
    for said in [
        "Acknowledge.",
        "acknowledged",
        "Yeah, got it.",
        "OK",
        "Sure, thanks.",
        "Um, one.",
        "Press one",
        "Roger that.",
    ] {
        let mut call = Call::new(alert(TEXT));
        call.reply().await.says(FIRST);
        call.user(said);
        let t = call.reply().await;
        assert_eq!(t.text(), ACKED, "{said}");
        call.ends("achieved", "acknowledged", json!({}));
    }
}

#[tokio::test]
async fn two_repeats_the_alert_and_listens_again() {
    let mut call = Call::new(alert(TEXT));
    call.reply().await;
    call.dtmf("2");
    call.reply().await.says(&format!("{TEXT} {MENU}"));
    call.user("Sorry, can you say that again?");
    call.reply().await.says(&format!("{TEXT} {MENU}"));
    call.user("Two");
    call.reply().await.says(&format!("{TEXT} {MENU}"));
    call.user("acknowledge");
    call.reply().await.hangs_up(ACKED);
    call.ends("achieved", "acknowledged", json!({}));
}

#[tokio::test]
async fn no_answer_after_the_retries_is_not_achieved() {
    let mut call = Call::new(alert(TEXT));
    call.reply().await;
    for _ in 0..2 {
        call.silence();
        call.reply()
            .await
            .says(&format!("Sorry, I didn't hear anything. {MENU}"));
    }
    call.silence();
    call.reply().await.hangs_up(NOT_ACKED);
    call.ends("not_achieved", "not_acknowledged", json!({}));
}

#[tokio::test]
async fn answers_that_fit_no_choice_are_asked_again() {
    let mut call = Call::new(alert(TEXT));
    call.reply().await;
    let sorry = format!("Sorry, I didn't understand. {MENU}");
    // A key that is no choice, an answer that is no choice, and a no.
    call.dtmf("7");
    call.reply().await.says(&sorry);
    call.user("Who is this?");
    call.reply().await.says(&sorry);
    call.user("No.");
    call.reply().await.hangs_up(NOT_ACKED);
    call.ends("not_achieved", "not_acknowledged", json!({}));
}

#[tokio::test]
async fn retries_count_no_input_and_no_match_together_and_reset_on_repeat() {
    let mut call = Call::new(alert(TEXT));
    call.reply().await;
    call.silence();
    call.reply()
        .await
        .says(&format!("Sorry, I didn't hear anything. {MENU}"));
    call.user("banana");
    call.reply()
        .await
        .says(&format!("Sorry, I didn't understand. {MENU}"));
    // Hearing it again starts the question afresh.
    call.dtmf("2");
    call.reply().await.says(&format!("{TEXT} {MENU}"));
    call.silence();
    call.reply()
        .await
        .says(&format!("Sorry, I didn't hear anything. {MENU}"));
    call.dtmf("1");
    call.reply().await.hangs_up(ACKED);
}

#[tokio::test]
async fn barging_in_during_the_alert_answers_the_menu() {
    let mut call = Call::new(alert(TEXT));
    call.reply().await;
    call.barge_in("Hello, this is an automated alert. The database")
        .user("Acknowledged, I'm on it.");
    call.reply().await.hangs_up(ACKED);
    call.ends("achieved", "acknowledged", json!({}));

    // Keys over the alert work the same way.
    let mut call = Call::new(alert(TEXT));
    call.reply().await;
    call.barge_in("Hello,").dtmf("1");
    call.reply().await.hangs_up(ACKED);
}

#[tokio::test]
async fn speech_and_keys_in_one_turn_go_by_the_keys() {
    let mut call = Call::new(alert(TEXT));
    call.reply().await;
    call.user("again").dtmf("1");
    call.reply().await.hangs_up(ACKED);
}

#[tokio::test]
async fn hanging_up_before_acknowledging_is_not_achieved() {
    let mut call = Call::new(alert(TEXT));
    call.reply().await;
    call.dtmf("2");
    call.reply().await;
    // The callee hangs up: the pipeline reads the outcome without another
    // turn.
    call.ends("not_achieved", "ack", json!({}));
}

#[tokio::test]
async fn alert_text_is_read_as_written() {
    let mut call = Call::new(alert("Disk {sda} is full}"));
    let t = call.reply().await;
    assert_eq!(t.texts[1], "Disk {sda} is full} ");
}
