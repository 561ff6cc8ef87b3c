//! A contact's memory through the API, on SQLite and on Postgres: facts
//! from calls corroborate, supersede or are rejected, the owner's edits
//! win, the timeline keeps every decision, the next-call context is empty
//! for a stranger and says what is known for a returning caller, and
//! forgetting the contact forgets its memory.

mod support;

use axum::http::{Method, StatusCode};
use hotline::memory::facts::{Candidate, Source};
use serde_json::json;
use support::api::Api;

api_on_both!(
    memory_follows_calls_and_the_owner,
    memory_is_the_organizations_own,
);

const PHONE: &str = "+14155550142";

fn heard(call: &str, slot: &str, value: &str, confidence: f32) -> Candidate {
    Candidate {
        slot: slot.into(),
        value: value.into(),
        confidence,
        source: Source::Call {
            call_id: call.into(),
            quote: Some(format!("It's {value}.")),
        },
    }
}

async fn memory_follows_calls_and_the_owner(api: &Api) {
    let s = &api.db.store;
    let contact = s.touch_contact(&api.org_id, PHONE, 1_000).await.unwrap();
    let base = format!("/v1/contacts/{}", contact.id);
    // A stranger: nothing to say.
    let r = api
        .send(Method::GET, &format!("{base}/next-call-context"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["context"], "");

    // The first call's facts, then the second call's.
    s.remember(
        &api.org_id,
        &contact.id,
        &[
            heard("call_1", "Name", "Jon Smith", 0.6),
            heard("call_1", "company", "Acme Plumbing", 0.7),
        ],
        2_000,
    )
    .await
    .unwrap();
    let second = s
        .remember(
            &api.org_id,
            &contact.id,
            &[
                heard("call_2", "name", "John Smith", 0.9),
                heard("call_2", "company", "acme plumbing", 0.5),
                heard("call_2", "preferred time", "mornings", 0.4),
            ],
            3_000,
        )
        .await
        .unwrap();
    let actions: Vec<String> = second
        .iter()
        .map(|e| {
            serde_json::to_value(&e.decision).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(actions, ["superseded", "corroborated", "added"]);

    let r = api.send(Method::GET, &format!("{base}/memory"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let facts: Vec<(String, String)> = r.json["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["slot"].as_str().unwrap().to_owned(),
                f["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        facts,
        [
            ("company".to_owned(), "Acme Plumbing".to_owned()),
            ("name".to_owned(), "John Smith".to_owned()),
            ("preferred_time".to_owned(), "mornings".to_owned())
        ]
    );
    let timeline = r.json["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 5);
    assert_eq!(timeline[2]["decision"]["action"], "superseded");
    assert_eq!(timeline[2]["decision"]["previous"], "Jon Smith");
    assert_eq!(timeline[2]["source"]["call_id"], "call_2");

    let r = api
        .send(Method::GET, &format!("{base}/next-call-context"), None)
        .await;
    let context = r.json["context"].as_str().unwrap();
    assert!(
        context.starts_with("Returning caller: John Smith (+14155550142)."),
        "{context}"
    );
    assert!(context.contains("company: Acme Plumbing"), "{context}");
    assert!(context.contains("preferred time: mornings"), "{context}");

    // The owner wins: a correction, and no call can take it back.
    let r = api
        .send(
            Method::PUT,
            &format!("{base}/memory/name"),
            Some(json!({"value": "Johnny Smith"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let name = r.json["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["slot"] == "name")
        .unwrap()
        .clone();
    assert_eq!(name["value"], "Johnny Smith");
    assert_eq!(name["owner_locked"], true);
    let third = s
        .remember(
            &api.org_id,
            &contact.id,
            &[heard("call_3", "name", "John Smith", 1.0)],
            4_000,
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&third[0].decision).unwrap(),
        json!({"action": "rejected", "reason": "the owner set this slot"})
    );
    // The owner rejects a fact: the slot empties.
    let r = api
        .send(
            Method::DELETE,
            &format!("{base}/memory/preferred_time"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    let r = api
        .send(
            Method::DELETE,
            &format!("{base}/memory/preferred_time"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api.send(Method::GET, &format!("{base}/memory"), None).await;
    assert_eq!(r.json["facts"].as_array().unwrap().len(), 2);
    assert_eq!(
        r.json["timeline"].as_array().unwrap().last().unwrap()["decision"]["reason"],
        "rejected by the owner"
    );
    // Validation.
    let r = api
        .send(
            Method::PUT,
            &format!("{base}/memory/name"),
            Some(json!({"value": " "})),
        )
        .await;
    assert_eq!(r.json["detail"][0]["loc"], json!(["body", "value"]));
    let r = api
        .send(
            Method::PUT,
            &format!("{base}/memory/%21%21"),
            Some(json!({"value": "x"})),
        )
        .await;
    assert_eq!(
        r.json["detail"][0]["loc"],
        json!(["path", "slot"]),
        "{}",
        r.json
    );

    // Forgetting the contact forgets its memory.
    let r = api.send(Method::DELETE, &base, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let again = s.touch_contact(&api.org_id, PHONE, 5_000).await.unwrap();
    let (facts, timeline) = s.contact_memory(&api.org_id, &again.id).await.unwrap();
    assert!(facts.is_empty() && timeline.is_empty());
    let (facts, _) = s
        .contact_memory(&api.org_id, &contact.id)
        .await
        .unwrap_or_default();
    assert!(facts.is_empty());
}

async fn memory_is_the_organizations_own(api: &Api) {
    let contact = api
        .db
        .store
        .touch_contact(&api.org_id, PHONE, 1_000)
        .await
        .unwrap();
    let other = api.other_org_key("other").await;
    let base = format!("/v1/contacts/{}", contact.id);
    for (method, path, body) in [
        (Method::GET, format!("{base}/memory"), None),
        (Method::GET, format!("{base}/next-call-context"), None),
        (
            Method::PUT,
            format!("{base}/memory/name"),
            Some(json!({"value": "Eve"})),
        ),
        (Method::DELETE, format!("{base}/memory/name"), None),
    ] {
        let r = api.send_as(Some(&other), method.clone(), &path, body).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            r.json
        );
    }
    let (facts, timeline) = api
        .db
        .store
        .contact_memory(&api.org_id, &contact.id)
        .await
        .unwrap();
    assert!(facts.is_empty() && timeline.is_empty());
}
