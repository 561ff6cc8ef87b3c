//! `/v1/playbooks`, `/v1/personas` and `/v1/numbers/{id}/outbound-defaults`
//! in process, on SQLite and on Postgres: the read-only built-ins, custom
//! playbooks and forks, classification without an LLM, personas, a
//! number's saved outbound defaults (ids checked against the
//! organization, cleared when what they name is deleted), 422s naming the
//! field, 404 across organizations, and resolving what a call names into
//! its prompt.

use axum::http::{Method, StatusCode};
use hotline::playbooks::{CallBrief, ResolveError, builtin, compose_prompt, resolve};
use serde_json::{Value, json};

mod support;

use support::api::{Api, Reply};

api_on_both!(
    built_ins_are_listed_first_and_read_only,
    custom_playbooks_are_created_forked_changed_and_deleted,
    playbook_fields_are_validated,
    playbooks_and_personas_are_isolated_between_organizations,
    classify_uses_keywords_without_an_llm,
    personas_are_created_changed_and_deleted,
    outbound_defaults_are_saved_checked_and_cleared,
    resolve_finds_what_a_call_names,
);

/// The `loc`s of a 422, each without the leading `"body"`.
#[track_caller]
fn locs(r: &Reply) -> Vec<String> {
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
    r.json["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("not a validation error: {}", r.json))
        .iter()
        .map(|e| {
            let loc: Vec<&str> = e["loc"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            assert_eq!(loc[0], "body", "{}", r.json);
            loc[1..].join(".")
        })
        .collect()
}

/// The message of the 422 problem at `field`.
#[track_caller]
fn msg_at(r: &Reply, field: &str) -> String {
    let i = locs(r)
        .iter()
        .position(|l| l == field)
        .unwrap_or_else(|| panic!("no problem at {field}: {}", r.json));
    r.json["detail"][i]["msg"].as_str().unwrap().to_owned()
}

fn ids(r: &Reply) -> Vec<String> {
    r.json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {}", r.json))
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

/// POSTs `body` to `path`, expecting 201. Lists are ordered by creation
/// time in milliseconds, so each creation is a millisecond apart.
async fn created(api: &Api, path: &str, body: Value) -> Value {
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let r = api.send(Method::POST, path, Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.json);
    r.json
}

async fn built_ins_are_listed_first_and_read_only(api: &Api) {
    let r = api.send(Method::GET, "/v1/playbooks", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(ids(&r), builtin::IDS);
    assert_eq!(r.json["next_cursor"], Value::Null);
    for p in r.json["data"].as_array().unwrap() {
        assert_eq!(p["builtin"], true);
        assert_eq!(p["created_at"], Value::Null);
        assert_eq!(p["extraction_schema"]["type"], "object", "{p}");
        assert!(!p["strategy"].as_str().unwrap().is_empty());
    }

    let r = api
        .send(Method::GET, "/v1/playbooks/price_inquiry", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["name"], "Price inquiry");
    let props = r.json["extraction_schema"]["properties"]
        .as_object()
        .unwrap();
    for field in [
        "item",
        "price",
        "currency",
        "price_includes",
        "valid_until",
        "notes",
    ] {
        assert!(props.contains_key(field), "{field}");
    }

    for method in [Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({"name": "Mine"}));
        let r = api
            .send(method.clone(), "/v1/playbooks/reservation", body)
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{method}: {}", r.json);
        let detail = r.json["detail"].as_str().unwrap();
        assert!(
            detail.contains("built-in") && detail.contains("\"fork_of\": \"reservation\""),
            "{detail}"
        );
    }
    // Still as shipped.
    let r = api
        .send(Method::GET, "/v1/playbooks/reservation", None)
        .await;
    assert_eq!(r.json["name"], "Reservation");

    let r = api.send(Method::GET, "/v1/playbooks/nope", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["detail"], "playbook not found");
}

async fn custom_playbooks_are_created_forked_changed_and_deleted(api: &Api) {
    let quotes = created(
        api,
        "/v1/playbooks",
        json!({
            "name": " Supplier quotes ",
            "description": "Ask our suppliers for this month's prices",
            "strategy": "Ask for the unit price of each item on the list.",
            "behavior_rules": ["  Never place an order. ", "Ask for prices without tax."],
            "extraction_schema": {"price": "number", "in_stock": "boolean", "notes": "string"},
            "voice_tone": "Brisk and friendly",
            "success_criteria": "A unit price for every item"
        }),
    )
    .await;
    let id = quotes["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("pb_") && id.len() == 27, "{id}");
    assert_eq!(quotes["builtin"], false);
    assert_eq!(quotes["name"], "Supplier quotes");
    assert_eq!(
        quotes["behavior_rules"],
        json!(["Never place an order.", "Ask for prices without tax."])
    );
    // The simple map was normalized into a JSON Schema.
    let schema = &quotes["extraction_schema"];
    assert_eq!(schema["type"], "object");
    assert_eq!(
        schema["properties"]["price"]["type"],
        json!(["number", "null"])
    );
    assert_eq!(
        schema["properties"]["in_stock"]["type"],
        json!(["boolean", "null"])
    );
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(quotes["forked_from"], Value::Null);
    assert!(quotes["created_at"].as_i64().unwrap() > 0);

    // A fork copies what is not sent; null clears an optional field.
    let fork = created(
        api,
        "/v1/playbooks",
        json!({"fork_of": "negotiation", "name": "Rent talks", "voice_tone": null,
               "behavior_rules": ["Never go above 1900 EUR a month."]}),
    )
    .await;
    let negotiation = builtin::get("negotiation").unwrap();
    assert_eq!(fork["name"], "Rent talks");
    assert_eq!(fork["strategy"], negotiation.strategy.as_str());
    assert_eq!(
        fork["description"],
        negotiation.description.as_deref().unwrap()
    );
    assert_eq!(
        fork["success_criteria"],
        negotiation.success_criteria.as_deref().unwrap()
    );
    assert_eq!(
        &fork["extraction_schema"],
        negotiation.extraction_schema.as_ref().unwrap()
    );
    assert_eq!(fork["voice_tone"], Value::Null);
    assert_eq!(
        fork["behavior_rules"],
        json!(["Never go above 1900 EUR a month."])
    );
    assert_eq!(fork["forked_from"], "negotiation");
    assert_eq!(fork["builtin"], false);
    // A fork of a custom one, with nothing else: a copy of it.
    let copy = created(api, "/v1/playbooks", json!({"fork_of": id})).await;
    assert_ne!(copy["id"], quotes["id"]);
    for field in [
        "name",
        "strategy",
        "behavior_rules",
        "extraction_schema",
        "voice_tone",
    ] {
        assert_eq!(copy[field], quotes[field], "{field}");
    }
    assert_eq!(copy["forked_from"], id.as_str());
    let r = api
        .send(
            Method::POST,
            "/v1/playbooks",
            Some(json!({"fork_of": "pb_000000000000000000000000"})),
        )
        .await;
    assert_eq!(locs(&r), ["fork_of"]);

    // Built-ins first, then the organization's own, newest first; the
    // built-ins are on the first page only and not counted in the limit.
    let r = api.send(Method::GET, "/v1/playbooks", None).await;
    let all = ids(&r);
    assert_eq!(all[..9], builtin::IDS);
    assert_eq!(
        all[9..],
        [
            copy["id"].as_str().unwrap(),
            fork["id"].as_str().unwrap(),
            &id
        ]
    );
    let r = api.send(Method::GET, "/v1/playbooks?limit=2", None).await;
    assert_eq!(ids(&r).len(), 11);
    let cursor = r.json["next_cursor"].as_str().unwrap().to_owned();
    let r = api
        .send(
            Method::GET,
            &format!("/v1/playbooks?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(ids(&r), [id.as_str()]);
    assert_eq!(r.json["next_cursor"], Value::Null);
    let r = api.send(Method::GET, "/v1/playbooks?limit=0", None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // PATCH changes only what is sent.
    let path = format!("/v1/playbooks/{id}");
    let r = api
        .send(
            Method::PATCH,
            &path,
            Some(
                json!({"name": "Quotes", "extraction_schema": null, "description": null,
                        "behavior_rules": ["Be quick."]}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["name"], "Quotes");
    assert_eq!(r.json["extraction_schema"], Value::Null);
    assert_eq!(r.json["description"], Value::Null);
    assert_eq!(r.json["behavior_rules"], json!(["Be quick."]));
    assert_eq!(r.json["strategy"], quotes["strategy"]);
    assert_eq!(r.json["voice_tone"], "Brisk and friendly");
    assert!(r.json["updated_at"].as_i64() >= quotes["updated_at"].as_i64());
    let r = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({"extraction_schema": {"eta": "datetime"}})),
        )
        .await;
    assert_eq!(
        r.json["extraction_schema"]["properties"]["eta"]["format"],
        "date-time"
    );
    let r = api.send(Method::GET, &path, None).await;
    assert_eq!(r.json["name"], "Quotes");

    let r = api.send(Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for method in [Method::GET, Method::DELETE] {
        let r = api.send(method, &path, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    let r = api
        .send(Method::PATCH, &path, Some(json!({"name": "x"})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn playbook_fields_are_validated(api: &Api) {
    // Without fork_of, name and strategy are required.
    let r = api
        .send(Method::POST, "/v1/playbooks", Some(json!({})))
        .await;
    assert_eq!(locs(&r), ["name", "strategy"]);
    let ok = json!({"name": "N", "strategy": "S"});
    let with = |extra: Value| {
        let mut b = ok.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let cases = [
        (json!({"name": " "}), "name"),
        (json!({"name": null}), "name"),
        (json!({"strategy": "s".repeat(1_001)}), "strategy"),
        (json!({"description": "d".repeat(1_001)}), "description"),
        (json!({"voice_tone": "t".repeat(151)}), "voice_tone"),
        (
            json!({"success_criteria": "s".repeat(401)}),
            "success_criteria",
        ),
        (json!({"behavior_rules": vec!["r"; 21]}), "behavior_rules"),
        (
            json!({"behavior_rules": ["ok", "ok", "ok", "r".repeat(501)]}),
            "behavior_rules.3",
        ),
        (json!({"behavior_rules": ["ok", ""]}), "behavior_rules.1"),
        (json!({"behavior_rules": "be nice"}), "behavior_rules"),
        (
            json!({"extraction_schema": {"price": "money"}}),
            "extraction_schema",
        ),
        (json!({"extraction_schema": "price"}), "extraction_schema"),
        (json!({"colour": "red"}), "colour"),
    ];
    for (extra, field) in cases {
        let r = api
            .send(Method::POST, "/v1/playbooks", Some(with(extra.clone())))
            .await;
        assert_eq!(locs(&r), [field], "{extra}");
    }
    let r = api
        .send(
            Method::POST,
            "/v1/playbooks",
            Some(with(json!({"extraction_schema": {"price": "money"}}))),
        )
        .await;
    let m = msg_at(&r, "extraction_schema");
    assert!(
        m.contains("price") && m.contains("money") && m.contains("string[]"),
        "{m}"
    );

    let id = created(api, "/v1/playbooks", ok.clone()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/playbooks/{id}");
    for (body, field) in [
        (json!({"name": null}), "name"),
        (json!({"strategy": null}), "strategy"),
        (json!({"behavior_rules": null}), "behavior_rules"),
        (json!({"strategy": ""}), "strategy"),
        (
            json!({"extraction_schema": {"a b": "string"}}),
            "extraction_schema",
        ),
        (json!({"id": "pb_x"}), "id"),
    ] {
        let r = api.send(Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(locs(&r), [field], "{body}");
    }
}

async fn playbooks_and_personas_are_isolated_between_organizations(api: &Api) {
    let playbook = created(
        api,
        "/v1/playbooks",
        json!({"name": "Mine", "strategy": "S"}),
    )
    .await;
    let persona = created(
        api,
        "/v1/personas",
        json!({"name": "Mine", "caller_name": "Alex"}),
    )
    .await;
    let other = api.other_org_key("globex").await;
    let as_other = |method: Method, path: String, body: Option<Value>| {
        let other = other.clone();
        async move { api.send_as(Some(&other), method, &path, body).await }
    };
    for (kind, id) in [("playbooks", &playbook["id"]), ("personas", &persona["id"])] {
        let path = format!("/v1/{kind}/{}", id.as_str().unwrap());
        for (method, body) in [
            (Method::GET, None),
            (Method::PATCH, Some(json!({"name": "Theirs"}))),
            (Method::DELETE, None),
        ] {
            let r = as_other(method.clone(), path.clone(), body).await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                r.json
            );
        }
        let r = as_other(Method::GET, format!("/v1/{kind}"), None).await;
        assert!(
            !ids(&r).contains(&id.as_str().unwrap().to_owned()),
            "{kind}"
        );
    }
    // Another org's playbook cannot be forked or named in defaults.
    let r = as_other(
        Method::POST,
        "/v1/playbooks".into(),
        Some(json!({"fork_of": playbook["id"]})),
    )
    .await;
    assert_eq!(locs(&r), ["fork_of"]);
    let number = api
        .send_as(
            Some(&other),
            Method::POST,
            "/v1/numbers",
            Some(json!({"e164": "+14155550177"})),
        )
        .await;
    assert_eq!(number.status, StatusCode::CREATED, "{}", number.json);
    let path = format!(
        "/v1/numbers/{}/outbound-defaults",
        number.json["id"].as_str().unwrap()
    );
    let r = as_other(
        Method::PUT,
        path.clone(),
        Some(json!({"playbook_id": playbook["id"], "persona_id": persona["id"]})),
    )
    .await;
    assert_eq!(locs(&r), ["playbook_id", "persona_id"]);
    // Nor can the first org see the other's number's defaults.
    let r = api.send(Method::GET, &path, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Still there for their owner.
    let r = api
        .send(
            Method::GET,
            &format!("/v1/playbooks/{}", playbook["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(r.json["name"], "Mine");
}

async fn classify_uses_keywords_without_an_llm(api: &Api) {
    for (objective, want) in [
        (
            "Book a table for two at Luigi's tonight at 8",
            "reservation",
        ),
        (
            "Find out how much they charge for a tire change",
            "price_inquiry",
        ),
        (
            "Complain about the broken washing machine and ask for a refund",
            "complaint",
        ),
        ("Wish grandma a happy birthday", "general"),
    ] {
        let r = api
            .send(
                Method::POST,
                "/v1/playbooks/classify",
                Some(json!({"objective": objective})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        assert_eq!(
            r.json,
            json!({"playbook_id": want, "method": "keywords"}),
            "{objective}"
        );
    }
    for body in [
        json!({}),
        json!({"objective": "  "}),
        json!({"objective": "x".repeat(2_001)}),
    ] {
        let r = api
            .send(Method::POST, "/v1/playbooks/classify", Some(body))
            .await;
        assert_eq!(locs(&r), ["objective"]);
    }
}

async fn personas_are_created_changed_and_deleted(api: &Api) {
    let alex = created(
        api,
        "/v1/personas",
        json!({"name": " Alex at Rivera ", "caller_name": "Alex", "company": "Rivera Plumbing",
               "role": "office manager", "voice": "en-us", "language": "en-US",
               "default_rules": ["Never quote prices. "]}),
    )
    .await;
    let id = alex["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("per_") && id.len() == 28, "{id}");
    assert_eq!(alex["name"], "Alex at Rivera");
    assert_eq!(alex["default_rules"], json!(["Never quote prices."]));
    assert_eq!(alex["voice"], "en-us");
    let sam = created(
        api,
        "/v1/personas",
        json!({"name": "Sam", "caller_name": "Sam"}),
    )
    .await;
    assert_eq!(sam["default_rules"], json!([]));
    assert_eq!(sam["company"], Value::Null);

    let r = api.send(Method::GET, "/v1/personas", None).await;
    assert_eq!(ids(&r), [sam["id"].as_str().unwrap(), &id]);

    let path = format!("/v1/personas/{id}");
    let r = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({"company": null, "caller_name": "Alexandra"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["company"], Value::Null);
    assert_eq!(r.json["caller_name"], "Alexandra");
    assert_eq!(r.json["role"], "office manager");
    let r = api.send(Method::GET, &path, None).await;
    assert_eq!(r.json["caller_name"], "Alexandra");

    let r = api
        .send(Method::POST, "/v1/personas", Some(json!({"name": "N"})))
        .await;
    assert_eq!(locs(&r), ["caller_name"]);
    let r = api
        .send(
            Method::POST,
            "/v1/personas",
            Some(
                json!({"name": "N", "caller_name": "C", "language": "english!",
                        "voice": "no-such-voice", "default_rules": vec!["r"; 21]}),
            ),
        )
        .await;
    assert_eq!(locs(&r), ["default_rules", "language", "voice"]);
    for (body, field) in [
        (json!({"caller_name": null}), "caller_name"),
        (json!({"caller_name": "c".repeat(101)}), "caller_name"),
        (json!({"language": "en_US"}), "language"),
        (json!({"voice": "no-such-voice"}), "voice"),
        (json!({"default_rules": ["fine", " "]}), "default_rules.1"),
        (json!({"nickname": "A"}), "nickname"),
    ] {
        let r = api.send(Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(locs(&r), [field], "{body}");
    }

    let r = api.send(Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api.send(Method::GET, &path, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["detail"], "persona not found");
}

async fn outbound_defaults_are_saved_checked_and_cleared(api: &Api) {
    let number = created(api, "/v1/numbers", json!({"e164": "+14155550100"})).await;
    let number_id = number["id"].as_str().unwrap().to_owned();
    let agent = created(
        api,
        "/v1/agents",
        json!({"name": "Caller", "system_prompt": "Call."}),
    )
    .await;
    let persona = created(
        api,
        "/v1/personas",
        json!({"name": "Alex", "caller_name": "Alex"}),
    )
    .await;
    let playbook = created(
        api,
        "/v1/playbooks",
        json!({"fork_of": "reservation", "name": "Team dinners"}),
    )
    .await;
    let path = format!("/v1/numbers/{number_id}/outbound-defaults");

    // Nothing saved: every field null.
    let r = api.send(Method::GET, &path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["number_id"], number_id.as_str());
    for field in [
        "agent_id",
        "playbook_id",
        "objective",
        "retry_policy",
        "record",
        "updated_at",
    ] {
        assert_eq!(r.json[field], Value::Null, "{field}");
    }

    let full = json!({
        "agent_id": agent["id"], "playbook_id": playbook["id"], "persona_id": persona["id"],
        "objective": "Book the team dinner", "context": "Twelve people, Friday.",
        "behavior_rules": [" Never pay a deposit. "], "system_prompt": "You call restaurants.",
        "first_message": "Hi, this is Alex.", "voice": "en-us", "language": "en-GB",
        "on_voicemail": "leave_message", "voicemail_message": "Please call Alex back.",
        "max_duration_minutes": 10, "extraction_schema": {"booked": "boolean"},
        "retry_policy": {"max_attempts": 3, "backoff": "exponential"}, "record": true
    });
    let r = api.send(Method::PUT, &path, Some(full.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let saved = r.json.clone();
    assert_eq!(saved["agent_id"], agent["id"]);
    assert_eq!(saved["playbook_id"], playbook["id"]);
    assert_eq!(saved["persona_id"], persona["id"]);
    assert_eq!(saved["behavior_rules"], json!(["Never pay a deposit."]));
    assert_eq!(saved["on_voicemail"], "leave_message");
    assert_eq!(saved["max_duration_minutes"], 10);
    assert_eq!(saved["retry_policy"], full["retry_policy"], "kept as sent");
    assert_eq!(saved["record"], true);
    assert_eq!(
        saved["extraction_schema"]["properties"]["booked"]["type"][0],
        "boolean"
    );
    assert!(saved["updated_at"].as_i64().unwrap() > 0);
    let r = api.send(Method::GET, &path, None).await;
    assert_eq!(r.json, saved);

    // PUT replaces the whole set; a built-in playbook id is fine.
    let r = api
        .send(
            Method::PUT,
            &path,
            Some(json!({"playbook_id": "price_inquiry", "on_voicemail": "retry"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["playbook_id"], "price_inquiry");
    assert_eq!(r.json["on_voicemail"], "retry");
    for field in [
        "agent_id",
        "persona_id",
        "objective",
        "retry_policy",
        "record",
    ] {
        assert_eq!(r.json[field], Value::Null, "{field}");
    }

    // Ids must name something of the organization.
    let r = api
        .send(
            Method::PUT,
            &path,
            Some(json!({"agent_id": "agt_000000000000000000000000",
                        "playbook_id": "pb_000000000000000000000000",
                        "persona_id": "per_000000000000000000000000"})),
        )
        .await;
    assert_eq!(locs(&r), ["agent_id", "playbook_id", "persona_id"]);
    assert_eq!(msg_at(&r, "persona_id"), "no such persona");
    for (body, field) in [
        (
            json!({"on_voicemail": "leave_message"}),
            "voicemail_message",
        ),
        (json!({"on_voicemail": "shout"}), "on_voicemail"),
        (json!({"max_duration_minutes": 0}), "max_duration_minutes"),
        (json!({"max_duration_minutes": 121}), "max_duration_minutes"),
        (json!({"retry_policy": [1, 2]}), "retry_policy"),
        (
            json!({"extraction_schema": {"price": "money"}}),
            "extraction_schema",
        ),
        (json!({"behavior_rules": vec!["r"; 21]}), "behavior_rules"),
        (json!({"language": "en_GB"}), "language"),
        (json!({"voice": "no-such-voice"}), "voice"),
        (json!({"objective": ""}), "objective"),
        (
            json!({"voicemail_message": "v".repeat(1_001)}),
            "voicemail_message",
        ),
        (json!({"speed": 2}), "speed"),
    ] {
        let r = api.send(Method::PUT, &path, Some(body.clone())).await;
        assert_eq!(locs(&r), [field], "{body}");
    }
    // A refused PUT changed nothing.
    let r = api.send(Method::GET, &path, None).await;
    assert_eq!(r.json["playbook_id"], "price_inquiry");

    // Deleting what the defaults name clears it, as deleting an agent
    // clears a number's agent.
    let r = api.send(Method::PUT, &path, Some(full.clone())).await;
    assert_eq!(r.status, StatusCode::OK);
    for (kind, id) in [
        ("personas", &persona["id"]),
        ("playbooks", &playbook["id"]),
        ("agents", &agent["id"]),
    ] {
        let r = api
            .send(
                Method::DELETE,
                &format!("/v1/{kind}/{}", id.as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{kind}");
    }
    let r = api.send(Method::GET, &path, None).await;
    for field in ["agent_id", "playbook_id", "persona_id"] {
        assert_eq!(r.json[field], Value::Null, "{field}");
    }
    assert_eq!(r.json["objective"], "Book the team dinner");

    let r = api.send(Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api.send(Method::GET, &path, None).await;
    assert_eq!(r.json["objective"], Value::Null);
    assert_eq!(r.json["updated_at"], Value::Null);
    let r = api.send(Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "idempotent");

    // A number that is not there, or deleted with its defaults.
    let r = api
        .send(
            Method::PUT,
            "/v1/numbers/num_000000000000000000000000/outbound-defaults",
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["detail"], "number not found");
    let r = api
        .send(Method::PUT, &path, Some(json!({"objective": "x"})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api
        .send(Method::DELETE, &format!("/v1/numbers/{number_id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let stored = api
        .db
        .store
        .outbound_defaults(&api.org_id, &number_id)
        .await
        .unwrap();
    assert!(stored.is_none(), "{stored:?}");
}

async fn resolve_finds_what_a_call_names(api: &Api) {
    let store = &api.db.store;
    let playbook = created(
        api,
        "/v1/playbooks",
        json!({"fork_of": "price_inquiry", "name": "Lumber prices",
               "behavior_rules": ["Ask for the contractor price."]}),
    )
    .await;
    let persona = created(
        api,
        "/v1/personas",
        json!({"name": "Sam", "caller_name": "Sam", "company": "Oak Builders",
               "default_rules": ["Never give the site address."]}),
    )
    .await;
    let (pid, rid) = (
        playbook["id"].as_str().unwrap(),
        persona["id"].as_str().unwrap(),
    );

    let (p, who) = resolve(store, &api.org_id, Some(pid), Some(rid))
        .await
        .unwrap();
    assert_eq!(p.name, "Lumber prices");
    assert_eq!(who.as_ref().unwrap().caller_name, "Sam");
    let rules = vec!["Do not order anything.".to_owned()];
    let prompt = compose_prompt(
        &p,
        who.as_ref(),
        &CallBrief {
            objective: Some("Ask what 2x4 studs cost"),
            behavior_rules: &rules,
            to: "+14155550123",
            ..CallBrief::default()
        },
    );
    let persona_rule = prompt.find("1. Never give the site address.").unwrap();
    let playbook_rule = prompt.find("2. Ask for the contractor price.").unwrap();
    let call_rule = prompt.find("3. Do not order anything.").unwrap();
    assert!(
        persona_rule < playbook_rule && playbook_rule < call_rule,
        "{prompt}"
    );
    assert!(prompt.contains("Introduce yourself as Sam from Oak Builders."));
    assert!(prompt.contains("- price_includes:"));

    let (p, who) = resolve(store, &api.org_id, None, None).await.unwrap();
    assert_eq!((p.id.as_str(), who), ("general", None));
    let (p, _) = resolve(store, &api.org_id, Some("complaint"), None)
        .await
        .unwrap();
    assert!(p.builtin);
    for (playbook_id, persona_id, field) in [
        (Some("pb_000000000000000000000000"), None, "playbook_id"),
        (
            Some("complaint"),
            Some("per_000000000000000000000000"),
            "persona_id",
        ),
    ] {
        match resolve(store, &api.org_id, playbook_id, persona_id).await {
            Err(ResolveError::NotFound(f)) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    // Another organization's are not found either.
    let other = store.ensure_org("initech").await.unwrap();
    match resolve(store, &other.id, Some(pid), None).await {
        Err(ResolveError::NotFound("playbook_id")) => {}
        other => panic!("{other:?}"),
    }
}
