//! `/v1/contacts` in process, on SQLite and on Postgres: lists and their
//! filters, reads by id and by phone (`+` plain or percent-encoded), PATCH
//! semantics and validation with the exact field location, 404 across
//! organizations, and DELETE forgetting the contact's calls' content.

use axum::http::{Method, StatusCode};
use hotline::call::CallDirection;
use hotline::store::{CallUpdate, ContactUpdate, NewCall, NewTranscriptEntry};
use serde_json::{Value, json};

mod support;

use support::api::Api;

api_on_both!(
    contacts_are_listed_filtered_and_read,
    contacts_are_patched_with_validation,
    contacts_are_isolated_between_organizations,
    deleting_a_contact_forgets_its_calls,
);

const ALICE: &str = "+14155550100";
const BOB: &str = "+442071234567";

fn loc(r: &Value) -> Vec<Vec<String>> {
    r["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("not a validation error: {r}"))
        .iter()
        .map(|e| {
            e["loc"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

async fn contacts_are_listed_filtered_and_read(api: &Api) {
    let s = &api.db.store;
    let alice = s.touch_contact(&api.org_id, ALICE, 1_000).await.unwrap();
    s.touch_contact(&api.org_id, ALICE, 2_000).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let bob = s.touch_contact(&api.org_id, BOB, 3_000).await.unwrap();
    s.update_contact(
        &api.org_id,
        &bob.id,
        &ContactUpdate {
            display_name: Some(Some("Bob Stone".into())),
            tags: Some(vec!["spam".into()]),
            blocked: Some(true),
            ..ContactUpdate::default()
        },
    )
    .await
    .unwrap();

    let r = api.send(Method::GET, "/v1/contacts", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let data = r.json["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], bob.id.as_str(), "newest first");
    assert_eq!(data[1]["phone_number"], ALICE);
    assert_eq!(data[1]["call_count"], 2);
    assert_eq!(data[1]["last_seen_at"], 2_000);
    assert_eq!(data[1]["tags"], json!([]));
    assert_eq!(data[1]["display_name"], Value::Null);
    assert_eq!(data[1]["blocked"], false);
    assert_eq!(r.json["next_cursor"], Value::Null);

    for (query, want) in [
        ("blocked=true", vec![bob.id.as_str()]),
        ("blocked=false", vec![alice.id.as_str()]),
        ("tag=SPAM", vec![bob.id.as_str()]),
        ("q=bob", vec![bob.id.as_str()]),
        ("q=%2B1415", vec![alice.id.as_str()]),
        ("q=44", vec![bob.id.as_str()]),
        ("q=nobody", vec![]),
    ] {
        let r = api
            .send(Method::GET, &format!("/v1/contacts?{query}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.json);
        let got: Vec<&str> = r.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(got, want, "{query}");
    }
    let r = api.send(Method::GET, "/v1/contacts?limit=1", None).await;
    let cursor = r.json["next_cursor"].as_str().unwrap().to_owned();
    let r = api
        .send(
            Method::GET,
            &format!("/v1/contacts?limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(r.json["data"][0]["id"], alice.id.as_str());
    for (query, field) in [
        ("blocked=maybe", "blocked"),
        ("tag=a%22b", "tag"),
        ("limit=0", "limit"),
        ("cursor=nonsense", "cursor"),
    ] {
        let r = api
            .send(Method::GET, &format!("/v1/contacts?{query}"), None)
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(loc(&r.json), [["query", field]], "{query}");
    }

    let r = api
        .send(Method::GET, &format!("/v1/contacts/{}", alice.id), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["id"], alice.id.as_str());
    assert_eq!(r.json["phone_number"], ALICE);
    // By phone: the + as is, percent-encoded, or with separators.
    for path in [
        "/v1/contacts/by-phone/+14155550100",
        "/v1/contacts/by-phone/%2B14155550100",
        "/v1/contacts/by-phone/%2B1%20415%20555-0100",
    ] {
        let r = api.send(Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.json);
        assert_eq!(r.json["id"], alice.id.as_str(), "{path}");
    }
    for bad in ["14155550100", "abc", "%2B0123", "%2B12"] {
        let r = api
            .send(Method::GET, &format!("/v1/contacts/by-phone/{bad}"), None)
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(loc(&r.json), [["path", "e164"]], "{bad}");
    }
    let r = api
        .send(Method::GET, "/v1/contacts/by-phone/%2B14155550199", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["detail"], "contact not found");
    let r = api
        .send(
            Method::GET,
            "/v1/contacts/cnt_000000000000000000000000",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn contacts_are_patched_with_validation(api: &Api) {
    let c = api
        .db
        .store
        .touch_contact(&api.org_id, ALICE, 1)
        .await
        .unwrap();
    let path = format!("/v1/contacts/{}", c.id);
    let r = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({
                "display_name": "  Alice Martin ",
                "tags": ["VIP", "plumbing", "vip"],
                "owner_notes": "Prefers mornings.",
                "blocked": true
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["display_name"], "Alice Martin");
    assert_eq!(r.json["tags"], json!(["vip", "plumbing"]));
    assert_eq!(r.json["owner_notes"], "Prefers mornings.");
    assert_eq!(r.json["blocked"], true);
    assert_eq!(r.json["call_count"], 1);
    assert_eq!(r.json["phone_number"], ALICE);

    // Only what is sent changes; null clears.
    let r = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({"display_name": null, "tags": null})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["display_name"], Value::Null);
    assert_eq!(r.json["tags"], json!([]));
    assert_eq!(r.json["owner_notes"], "Prefers mornings.");
    assert_eq!(r.json["blocked"], true);
    let r = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({"owner_notes": null, "blocked": false})),
        )
        .await;
    assert_eq!(r.json["owner_notes"], Value::Null);
    assert_eq!(r.json["blocked"], false);
    // An empty body changes nothing.
    let r = api.send(Method::PATCH, &path, None).await;
    assert_eq!(r.status, StatusCode::OK);

    let tags21: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    let cases: Vec<(Value, Vec<Vec<&str>>)> = vec![
        (
            json!({"phone_number": "+14155550111"}),
            vec![vec!["body", "phone_number"]],
        ),
        (json!({"call_count": 9}), vec![vec!["body", "call_count"]]),
        (json!({"blocked": null}), vec![vec!["body", "blocked"]]),
        (json!({"blocked": "yes"}), vec![vec!["body", "blocked"]]),
        (
            json!({"display_name": "   "}),
            vec![vec!["body", "display_name"]],
        ),
        (
            json!({"display_name": "n".repeat(201)}),
            vec![vec!["body", "display_name"]],
        ),
        (json!({"tags": tags21}), vec![vec!["body", "tags"]]),
        (json!({"tags": ["ok", ""]}), vec![vec!["body", "tags", "1"]]),
        (
            json!({"tags": ["x".repeat(51)]}),
            vec![vec!["body", "tags", "0"]],
        ),
        (json!({"tags": ["a\"b"]}), vec![vec!["body", "tags", "0"]]),
        (json!({"tags": "vip"}), vec![vec!["body", "tags"]]),
        (
            json!({"owner_notes": "n".repeat(4001)}),
            vec![vec!["body", "owner_notes"]],
        ),
        (
            json!({"display_name": "", "owner_notes": "n".repeat(4001)}),
            vec![vec!["body", "display_name"], vec!["body", "owner_notes"]],
        ),
    ];
    for (body, want) in cases {
        let r = api.send(Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(loc(&r.json), want, "{body}");
    }
    // The limits themselves are fine.
    let tags20: Vec<String> = (0..20).map(|i| format!("{i:0>50}")).collect();
    let r = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({"tags": tags20, "owner_notes": "n".repeat(4000)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["tags"].as_array().unwrap().len(), 20);
    let r = api
        .send(
            Method::PATCH,
            "/v1/contacts/cnt_000000000000000000000000",
            Some(json!({"blocked": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn contacts_are_isolated_between_organizations(api: &Api) {
    let c = api
        .db
        .store
        .touch_contact(&api.org_id, ALICE, 1)
        .await
        .unwrap();
    let theirs = api.other_org_key("other").await;
    let path = format!("/v1/contacts/{}", c.id);
    for (method, path, body) in [
        (Method::GET, path.as_str(), None),
        (Method::PATCH, path.as_str(), Some(json!({"blocked": true}))),
        (Method::DELETE, path.as_str(), None),
        (Method::GET, "/v1/contacts/by-phone/%2B14155550100", None),
    ] {
        let r = api.send_as(Some(&theirs), method.clone(), path, body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(r.json["detail"], "contact not found");
    }
    let r = api
        .send_as(Some(&theirs), Method::GET, "/v1/contacts", None)
        .await;
    assert_eq!(r.json["data"], json!([]));
    // Untouched by the other org's attempts.
    let r = api.send(Method::GET, &path, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["blocked"], false);
}

async fn deleting_a_contact_forgets_its_calls(api: &Api) {
    let s = &api.db.store;
    let c = s.touch_contact(&api.org_id, ALICE, 1).await.unwrap();
    let new = NewCall {
        contact_id: Some(c.id.clone()),
        ..NewCall::new(CallDirection::Inbound, ALICE, "+14155559999")
    };
    let (call, _) = s.create_call(&api.org_id, &new).await.unwrap();
    let call_id = call.id.to_string();
    s.append_transcript(
        &api.org_id,
        &call_id,
        &NewTranscriptEntry {
            speaker: "caller".into(),
            text: "My name is Alice and I live at 12 Elm Street.".into(),
            start_ms: Some(0),
            end_ms: Some(2_000),
            interrupted: false,
        },
    )
    .await
    .unwrap();
    s.update_call(
        &api.org_id,
        &call_id,
        &CallUpdate {
            summary: Some("Alice of 12 Elm Street wants a plumber.".into()),
            structured_data: Some(json!({"address": "12 Elm Street"})),
            ..CallUpdate::ended(
                hotline::store::CallStatus::Completed,
                hotline::store::now_ms(),
            )
        },
    )
    .await
    .unwrap();
    let r = api
        .send(Method::GET, &format!("/v1/calls/{call_id}"), None)
        .await;
    assert_eq!(r.json["contact_id"], c.id.as_str(), "{}", r.json);

    let path = format!("/v1/contacts/{}", c.id);
    let r = api.send(Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    assert_eq!(r.json, Value::Null, "no body");
    let r = api.send(Method::GET, &path, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api.send(Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = api
        .send(Method::GET, &format!("/v1/calls/{call_id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let call = &r.json;
    assert_eq!(call["status"], "completed");
    assert_eq!(call["from"], ALICE, "the record's metadata stays");
    assert_eq!(call["contact_id"], Value::Null);
    assert_eq!(call["summary"], Value::Null);
    assert_eq!(call["structured_data"], Value::Null);
    assert_eq!(call["transcript"][0]["text"], "[redacted]");
    assert_eq!(call["transcript"][0]["speaker"], "caller");
    assert_eq!(call["transcript"][0]["end_ms"], 2_000);
}
