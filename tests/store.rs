//! The storage layer against real databases. Every test runs twice: on a
//! fresh SQLite file, and on a fresh database of the Postgres server named
//! by `HOTLINE_TEST_POSTGRES` (a base URL such as
//! `postgres://postgres@127.0.0.1:5433`; `scripts/test` starts one). Without
//! that variable the Postgres half says it was skipped and passes.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::time::Duration;

use hotline::call::CallDirection;
use hotline::store::{
    AgentUpdate, AlertFilter, Backend, CallFilter, CallStatus, CallUpdate, DeliveryStatus,
    NewAgent, NewCall, NewNumber, NewTranscriptEntry, NewWebhook, NumberFilter, NumberUpdate,
    PageRequest, Store, StoreError, UsagePeriod, UsageQuery, day_start_ms, now_ms,
};
use serde_json::json;

mod support;

use support::db::TestDb;

/// Runs `body` on each backend as its own `#[tokio::test]`:
/// `name::sqlite` and `name::postgres`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let mut db = super::TestDb::sqlite().await;
                super::$name(&mut db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(mut db) = super::TestDb::postgres(stringify!($name)).await {
                    super::$name(&mut db).await;
                    db.cleanup().await;
                }
            }
        }
    )*};
}

on_both!(
    orgs_and_api_keys,
    agents_crud,
    numbers_crud,
    call_lifecycle,
    call_filters,
    transcripts,
    idempotent_create_under_concurrency,
    pagination_walks_every_row_once,
    org_isolation,
    webhooks_crud,
    outbox_claims_are_exclusive,
    outbox_lease_expiry_and_results,
    usage_totals,
    persistence_across_reopen,
    phones_are_verified_by_code,
    alerts_claim_and_step_exactly_once,
);

fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "expected NotFound, got {r:?}"
    );
}

fn outbound(client_id: Option<&str>) -> NewCall {
    let mut c = NewCall::new(CallDirection::Outbound, "+15550001111", "+15550002222");
    c.client_id = client_id.map(str::to_owned);
    c
}

async fn orgs_and_api_keys(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap();
    assert!(org.id.starts_with("org_"));
    assert!(matches!(
        s.create_org("acme").await,
        Err(StoreError::Conflict("name"))
    ));
    assert!(matches!(
        s.create_org(" ").await,
        Err(StoreError::Invalid("name", _))
    ));
    assert_eq!(s.get_org_by_name("acme").await.unwrap(), org);
    assert_eq!(s.get_org(&org.id).await.unwrap(), org);
    assert_eq!(s.ensure_org("acme").await.unwrap(), org);
    let other = s.ensure_org("other").await.unwrap();
    assert_ne!(other.id, org.id);
    assert_not_found(s.get_org_by_name("nobody").await);

    let created = s.create_api_key(&org.id, "ci").await.unwrap();
    let key = &created.plaintext;
    assert!(key.starts_with("hl_live_"));
    assert_eq!(key.len(), "hl_live_".len() + 64);
    assert_eq!(created.key.prefix, key[..12]);
    assert!(created.key.id.starts_with("key_"));
    assert_eq!(created.key.last_used_at, None);
    assert_not_found(s.create_api_key("org_missing", "x").await);

    assert_eq!(
        s.authenticate(key).await.unwrap(),
        Some((org.id.clone(), created.key.id.clone()))
    );
    let used = s.get_api_key(&org.id, &created.key.id).await.unwrap();
    let first_use = used.last_used_at.expect("last_used_at set");
    // A second use within the minute does not write again.
    s.authenticate(key).await.unwrap().unwrap();
    assert_eq!(
        s.get_api_key(&org.id, &created.key.id)
            .await
            .unwrap()
            .last_used_at,
        Some(first_use)
    );
    // Near misses authenticate nothing.
    let mut wrong = key.clone();
    wrong.pop();
    wrong.push(if key.ends_with('0') { '1' } else { '0' });
    assert_eq!(s.authenticate(&wrong).await.unwrap(), None);
    assert_eq!(s.authenticate(&key[8..]).await.unwrap(), None);
    assert_eq!(s.authenticate("").await.unwrap(), None);

    let second = s.create_api_key(&org.id, "second").await.unwrap();
    let list = s
        .list_api_keys(&org.id, &PageRequest::default())
        .await
        .unwrap();
    let ids: Vec<_> = list.items.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, [second.key.id.as_str(), created.key.id.as_str()]);
    assert_eq!(list.next_cursor, None);
    assert_eq!(s.find_api_key(&second.key.id).await.unwrap(), second.key);

    let revoked = s.revoke_api_key(&org.id, &created.key.id).await.unwrap();
    let at = revoked.revoked_at.expect("revoked_at set");
    assert_eq!(s.authenticate(key).await.unwrap(), None);
    // Revoking again changes nothing.
    assert_eq!(
        s.revoke_api_key(&org.id, &created.key.id)
            .await
            .unwrap()
            .revoked_at,
        Some(at)
    );
    assert!(s.authenticate(&second.plaintext).await.unwrap().is_some());
}

async fn agents_crud(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap();
    let mut new = NewAgent::new("Receptionist", "You answer the phone.");
    new.voice = Some("alloy".into());
    new.model = json!({"provider": "openai", "model": "gpt-4o-mini"});
    new.tools = json!([{"type": "transfer"}]);
    new.max_duration_secs = Some(600);
    let agent = s.create_agent(&org.id, &new).await.unwrap();
    assert!(agent.id.starts_with("agt_"));
    assert_eq!(agent.model["provider"], "openai");
    assert_eq!(agent.tools, json!([{"type": "transfer"}]));
    assert_eq!(s.get_agent(&org.id, &agent.id).await.unwrap(), agent);

    let mut bad = new.clone();
    bad.model = json!([]);
    assert!(matches!(
        s.create_agent(&org.id, &bad).await,
        Err(StoreError::Invalid("model", _))
    ));
    bad = new.clone();
    bad.max_duration_secs = Some(0);
    assert!(matches!(
        s.create_agent(&org.id, &bad).await,
        Err(StoreError::Invalid("max_duration_secs", _))
    ));

    let updated = s
        .update_agent(
            &org.id,
            &agent.id,
            &AgentUpdate {
                name: Some("Front desk".into()),
                voice: Some(None),
                ..AgentUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "Front desk");
    assert_eq!(updated.voice, None);
    // Fields not sent are unchanged.
    assert_eq!(updated.system_prompt, agent.system_prompt);
    assert_eq!(updated.model, agent.model);
    assert_eq!(updated.max_duration_secs, Some(600));
    assert!(updated.updated_at >= agent.updated_at);
    // An empty update is valid and changes nothing but updated_at.
    let same = s
        .update_agent(&org.id, &agent.id, &AgentUpdate::default())
        .await
        .unwrap();
    assert_eq!(same.name, "Front desk");
    assert!(matches!(
        s.update_agent(
            &org.id,
            &agent.id,
            &AgentUpdate {
                tools: Some(json!({})),
                ..AgentUpdate::default()
            }
        )
        .await,
        Err(StoreError::Invalid("tools", _))
    ));

    let list = s
        .list_agents(&org.id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    s.delete_agent(&org.id, &agent.id).await.unwrap();
    assert_not_found(s.get_agent(&org.id, &agent.id).await);
    assert_not_found(s.delete_agent(&org.id, &agent.id).await);
    assert_not_found(
        s.update_agent(&org.id, &agent.id, &AgentUpdate::default())
            .await,
    );
}

async fn numbers_crud(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap();
    let other = s.create_org("other").await.unwrap();
    let agent = s
        .create_agent(&org.id, &NewAgent::new("a", "p"))
        .await
        .unwrap();
    let foreign_agent = s
        .create_agent(&other.id, &NewAgent::new("b", "p"))
        .await
        .unwrap();

    let new = NewNumber {
        e164: "+15551230001".into(),
        label: Some("Main line".into()),
        trunk: Some("carrier".into()),
        agent_id: Some(agent.id.clone()),
        inbound: json!({"mode": "ai"}),
    };
    let number = s.create_number(&org.id, &new).await.unwrap();
    assert!(number.id.starts_with("num_"));
    assert_eq!(s.get_number(&org.id, &number.id).await.unwrap(), number);
    assert_eq!(s.get_number_by_e164("+15551230001").await.unwrap(), number);
    assert_not_found(s.get_number_by_e164("+15559999999").await);

    // A DID belongs to one org, whichever asks.
    for org_id in [&org.id, &other.id] {
        let mut dup = new.clone();
        dup.agent_id = None;
        assert!(matches!(
            s.create_number(org_id, &dup).await,
            Err(StoreError::Conflict("e164"))
        ));
    }
    let mut foreign = new.clone();
    foreign.e164 = "+15551230002".into();
    foreign.agent_id = Some(foreign_agent.id.clone());
    assert!(matches!(
        s.create_number(&org.id, &foreign).await,
        Err(StoreError::Invalid("agent_id", _))
    ));
    let mut bad = new.clone();
    bad.e164 = "5551230002".into();
    assert!(matches!(
        s.create_number(&org.id, &bad).await,
        Err(StoreError::Invalid("e164", _))
    ));
    bad = new.clone();
    bad.e164 = "+15551230002".into();
    bad.inbound = json!({"mode": "dance"});
    assert!(matches!(
        s.create_number(&org.id, &bad).await,
        Err(StoreError::Invalid("inbound", _))
    ));

    let echo = s
        .create_number(
            &org.id,
            &NewNumber {
                e164: "+15551230003".into(),
                label: None,
                trunk: None,
                agent_id: None,
                inbound: json!({"mode": "echo"}),
            },
        )
        .await
        .unwrap();
    let by_agent = s
        .list_numbers(
            &org.id,
            &NumberFilter {
                agent_id: Some(agent.id.clone()),
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(by_agent.items, vec![number.clone()]);
    let all = s
        .list_numbers(&org.id, &NumberFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);

    let updated = s
        .update_number(
            &org.id,
            &number.id,
            &NumberUpdate {
                label: Some(None),
                inbound: Some(json!({"mode": "forward", "to": "+15550009999"})),
                ..NumberUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.label, None);
    assert_eq!(updated.trunk.as_deref(), Some("carrier"));
    assert_eq!(updated.agent_id.as_deref(), Some(agent.id.as_str()));
    assert_eq!(updated.inbound["mode"], "forward");
    assert!(matches!(
        s.update_number(
            &org.id,
            &number.id,
            &NumberUpdate {
                agent_id: Some(Some(foreign_agent.id.clone())),
                ..NumberUpdate::default()
            }
        )
        .await,
        Err(StoreError::Invalid("agent_id", _))
    ));

    // Deleting the agent leaves the number without one.
    s.delete_agent(&org.id, &agent.id).await.unwrap();
    assert_eq!(
        s.get_number(&org.id, &number.id).await.unwrap().agent_id,
        None
    );

    s.delete_number(&org.id, &echo.id).await.unwrap();
    assert_not_found(s.get_number(&org.id, &echo.id).await);
    assert_not_found(s.delete_number(&org.id, &echo.id).await);
}

async fn call_lifecycle(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap();
    let mut new = outbound(None);
    new.metadata = BTreeMap::from([("crm_id".to_owned(), "42".to_owned())]);
    new.request = json!({"objective": "confirm the appointment", "record": true});
    new.webhook_url = Some("https://example.com/hook".into());
    let (call, created) = s.create_call(&org.id, &new).await.unwrap();
    assert!(created);
    assert!(call.id.as_str().starts_with("call_"));
    assert_eq!(call.status, CallStatus::Queued);
    assert_eq!(call.direction, CallDirection::Outbound);
    assert_eq!(call.metadata["crm_id"], "42");
    assert_eq!(call.request["record"], true);
    assert_eq!(s.get_call(&org.id, call.id.as_str()).await.unwrap(), call);

    // An id chosen by the engine is kept; reusing it is a conflict.
    let mut with_id = NewCall::new(CallDirection::Inbound, "+15557770000", "+15551230001");
    with_id.id = Some(hotline::call::CallId::random());
    let (inbound, _) = s.create_call(&org.id, &with_id).await.unwrap();
    assert_eq!(Some(&inbound.id), with_id.id.as_ref());
    assert_eq!(inbound.status, CallStatus::Ringing);
    assert!(matches!(
        s.create_call(&org.id, &with_id).await,
        Err(StoreError::Conflict("id"))
    ));

    let mut bad = outbound(None);
    bad.webhook_url = Some("not a url".into());
    assert!(matches!(
        s.create_call(&org.id, &bad).await,
        Err(StoreError::Invalid("webhook_url", _))
    ));

    let id = call.id.as_str();
    let ringing = s
        .update_call(&org.id, id, &CallUpdate::status(CallStatus::Ringing))
        .await
        .unwrap();
    assert_eq!(ringing.status, CallStatus::Ringing);
    let answered = s
        .update_call(&org.id, id, &CallUpdate::answered(1_000_000))
        .await
        .unwrap();
    assert_eq!(answered.status, CallStatus::InProgress);
    assert_eq!(answered.answered_at, Some(1_000_000));
    let ended = s
        .update_call(
            &org.id,
            id,
            &CallUpdate {
                hangup_by: Some("caller".into()),
                hangup_reason: Some("normal clearing".into()),
                sip_call_id: Some("abc@host".into()),
                summary: Some("Confirmed for Tuesday.".into()),
                outcome: Some("confirmed".into()),
                structured_data: Some(json!({"day": "tuesday"})),
                recording_path: Some("recordings/x.wav".into()),
                ..CallUpdate::ended(CallStatus::Completed, 1_061_500)
            },
        )
        .await
        .unwrap();
    assert_eq!(ended.status, CallStatus::Completed);
    assert_eq!(ended.ended_at, Some(1_061_500));
    assert_eq!(ended.duration_ms, Some(61_500));
    assert_eq!(ended.structured_data, Some(json!({"day": "tuesday"})));
    assert_eq!(ended.hangup_by.as_deref(), Some("caller"));
    // A finished call keeps its final status, but takes other facts.
    assert!(matches!(
        s.update_call(&org.id, id, &CallUpdate::status(CallStatus::Ringing))
            .await,
        Err(StoreError::Conflict("status"))
    ));
    let same = s
        .update_call(&org.id, id, &CallUpdate::status(CallStatus::Completed))
        .await
        .unwrap();
    assert_eq!(same.status, CallStatus::Completed);
    let summarised = s
        .update_call(
            &org.id,
            id,
            &CallUpdate {
                summary: Some("Later summary".into()),
                ..CallUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(summarised.summary.as_deref(), Some("Later summary"));
    assert_not_found(
        s.update_call(&org.id, "call_missing", &CallUpdate::default())
            .await,
    );

    // Unanswered calls last 0 ms; answer and end in one update works too.
    let (busy, _) = s.create_call(&org.id, &outbound(None)).await.unwrap();
    let busy = s
        .update_call(
            &org.id,
            busy.id.as_str(),
            &CallUpdate {
                sip_code: Some(486),
                ..CallUpdate::ended(CallStatus::Busy, 5_000)
            },
        )
        .await
        .unwrap();
    assert_eq!((busy.duration_ms, busy.sip_code), (Some(0), Some(486)));
    let both = s
        .update_call(
            &org.id,
            inbound.id.as_str(),
            &CallUpdate {
                answered_at: Some(10_000),
                ..CallUpdate::ended(CallStatus::Completed, 12_345)
            },
        )
        .await
        .unwrap();
    assert_eq!(both.duration_ms, Some(2_345));
}

async fn call_filters(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap();
    let before = now_ms();
    let mut a = NewCall::new(CallDirection::Inbound, "+1555000", "+1555001");
    a.number_id = Some("num_a".into());
    a.agent_id = Some("agt_a".into());
    let (a, _) = s.create_call(&org.id, &a).await.unwrap();
    let mut b = outbound(None);
    b.agent_id = Some("agt_b".into());
    let (b, _) = s.create_call(&org.id, &b).await.unwrap();
    s.update_call(
        &org.id,
        b.id.as_str(),
        &CallUpdate::ended(CallStatus::Failed, now_ms()),
    )
    .await
    .unwrap();

    let org_id = org.id.as_str();
    let ids = |f: CallFilter| async move {
        s.list_calls(org_id, &f, &PageRequest::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|c| c.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(CallFilter::default()).await.len(), 2);
    assert_eq!(
        ids(CallFilter {
            status: Some(CallStatus::Failed),
            ..Default::default()
        })
        .await,
        vec![b.id.clone()]
    );
    assert_eq!(
        ids(CallFilter {
            direction: Some(CallDirection::Inbound),
            ..Default::default()
        })
        .await,
        vec![a.id.clone()]
    );
    assert_eq!(
        ids(CallFilter {
            number_id: Some("num_a".into()),
            ..Default::default()
        })
        .await,
        vec![a.id.clone()]
    );
    assert_eq!(
        ids(CallFilter {
            agent_id: Some("agt_b".into()),
            ..Default::default()
        })
        .await,
        vec![b.id.clone()]
    );
    assert_eq!(
        ids(CallFilter {
            created_after: Some(before),
            ..Default::default()
        })
        .await
        .len(),
        2
    );
    assert!(
        ids(CallFilter {
            created_before: Some(before),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert!(
        ids(CallFilter {
            created_after: Some(now_ms() + 60_000),
            ..Default::default()
        })
        .await
        .is_empty()
    );
}

async fn transcripts(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap();
    let (call, _) = s.create_call(&org.id, &outbound(None)).await.unwrap();
    let id = call.id.as_str();
    let line = |speaker: &str, text: &str, start: i64| NewTranscriptEntry {
        speaker: speaker.into(),
        text: text.into(),
        start_ms: Some(start),
        end_ms: Some(start + 900),
        interrupted: false,
    };
    let first = s
        .append_transcript(&org.id, id, &line("agent", "Hello!", 0))
        .await
        .unwrap();
    assert_eq!((first.seq, first.call_id.as_str()), (1, id));
    s.append_transcript(&org.id, id, &line("caller", "Hi.", 1000))
        .await
        .unwrap();

    // Concurrent appends get distinct, gapless numbers.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = s.clone();
        let (org_id, id) = (org.id.clone(), id.to_owned());
        tasks.push(tokio::spawn(async move {
            s.append_transcript(
                &org_id,
                &id,
                &line("caller", &format!("line {i}"), 2000 + i),
            )
            .await
            .unwrap()
            .seq
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (3..=12).collect::<Vec<_>>());

    let all = s.list_transcript(&org.id, id).await.unwrap();
    assert_eq!(all.len(), 12);
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    assert_eq!(
        (all[0].speaker.as_str(), all[0].text.as_str()),
        ("agent", "Hello!")
    );
    assert_eq!(all[1].end_ms, Some(1900));
    assert_not_found(
        s.append_transcript(&org.id, "call_missing", &line("agent", "x", 0))
            .await,
    );
    assert_not_found(s.list_transcript(&org.id, "call_missing").await);
}

async fn idempotent_create_under_concurrency(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = s.clone();
        let org_id = org.id.clone();
        tasks.push(tokio::spawn(async move {
            s.create_call(&org_id, &outbound(Some("order-1234")))
                .await
                .unwrap()
        }));
    }
    let mut ids = HashSet::new();
    let mut created = 0;
    for t in tasks {
        let (call, was_created) = t.await.unwrap();
        assert_eq!(call.client_id.as_deref(), Some("order-1234"));
        ids.insert(call.id);
        created += usize::from(was_created);
    }
    assert_eq!(ids.len(), 1, "all creates return the same call");
    assert_eq!(created, 1, "exactly one create inserted");
    let list = s
        .list_calls(&org.id, &CallFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);

    // The key is per org: another org's identical key is a different call.
    let other = s.create_org("other").await.unwrap();
    let (theirs, was_created) = s
        .create_call(&other.id, &outbound(Some("order-1234")))
        .await
        .unwrap();
    assert!(was_created);
    assert!(!ids.contains(&theirs.id));
}

async fn pagination_walks_every_row_once(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap();
    let mut all = Vec::new();
    for _ in 0..55 {
        all.push(s.create_call(&org.id, &outbound(None)).await.unwrap().0.id);
    }
    // Newest first; ties in created_at are ordered by id.
    let expected: Vec<_> = {
        let mut rows = Vec::new();
        for id in &all {
            rows.push(s.get_call(&org.id, id.as_str()).await.unwrap());
        }
        rows.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        rows.into_iter().map(|c| c.id).collect()
    };

    let filter = CallFilter::default();
    let first = s
        .list_calls(&org.id, &filter, &PageRequest::first(20))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 20);
    // Rows created mid-walk are newer than the cursor and do not shift it.
    for _ in 0..5 {
        s.create_call(&org.id, &outbound(None)).await.unwrap();
    }
    let mut seen: Vec<_> = first.items.into_iter().map(|c| c.id).collect();
    let mut cursor = first.next_cursor;
    let mut pages = 1;
    while let Some(c) = cursor {
        let page = s
            .list_calls(&org.id, &filter, &PageRequest::after(20, c))
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items.into_iter().map(|c| c.id));
        cursor = page.next_cursor;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 55);
    assert_eq!(seen, expected, "no duplicates, no gaps, newest first");

    // A page that holds every row has no next cursor.
    let total = s
        .list_calls(&org.id, &filter, &PageRequest::first(60))
        .await
        .unwrap();
    assert_eq!(total.items.len(), 60);
    assert_eq!(total.next_cursor, None);

    assert!(matches!(
        s.list_calls(&org.id, &filter, &PageRequest::first(0)).await,
        Err(StoreError::Invalid("limit", _))
    ));
    assert!(matches!(
        s.list_calls(&org.id, &filter, &PageRequest::first(101))
            .await,
        Err(StoreError::Invalid("limit", _))
    ));
    assert!(matches!(
        s.list_calls(&org.id, &filter, &PageRequest::after(20, "garbage"))
            .await,
        Err(StoreError::Invalid("cursor", _))
    ));
    // The default page size is 20.
    let default = s
        .list_calls(&org.id, &filter, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(default.items.len(), 20);
}

async fn org_isolation(db: &mut TestDb) {
    let s = &db.store;
    let a = s.create_org("a").await.unwrap().id;
    let b = s.create_org("b").await.unwrap().id;
    let agent = s.create_agent(&a, &NewAgent::new("a", "p")).await.unwrap();
    let number = s
        .create_number(
            &a,
            &NewNumber {
                e164: "+15551230001".into(),
                label: None,
                trunk: None,
                agent_id: Some(agent.id.clone()),
                inbound: json!({"mode": "ai"}),
            },
        )
        .await
        .unwrap();
    let (call, _) = s.create_call(&a, &outbound(Some("k1"))).await.unwrap();
    let entry = NewTranscriptEntry {
        speaker: "agent".into(),
        text: "hi".into(),
        start_ms: None,
        end_ms: None,
        interrupted: false,
    };
    s.append_transcript(&a, call.id.as_str(), &entry)
        .await
        .unwrap();
    let hook = s
        .create_webhook(
            &a,
            &NewWebhook {
                url: "https://a.example/h".into(),
                events: vec![],
            },
        )
        .await
        .unwrap();
    let delivery = s
        .enqueue_event(&a, "call.completed", &json!({}))
        .await
        .unwrap()
        .remove(0);
    let key = s.create_api_key(&a, "k").await.unwrap().key;

    // Org B sees none of it.
    assert_not_found(s.get_agent(&b, &agent.id).await);
    assert_not_found(
        s.update_agent(
            &b,
            &agent.id,
            &AgentUpdate {
                name: Some("x".into()),
                ..Default::default()
            },
        )
        .await,
    );
    assert_not_found(s.delete_agent(&b, &agent.id).await);
    assert_not_found(s.get_number(&b, &number.id).await);
    assert_not_found(
        s.update_number(
            &b,
            &number.id,
            &NumberUpdate {
                label: Some(Some("x".into())),
                ..Default::default()
            },
        )
        .await,
    );
    assert_not_found(s.delete_number(&b, &number.id).await);
    assert_not_found(s.get_call(&b, call.id.as_str()).await);
    assert_not_found(
        s.update_call(
            &b,
            call.id.as_str(),
            &CallUpdate::status(CallStatus::Canceled),
        )
        .await,
    );
    assert_not_found(s.append_transcript(&b, call.id.as_str(), &entry).await);
    assert_not_found(s.list_transcript(&b, call.id.as_str()).await);
    assert_not_found(s.get_webhook(&b, &hook.id).await);
    assert_not_found(s.rotate_webhook_secret(&b, &hook.id).await);
    assert_not_found(s.delete_webhook(&b, &hook.id).await);
    assert_not_found(s.get_delivery(&b, &delivery.id).await);
    assert_not_found(s.get_api_key(&b, &key.id).await);
    assert_not_found(s.revoke_api_key(&b, &key.id).await);
    // Numbers cannot point at another org's agent.
    assert!(matches!(
        s.create_number(
            &b,
            &NewNumber {
                e164: "+15551230002".into(),
                label: None,
                trunk: None,
                agent_id: Some(agent.id.clone()),
                inbound: json!({"mode": "ai"})
            }
        )
        .await,
        Err(StoreError::Invalid("agent_id", _))
    ));
    let p = PageRequest::default();
    assert!(s.list_agents(&b, &p).await.unwrap().items.is_empty());
    assert!(
        s.list_numbers(&b, &NumberFilter::default(), &p)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        s.list_calls(&b, &CallFilter::default(), &p)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(s.list_webhooks(&b, &p).await.unwrap().items.is_empty());
    assert!(
        s.list_deliveries(&b, None, &p)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(s.list_api_keys(&b, &p).await.unwrap().items.is_empty());
    // Org B's events reach only org B's webhooks (none).
    assert!(
        s.enqueue_event(&b, "call.completed", &json!({}))
            .await
            .unwrap()
            .is_empty()
    );

    // And org A's rows are untouched.
    assert_eq!(s.get_agent(&a, &agent.id).await.unwrap(), agent);
    assert_eq!(s.get_number(&a, &number.id).await.unwrap(), number);
    assert_eq!(
        s.get_call(&a, call.id.as_str()).await.unwrap().status,
        CallStatus::Queued
    );
    assert_eq!(s.get_webhook(&a, &hook.id).await.unwrap(), hook);
    assert_eq!(
        s.list_transcript(&a, call.id.as_str()).await.unwrap().len(),
        1
    );
    assert_eq!(s.get_api_key(&a, &key.id).await.unwrap().revoked_at, None);
}

async fn webhooks_crud(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap().id;
    let hook = s
        .create_webhook(
            &org,
            &NewWebhook {
                url: "https://example.com/h".into(),
                events: vec!["call.completed".into()],
            },
        )
        .await
        .unwrap();
    assert!(hook.id.starts_with("whk_"));
    assert!(hook.secret.starts_with("whsec_") && hook.secret.len() == 6 + 64);
    assert_eq!(hook.events, ["call.completed"]);
    assert_eq!(s.get_webhook(&org, &hook.id).await.unwrap(), hook);
    assert!(matches!(
        s.create_webhook(
            &org,
            &NewWebhook {
                url: "ftp://x".into(),
                events: vec![]
            }
        )
        .await,
        Err(StoreError::Invalid("url", _))
    ));
    assert!(matches!(
        s.create_webhook(
            &org,
            &NewWebhook {
                url: "https://x".into(),
                events: vec!["bad event".into()]
            }
        )
        .await,
        Err(StoreError::Invalid("events", _))
    ));
    let rotated = s.rotate_webhook_secret(&org, &hook.id).await.unwrap();
    assert_ne!(rotated.secret, hook.secret);
    assert!(rotated.secret.starts_with("whsec_"));
    let all_events = s
        .create_webhook(
            &org,
            &NewWebhook {
                url: "https://example.com/all".into(),
                events: vec![],
            },
        )
        .await
        .unwrap();
    let list = s
        .list_webhooks(&org, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        list.items.iter().map(|w| &w.id).collect::<Vec<_>>(),
        [&all_events.id, &hook.id]
    );

    // Deleting a webhook takes its queued deliveries with it.
    let queued = s
        .enqueue_event(&org, "call.completed", &json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!(queued.len(), 2);
    s.delete_webhook(&org, &hook.id).await.unwrap();
    assert_not_found(s.get_webhook(&org, &hook.id).await);
    let left = s
        .list_deliveries(&org, None, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(left.items.len(), 1);
    assert_eq!(left.items[0].webhook_id, all_events.id);
}

async fn outbox_claims_are_exclusive(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap().id;
    let other = s.create_org("other").await.unwrap().id;
    let completed = s
        .create_webhook(
            &org,
            &NewWebhook {
                url: "https://example.com/c".into(),
                events: vec!["call.completed".into()],
            },
        )
        .await
        .unwrap();
    let all = s
        .create_webhook(
            &org,
            &NewWebhook {
                url: "https://example.com/all".into(),
                events: vec![],
            },
        )
        .await
        .unwrap();
    s.create_webhook(
        &other,
        &NewWebhook {
            url: "https://other.example/".into(),
            events: vec![],
        },
    )
    .await
    .unwrap();

    let started = s
        .enqueue_event(&org, "call.started", &json!({"call": "x"}))
        .await
        .unwrap();
    assert_eq!(
        started.len(),
        1,
        "only the unfiltered webhook wants call.started"
    );
    assert_eq!(started[0].webhook_id, all.id);
    assert_eq!(started[0].status, DeliveryStatus::Pending);
    assert_eq!(started[0].attempts, 0);
    assert_eq!(started[0].payload, json!({"call": "x"}));
    let done = s
        .enqueue_event(&org, "call.completed", &json!({"call": "x"}))
        .await
        .unwrap();
    let mut targets: Vec<_> = done.iter().map(|d| d.webhook_id.clone()).collect();
    targets.sort();
    let mut want = vec![completed.id.clone(), all.id.clone()];
    want.sort();
    assert_eq!(targets, want);
    for i in 0..17 {
        s.enqueue_event(&org, "call.started", &json!({"i": i}))
            .await
            .unwrap();
    }
    // 1 + 2 + 17 = 20 deliveries due.

    let now = now_ms() + 1;
    let lease = Duration::from_secs(30);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.claim_due(now, 10, lease).await.unwrap()
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    let ids: HashSet<_> = claimed.iter().map(|c| c.delivery.id.clone()).collect();
    assert_eq!(ids.len(), claimed.len(), "no delivery claimed twice");
    assert_eq!(claimed.len(), 20, "every due delivery claimed");
    for c in &claimed {
        assert_eq!(c.delivery.status, DeliveryStatus::InFlight);
        assert_eq!(c.delivery.attempts, 1);
        let hook = if c.delivery.webhook_id == all.id {
            &all
        } else {
            &completed
        };
        assert_eq!((&c.url, &c.secret), (&hook.url, &hook.secret));
    }
    // Nothing is due while the leases last.
    assert!(
        s.claim_due(now + 29_000, 100, lease)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn outbox_lease_expiry_and_results(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap().id;
    s.create_webhook(
        &org,
        &NewWebhook {
            url: "https://example.com/h".into(),
            events: vec![],
        },
    )
    .await
    .unwrap();
    let queued = s
        .enqueue_event(&org, "call.completed", &json!({}))
        .await
        .unwrap()
        .remove(0);
    let t0 = queued.next_attempt_at;
    assert!(
        s.claim_due(t0 - 1, 10, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );

    let lease = Duration::from_secs(10);
    let first = s.claim_due(t0, 10, lease).await.unwrap().remove(0).delivery;
    assert_eq!(first.id, queued.id);
    // The worker "crashed": after the lease the delivery is due again.
    assert!(s.claim_due(t0 + 9_999, 10, lease).await.unwrap().is_empty());
    let second = s
        .claim_due(t0 + 10_000, 10, lease)
        .await
        .unwrap()
        .remove(0)
        .delivery;
    assert_eq!(
        (second.id.as_str(), second.attempts),
        (queued.id.as_str(), 2)
    );
    // The first worker's claim is no longer valid.
    assert!(matches!(
        s.mark_delivered(&first, 200).await,
        Err(StoreError::Conflict("lease"))
    ));

    let retry = s
        .mark_retry(&second, t0 + 60_000, "connection refused", None)
        .await
        .unwrap();
    assert_eq!(retry.status, DeliveryStatus::Pending);
    assert_eq!(retry.last_error.as_deref(), Some("connection refused"));
    assert!(
        s.claim_due(t0 + 59_999, 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    let third = s
        .claim_due(t0 + 60_000, 10, lease)
        .await
        .unwrap()
        .remove(0)
        .delivery;
    assert_eq!(third.attempts, 3);
    let failed = s
        .mark_retry(&third, t0 + 120_000, "HTTP 500", Some(500))
        .await
        .unwrap();
    assert_eq!(failed.last_status_code, Some(500));
    let fourth = s
        .claim_due(t0 + 120_000, 10, lease)
        .await
        .unwrap()
        .remove(0)
        .delivery;
    let delivered = s.mark_delivered(&fourth, 204).await.unwrap();
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.last_status_code, Some(204));
    assert_eq!(delivered.last_error, None);
    assert!(delivered.delivered_at.is_some());
    // Delivered is final: never claimed again, and a second result is refused.
    assert!(
        s.claim_due(t0 + 10_000_000, 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.mark_failed(&fourth, "late", None).await,
        Err(StoreError::Conflict("lease"))
    ));

    // Giving up.
    let other = s
        .enqueue_event(&org, "call.completed", &json!({"n": 2}))
        .await
        .unwrap()
        .remove(0);
    let c = s
        .claim_due(other.next_attempt_at, 10, lease)
        .await
        .unwrap()
        .remove(0)
        .delivery;
    let gave_up = s
        .mark_failed(&c, &"x".repeat(5000), Some(410))
        .await
        .unwrap();
    assert_eq!(gave_up.status, DeliveryStatus::Failed);
    assert_eq!(gave_up.last_error.map(|e| e.len()), Some(1000));
    assert!(
        s.claim_due(t0 + 10_000_000, 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.get_delivery(&org, &other.id).await.unwrap().status,
        DeliveryStatus::Failed
    );
}

async fn usage_totals(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap().id;
    let other = s.create_org("other").await.unwrap().id;
    // 61 s outbound (2 billable minutes), 30 s outbound (1), an unanswered
    // outbound (0) and a 120 s inbound (2); org "other" has one call too.
    let durations = [
        (CallDirection::Outbound, Some(61_000)),
        (CallDirection::Outbound, Some(30_000)),
        (CallDirection::Outbound, None),
        (CallDirection::Inbound, Some(120_000)),
    ];
    for (direction, duration) in durations {
        let (call, _) = s
            .create_call(&org, &NewCall::new(direction, "+1555000", "+1555001"))
            .await
            .unwrap();
        let update = match duration {
            Some(d) => CallUpdate {
                answered_at: Some(1_000),
                ..CallUpdate::ended(CallStatus::Completed, 1_000 + d)
            },
            None => CallUpdate::ended(CallStatus::NoAnswer, 5_000),
        };
        s.update_call(&org, call.id.as_str(), &update)
            .await
            .unwrap();
    }
    s.create_call(&other, &outbound(None)).await.unwrap();

    let now = now_ms();
    let from = day_start_ms(now);
    let day = UsageQuery {
        period: UsagePeriod::Day,
        created_after: from,
        created_before: from + 86_400_000,
    };
    let rows = s.usage(&org, &day).await.unwrap();
    // The test may straddle midnight UTC; only a day bucket can split.
    if rows.len() == 2 {
        let (inb, out) = (&rows[0], &rows[1]);
        assert_eq!(inb.direction, CallDirection::Inbound);
        assert_eq!((inb.calls, inb.duration_ms, inb.minutes), (1, 120_000, 2));
        assert_eq!(out.direction, CallDirection::Outbound);
        assert_eq!((out.calls, out.duration_ms, out.minutes), (3, 91_000, 3));
        assert_eq!(out.period.len(), "2024-01-01".len());
    } else {
        eprintln!("usage_totals: calls straddled midnight UTC; day buckets not checked");
    }
    let month = UsageQuery {
        period: UsagePeriod::Month,
        created_after: from - 40 * 86_400_000,
        created_before: now + 86_400_000,
    };
    let rows = s.usage(&org, &month).await.unwrap();
    let calls: i64 = rows.iter().map(|r| r.calls).sum();
    let minutes: i64 = rows.iter().map(|r| r.minutes).sum();
    assert_eq!((calls, minutes), (4, 5));
    assert!(rows.iter().all(|r| r.period.len() == "2024-01".len()));
    let empty = UsageQuery {
        period: UsagePeriod::Day,
        created_after: 0,
        created_before: 1,
    };
    assert!(s.usage(&org, &empty).await.unwrap().is_empty());
    assert!(matches!(
        s.usage(
            &org,
            &UsageQuery {
                created_before: 0,
                ..empty
            }
        )
        .await,
        Err(StoreError::Invalid("created_before", _))
    ));
}

async fn persistence_across_reopen(db: &mut TestDb) {
    let org = db.store.create_org("acme").await.unwrap();
    let key = db.store.create_api_key(&org.id, "k").await.unwrap();
    let (call, _) = db
        .store
        .create_call(&org.id, &outbound(Some("persist")))
        .await
        .unwrap();
    db.store
        .update_call(&org.id, call.id.as_str(), &CallUpdate::answered(1_000))
        .await
        .unwrap();
    for text in ["one", "two"] {
        db.store
            .append_transcript(
                &org.id,
                call.id.as_str(),
                &NewTranscriptEntry {
                    speaker: "agent".into(),
                    text: text.into(),
                    start_ms: None,
                    end_ms: None,
                    interrupted: false,
                },
            )
            .await
            .unwrap();
    }
    db.store
        .create_webhook(
            &org.id,
            &NewWebhook {
                url: "https://example.com/h".into(),
                events: vec![],
            },
        )
        .await
        .unwrap();
    let pending = db
        .store
        .enqueue_event(&org.id, "call.started", &json!({"id": call.id}))
        .await
        .unwrap();
    if db.store.backend() == Backend::Sqlite {
        let dir = db._dir.as_ref().unwrap().path();
        assert!(
            dir.join("hotline.db-wal").exists(),
            "SQLite runs in WAL mode"
        );
    }

    db.reopen().await;
    let s = &db.store;
    assert_eq!(
        s.authenticate(&key.plaintext).await.unwrap(),
        Some((org.id.clone(), key.key.id.clone()))
    );
    let again = s.get_call(&org.id, call.id.as_str()).await.unwrap();
    assert_eq!(
        (again.status, again.answered_at),
        (CallStatus::InProgress, Some(1_000))
    );
    let texts: Vec<_> = s
        .list_transcript(&org.id, call.id.as_str())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.text)
        .collect();
    assert_eq!(texts, ["one", "two"]);
    // Numbering continues after a restart.
    let next = s
        .append_transcript(
            &org.id,
            call.id.as_str(),
            &NewTranscriptEntry {
                speaker: "caller".into(),
                text: "three".into(),
                start_ms: None,
                end_ms: None,
                interrupted: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(next.seq, 3);
    // Idempotency survives too.
    let (same, created) = s
        .create_call(&org.id, &outbound(Some("persist")))
        .await
        .unwrap();
    assert_eq!((same.id, created), (call.id.clone(), false));
    let claimed = s
        .claim_due(now_ms() + 1, 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery.id, pending[0].id);
    assert_eq!(claimed[0].delivery.payload, json!({"id": call.id}));

    // An in-flight claim survives a restart and expires normally.
    db.reopen().await;
    let s = &db.store;
    assert!(
        s.claim_due(now_ms() + 1, 10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.claim_due(now_ms() + 31_000, 10, Duration::from_secs(30))
            .await
            .unwrap()
            .len(),
        1
    );
}

/// An in-memory SQLite store keeps one connection, so it is one database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_sqlite_is_one_database() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let org = store.create_org("acme").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let name = org.name.clone();
        tasks.push(tokio::spawn(async move {
            store.get_org_by_name(&name).await.unwrap().id
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), org.id);
    }
}

/// Opening with a configuration creates the data directory and the SQLite
/// file in it (SQLite only: it is about the embedded default).
#[tokio::test]
async fn open_config_creates_the_sqlite_file() {
    if std::env::var_os("DATABASE_URL").is_some() {
        eprintln!("SKIPPED: open_config_creates_the_sqlite_file: DATABASE_URL is set");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = hotline::config::Config {
        data_dir: dir.path().join("nested/data"),
        ..hotline::config::Config::default()
    };
    let store = Store::open_config(&config).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.create_org("acme").await.unwrap();
    store.close().await;
    assert!(dir.path().join("nested/data/hotline.db").exists());
    assert!(matches!(
        Store::open("mysql://x/y").await,
        Err(StoreError::Invalid("database.url", _))
    ));
}

/// Compile-time check, not a test: store futures must be `Send`, since the
/// server awaits them inside spawned tasks.
#[allow(dead_code)]
fn assert_send<F: Future + Send>(_: F) {}

#[allow(dead_code)]
fn store_futures_are_send(s: &Store) {
    assert_send(s.create_call("org", &outbound(None)));
    assert_send(s.claim_due(0, 1, Duration::from_secs(1)));
    assert_send(s.append_transcript(
        "org",
        "call",
        &NewTranscriptEntry {
            speaker: "a".into(),
            text: "b".into(),
            start_ms: None,
            end_ms: None,
            interrupted: false,
        },
    ));
}

async fn phones_are_verified_by_code(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap().id;
    let other = s.create_org("other").await.unwrap().id;
    let first = s
        .create_phone(&org, "+14155550100", Some("me"))
        .await
        .unwrap();
    let second = s.create_phone(&org, "+14155550101", None).await.unwrap();
    assert!(first.is_primary && !second.is_primary);
    assert!(first.verified_at.is_none());
    assert!(matches!(
        s.create_phone(&org, "+14155550100", None).await,
        Err(StoreError::Conflict("e164"))
    ));
    assert!(matches!(
        s.create_phone(&org, "4155550100", None).await,
        Err(StoreError::Invalid("e164", _))
    ));
    // The same number may belong to another org too.
    s.create_phone(&other, "+14155550100", None).await.unwrap();
    assert_not_found(s.get_phone(&other, &first.id).await);

    let now = 1_000_000;
    assert_eq!(
        s.verify_phone(&org, &first.id, "123456", now)
            .await
            .unwrap(),
        Err(hotline::store::CodeRefusal::Expired)
    );
    s.set_phone_code(&org, &first.id, "123456", now + 600_000)
        .await
        .unwrap();
    assert_eq!(
        s.verify_phone(&org, &first.id, "654321", now)
            .await
            .unwrap(),
        Err(hotline::store::CodeRefusal::Wrong)
    );
    assert!(
        s.verified_phone(&org, "+14155550100")
            .await
            .unwrap()
            .is_none()
    );
    let verified = s
        .verify_phone(&org, &first.id, "123456", now + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(verified.verified_at, Some(now + 1));
    assert_eq!(
        s.verified_phone(&org, "+14155550100")
            .await
            .unwrap()
            .unwrap()
            .id,
        first.id
    );
    // A used code is gone; expired codes and too many guesses are refused.
    assert_eq!(
        s.verify_phone(&org, &first.id, "123456", now + 2)
            .await
            .unwrap(),
        Err(hotline::store::CodeRefusal::Expired)
    );
    s.set_phone_code(&org, &second.id, "111111", now + 10)
        .await
        .unwrap();
    assert_eq!(
        s.verify_phone(&org, &second.id, "111111", now + 10)
            .await
            .unwrap(),
        Err(hotline::store::CodeRefusal::Expired)
    );
    s.set_phone_code(&org, &second.id, "222222", now + 600_000)
        .await
        .unwrap();
    for _ in 0..hotline::store::MAX_CODE_ATTEMPTS {
        assert_eq!(
            s.verify_phone(&org, &second.id, "000000", now)
                .await
                .unwrap(),
            Err(hotline::store::CodeRefusal::Wrong)
        );
    }
    assert_eq!(
        s.verify_phone(&org, &second.id, "222222", now)
            .await
            .unwrap(),
        Err(hotline::store::CodeRefusal::TooManyAttempts)
    );
    let p = s.set_primary_phone(&org, &second.id).await.unwrap();
    assert!(p.is_primary);
    assert!(!s.get_phone(&org, &first.id).await.unwrap().is_primary);
    assert_eq!(s.primary_phone(&org).await.unwrap().unwrap().id, second.id);
}

async fn alerts_claim_and_step_exactly_once(db: &mut TestDb) {
    use hotline::alerts::escalation::{Escalation, Input, Retry, Severity, Status};
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap().id;
    let phone = s.create_phone(&org, "+14155550100", None).await.unwrap();
    let now = 10_000_000;
    let new = |client: Option<&str>, delay_ms: i64| {
        let mut e = Escalation::new(Severity::Normal, delay_ms, now + 3_600_000);
        e.step(Input::Created, now, Retry::default(), None);
        hotline::store::NewAlert {
            key_id: None,
            title: "Deploy needs approval".into(),
            message: Some("Release 42 waits.".into()),
            severity: "normal".into(),
            alert_type: "approval".into(),
            delay_seconds: delay_ms / 1000,
            phone_id: phone.id.clone(),
            escalation: e,
            metadata: Some(json!({"pr": 42})),
            client_id: client.map(str::to_owned),
            created_at: now,
        }
    };
    // Unverified phones get no alerts.
    assert!(matches!(
        s.create_alert(&org, &new(None, 0)).await,
        Err(StoreError::Invalid("phone_number", _))
    ));
    s.set_phone_code(&org, &phone.id, "123456", now + 60_000)
        .await
        .unwrap();
    s.verify_phone(&org, &phone.id, "123456", now)
        .await
        .unwrap()
        .unwrap();
    let (delayed, created) = s
        .create_alert(&org, &new(Some("req-1"), 300_000))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(delayed.escalation.status, Status::WaitingForPrimaryAck);
    assert_eq!(delayed.to_number, "+14155550100");
    // Idempotent, also when racing.
    let racers = (0..4).map(|_| {
        let s = s.clone();
        let n = new(Some("req-2"), 600_000);
        let org = org.clone();
        tokio::spawn(async move { s.create_alert(&org, &n).await.unwrap() })
    });
    let mut ids = HashSet::new();
    let mut fresh = 0;
    for r in racers {
        let (a, created) = r.await.unwrap();
        ids.insert(a.id);
        fresh += usize::from(created);
    }
    assert_eq!((ids.len(), fresh), (1, 1));
    let (again, created) = s.create_alert(&org, &new(Some("req-1"), 0)).await.unwrap();
    assert!(!created);
    assert_eq!(again.id, delayed.id);

    // Nothing is due before the delay; then exactly one claimer gets it.
    assert!(
        s.claim_due_alerts(now + 299_999, 10, 30_000)
            .await
            .unwrap()
            .is_empty()
    );
    let due = now + 300_000;
    let claims = (0..4).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.claim_due_alerts(due, 10, 30_000).await.unwrap() })
    });
    let mut claimed = Vec::new();
    for c in claims {
        claimed.extend(c.await.unwrap().into_iter().map(|a| a.id));
    }
    claimed.sort();
    assert_eq!(claimed, std::slice::from_ref(&delayed.id));
    // While leased, nobody else gets it; after the lease, someone does.
    assert!(
        s.claim_due_alerts(due + 29_999, 10, 30_000)
            .await
            .unwrap()
            .is_empty()
    );
    let alert = s
        .claim_due_alerts(due + 30_000, 10, 30_000)
        .await
        .unwrap()
        .remove(0);

    // A step is saved over the state it came from, once.
    let mut state = alert.escalation.clone();
    let actions = state.step(Input::Due, due + 30_000, Retry::default(), None);
    assert!(!actions.is_empty());
    let transitions = vec![(Status::WaitingForPrimaryAck, Status::EscalatingCall, None)];
    assert!(
        s.save_escalation(
            &alert,
            alert.escalation_step,
            &state,
            &transitions,
            due + 30_000
        )
        .await
        .unwrap()
    );
    assert!(
        !s.save_escalation(
            &alert,
            alert.escalation_step,
            &state,
            &transitions,
            due + 30_000
        )
        .await
        .unwrap()
    );
    let stored = s.get_alert(&org, &alert.id).await.unwrap();
    assert_eq!(stored.escalation.status, Status::EscalatingCall);
    assert_eq!(stored.escalation_step, 1);
    assert!(stored.escalation.calling);
    // A call in progress wakes only at its watchdog (its end normally
    // comes first).
    let watchdog = due + 30_000 + Retry::default().call_timeout_ms;
    assert_eq!(stored.escalation.next_at, Some(watchdog));
    assert!(
        s.claim_due_alerts(watchdog - 1, 10, 30_000)
            .await
            .unwrap()
            .iter()
            .all(|a| a.id != alert.id)
    );
    let events = s.alert_events(&alert.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].0.as_str(), events[0].1.as_str()),
        ("waiting_for_primary_ack", "escalating_call")
    );

    // Deliveries.
    let mut d = s
        .start_alert_delivery(&stored, 1, due + 30_000)
        .await
        .unwrap();
    d.status = "acknowledged".into();
    d.call_id = Some("call_1".into());
    d.ended_at = Some(due + 60_000);
    s.update_alert_delivery(&d).await.unwrap();
    let list = s.alert_deliveries(&alert.id).await.unwrap();
    assert_eq!(list, [d]);

    // Listing by status, newest first.
    let page = s
        .list_alerts(
            &org,
            &AlertFilter {
                status: Some(Status::EscalatingCall),
                ..AlertFilter::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = page.items.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, [alert.id.as_str()]);
    let page = s
        .list_alerts(
            &org,
            &AlertFilter {
                status: Some(Status::WaitingForPrimaryAck),
                severity: Some("normal".into()),
                ..AlertFilter::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}
