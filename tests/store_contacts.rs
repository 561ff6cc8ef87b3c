//! Contacts in the storage layer against real databases, each test on a
//! fresh SQLite file and on a fresh database of the Postgres server named
//! by `HOTLINE_TEST_POSTGRES` (skipped, and said so, without it): first
//! contact and counting under concurrency, lookups, filters, pagination,
//! updates, isolation, and the right to be forgotten checked in the
//! database itself.

use std::collections::HashSet;

use hotline::call::CallDirection;
use hotline::store::{
    CallUpdate, ContactFilter, ContactUpdate, NewCall, NewTranscriptEntry, PageRequest, REDACTED,
    StoreError,
};
use serde_json::json;
use sqlx::Row;

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
    first_contact_creates_and_later_calls_count,
    concurrent_first_calls_make_one_contact,
    lookups_updates_and_isolation,
    lists_filter_and_page,
    blocked_numbers_are_listed_for_the_engine,
    forgetting_redacts_the_calls_in_the_database,
);

const ALICE: &str = "+14155550100";
const BOB: &str = "+14155550111";

async fn first_contact_creates_and_later_calls_count(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap();
    let first = s.touch_contact(&org.id, ALICE, 1_000).await.unwrap();
    assert!(first.id.starts_with("cnt_"), "{}", first.id);
    assert_eq!(first.phone_number, ALICE);
    assert_eq!(first.call_count, 1);
    assert_eq!(first.last_seen_at, Some(1_000));
    assert_eq!(first.display_name, None);
    assert!(first.tags.is_empty());
    assert!(!first.blocked);

    let second = s.touch_contact(&org.id, ALICE, 5_000).await.unwrap();
    assert_eq!(second.id, first.id, "one contact per number");
    assert_eq!(second.call_count, 2);
    assert_eq!(second.last_seen_at, Some(5_000));
    assert_eq!(second.created_at, first.created_at);
    // A call reported late does not move last_seen_at back.
    let late = s.touch_contact(&org.id, ALICE, 2_000).await.unwrap();
    assert_eq!(late.call_count, 3);
    assert_eq!(late.last_seen_at, Some(5_000));

    // Only E.164 numbers are contacts.
    for bad in ["anonymous", "4155550100", "+0123", ""] {
        assert!(
            matches!(
                s.touch_contact(&org.id, bad, 1).await,
                Err(StoreError::Invalid("phone_number", _))
            ),
            "{bad:?} accepted"
        );
    }
}

async fn concurrent_first_calls_make_one_contact(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        let org_id = org.id.clone();
        tasks.push(tokio::spawn(async move {
            s.touch_contact(&org_id, ALICE, 1_000 + i).await.unwrap()
        }));
    }
    let mut ids = HashSet::new();
    let mut counts = Vec::new();
    for t in tasks {
        let c = t.await.unwrap();
        ids.insert(c.id);
        counts.push(c.call_count);
    }
    assert_eq!(ids.len(), 1, "all first calls found the same contact");
    counts.sort();
    assert_eq!(
        counts,
        (1..=20).collect::<Vec<i64>>(),
        "every call counted exactly once"
    );
    let c = s.get_contact_by_phone(&org.id, ALICE).await.unwrap();
    assert_eq!(c.call_count, 20);
    assert_eq!(c.last_seen_at, Some(1_019));
    let page = s
        .list_contacts(&org.id, &ContactFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

async fn lookups_updates_and_isolation(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap();
    let other = s.create_org("other").await.unwrap();
    let c = s.touch_contact(&org.id, ALICE, 1).await.unwrap();
    assert_eq!(s.get_contact(&org.id, &c.id).await.unwrap(), c);
    assert_eq!(s.get_contact_by_phone(&org.id, ALICE).await.unwrap(), c);
    assert!(matches!(
        s.get_contact_by_phone(&org.id, BOB).await,
        Err(StoreError::NotFound)
    ));

    let updated = s
        .update_contact(
            &org.id,
            &c.id,
            &ContactUpdate {
                display_name: Some(Some("Alice Martin".into())),
                tags: Some(vec![" VIP ".into(), "plumbing".into(), "vip".into()]),
                owner_notes: Some(Some("Prefers mornings.".into())),
                blocked: Some(true),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.display_name.as_deref(), Some("Alice Martin"));
    assert_eq!(updated.tags, ["vip", "plumbing"]);
    assert_eq!(updated.owner_notes.as_deref(), Some("Prefers mornings."));
    assert!(updated.blocked);
    assert_eq!(updated.call_count, 1, "an edit is not a call");
    assert!(updated.updated_at >= c.updated_at);

    // Only what is given changes; Some(None) clears.
    let cleared = s
        .update_contact(
            &org.id,
            &c.id,
            &ContactUpdate {
                display_name: Some(None),
                ..ContactUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.display_name, None);
    assert_eq!(cleared.tags, ["vip", "plumbing"]);
    assert_eq!(cleared.owner_notes.as_deref(), Some("Prefers mornings."));
    assert!(cleared.blocked);

    let too_many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    for bad in [
        ContactUpdate {
            tags: Some(too_many),
            ..ContactUpdate::default()
        },
        ContactUpdate {
            tags: Some(vec!["x".repeat(51)]),
            ..ContactUpdate::default()
        },
        ContactUpdate {
            owner_notes: Some(Some("n".repeat(4001))),
            ..ContactUpdate::default()
        },
    ] {
        assert!(
            matches!(
                s.update_contact(&org.id, &c.id, &bad).await,
                Err(StoreError::Invalid(..))
            ),
            "{bad:?} accepted"
        );
    }

    // Another org sees nothing of it, and has its own contact for the
    // same number.
    assert!(matches!(
        s.get_contact(&other.id, &c.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.update_contact(&other.id, &c.id, &ContactUpdate::default())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.forget_contact(&other.id, &c.id).await,
        Err(StoreError::NotFound)
    ));
    let theirs = s.touch_contact(&other.id, ALICE, 1).await.unwrap();
    assert_ne!(theirs.id, c.id);
    assert_eq!(theirs.call_count, 1);
    assert!(!theirs.blocked);
    assert_eq!(
        s.get_contact(&org.id, &c.id).await.unwrap().call_count,
        1,
        "the other org's call is not counted here"
    );
}

async fn lists_filter_and_page(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap();
    let people = [
        ("+14155550100", "Alice Martin", vec!["vip"], true),
        ("+14155550111", "Bob Stone", vec!["plumbing", "vip"], false),
        ("+442071234567", "alan_turing", vec![], false),
        ("+14165550199", "Zoë 100%", vec!["plumbing"], false),
    ];
    let mut ids = Vec::new();
    for (n, name, tags, blocked) in &people {
        let c = s.touch_contact(&org.id, n, 1).await.unwrap();
        s.update_contact(
            &org.id,
            &c.id,
            &ContactUpdate {
                display_name: Some(Some((*name).into())),
                tags: Some(tags.iter().map(|t| t.to_string()).collect()),
                blocked: Some(*blocked),
                ..ContactUpdate::default()
            },
        )
        .await
        .unwrap();
        ids.push(c.id);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let names = |filter: ContactFilter| {
        let s = s.clone();
        let org = org.id.clone();
        async move {
            let page = s
                .list_contacts(&org, &filter, &PageRequest::first(100))
                .await
                .unwrap();
            let mut v: Vec<String> = page
                .items
                .into_iter()
                .map(|c| c.display_name.unwrap())
                .collect();
            v.sort();
            v
        }
    };
    assert_eq!(names(ContactFilter::default()).await.len(), 4);
    assert_eq!(
        names(ContactFilter {
            blocked: Some(true),
            ..Default::default()
        })
        .await,
        ["Alice Martin"]
    );
    assert_eq!(
        names(ContactFilter {
            blocked: Some(false),
            ..Default::default()
        })
        .await
        .len(),
        3
    );
    assert_eq!(
        names(ContactFilter {
            tag: Some("VIP".into()),
            ..Default::default()
        })
        .await,
        ["Alice Martin", "Bob Stone"]
    );
    // A tag is matched whole, not as a part of another.
    assert!(
        names(ContactFilter {
            tag: Some("vi".into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    let q = |q: &str| ContactFilter {
        q: Some(q.into()),
        ..Default::default()
    };
    assert_eq!(names(q("al")).await, ["Alice Martin", "alan_turing"]);
    assert_eq!(names(q("ALICE")).await, ["Alice Martin"]);
    // Wildcards are literal: `_` does not match any character.
    assert_eq!(names(q("alan_")).await, ["alan_turing"]);
    assert!(names(q("ala_")).await.is_empty());
    assert!(names(q("%")).await.is_empty());
    assert_eq!(names(q("+1415")).await, ["Alice Martin", "Bob Stone"]);
    assert_eq!(
        names(q("44")).await,
        ["alan_turing"],
        "digits match after +"
    );
    assert_eq!(
        names(ContactFilter {
            tag: Some("plumbing".into()),
            q: Some("+1416".into()),
            blocked: Some(false),
        })
        .await,
        ["Zoë 100%"]
    );

    // Pages of one walk every contact once, newest first.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .list_contacts(
                &org.id,
                &ContactFilter::default(),
                &PageRequest {
                    limit: Some(1),
                    cursor: cursor.clone(),
                },
            )
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|c| c.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);
}

async fn blocked_numbers_are_listed_for_the_engine(db: &mut TestDb) {
    let s = &db.store;
    let a = s.create_org("a").await.unwrap();
    let b = s.create_org("b").await.unwrap();
    let block = ContactUpdate {
        blocked: Some(true),
        ..ContactUpdate::default()
    };
    let c1 = s.touch_contact(&a.id, ALICE, 1).await.unwrap();
    s.update_contact(&a.id, &c1.id, &block).await.unwrap();
    s.touch_contact(&a.id, BOB, 1).await.unwrap();
    let c3 = s.touch_contact(&b.id, BOB, 1).await.unwrap();
    s.update_contact(&b.id, &c3.id, &block).await.unwrap();
    let mut got = s.blocked_numbers().await.unwrap();
    got.sort();
    let mut want = vec![(a.id.clone(), ALICE.to_owned()), (b.id, BOB.to_owned())];
    want.sort();
    assert_eq!(got, want);
    s.update_contact(
        &a.id,
        &c1.id,
        &ContactUpdate {
            blocked: Some(false),
            ..ContactUpdate::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(s.blocked_numbers().await.unwrap().len(), 1);
}

/// A call with `transcript` and an agent's conclusion, as the bridge
/// records one.
async fn concluded_call(
    db: &TestDb,
    org: &str,
    new: NewCall,
    contact_id: Option<&str>,
    transcript: &[&str],
) -> String {
    let s = &db.store;
    let (call, _) = s.create_call(org, &new).await.unwrap();
    let id = call.id.to_string();
    if let Some(c) = contact_id {
        s.set_call_contact(org, &id, c).await.unwrap();
    }
    for (i, line) in transcript.iter().enumerate() {
        s.append_transcript(
            org,
            &id,
            &NewTranscriptEntry {
                speaker: if i % 2 == 0 { "agent" } else { "caller" }.into(),
                text: (*line).into(),
                start_ms: Some(i as i64 * 1000),
                end_ms: Some(i as i64 * 1000 + 900),
                interrupted: false,
            },
        )
        .await
        .unwrap();
    }
    let update = CallUpdate {
        answered_at: Some(10_000),
        summary: Some("Alice wants a plumber on Friday.".into()),
        outcome: Some("booked".into()),
        structured_data: Some(json!({"name": "Alice", "day": "Friday"})),
        recording_path: Some(format!("recordings/{id}.wav")),
        hangup_by: Some("caller".into()),
        hangup_reason: Some("caller hung up".into()),
        ..CallUpdate::ended(hotline::store::CallStatus::Completed, 70_000)
    };
    s.update_call(org, &id, &update).await.unwrap();
    id
}

async fn forgetting_redacts_the_calls_in_the_database(db: &mut TestDb) {
    let s = &db.store;
    let org = s.create_org("acme").await.unwrap();
    let other = s.create_org("other").await.unwrap();
    let alice = s.touch_contact(&org.id, ALICE, 1).await.unwrap();
    s.update_contact(
        &org.id,
        &alice.id,
        &ContactUpdate {
            display_name: Some(Some("Alice".into())),
            blocked: Some(true),
            ..ContactUpdate::default()
        },
    )
    .await
    .unwrap();
    let lines = ["Hello, Acme plumbing.", "Hi, this is Alice, my sink leaks."];
    // Linked by contact_id (an inbound call).
    let inbound = concluded_call(
        db,
        &org.id,
        NewCall::new(CallDirection::Inbound, ALICE, "+14155559999"),
        Some(&alice.id),
        &lines,
    )
    .await;
    // Not linked, but to the number (an outbound call from before
    // contacts), and one from the bare digits a caller ID may carry.
    let outbound = concluded_call(
        db,
        &org.id,
        NewCall::new(CallDirection::Outbound, "+14155559999", ALICE),
        None,
        &lines,
    )
    .await;
    let bare = concluded_call(
        db,
        &org.id,
        NewCall::new(CallDirection::Inbound, "14155550100", "+14155559999"),
        None,
        &lines,
    )
    .await;
    // Someone else's call, and the other org's call with the same number,
    // stay as they are.
    let bob = concluded_call(
        db,
        &org.id,
        NewCall::new(CallDirection::Inbound, BOB, "+14155559999"),
        None,
        &lines,
    )
    .await;
    let theirs = concluded_call(
        db,
        &other.id,
        NewCall::new(CallDirection::Inbound, ALICE, "+14155558888"),
        None,
        &lines,
    )
    .await;
    let before = s.get_call(&org.id, &inbound).await.unwrap();

    let forgotten = s.forget_contact(&org.id, &alice.id).await.unwrap();
    assert_eq!(forgotten.calls, 3);
    assert_eq!(forgotten.transcript_lines, 6);
    let mut recs = forgotten.recordings.clone();
    recs.sort();
    let mut want: Vec<String> = [&inbound, &outbound, &bare]
        .iter()
        .map(|id| format!("recordings/{id}.wav"))
        .collect();
    want.sort();
    assert_eq!(recs, want);

    // Straight from the database, not through the store's readers.
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let contacts: i64 = sqlx::query("SELECT COUNT(*) AS n FROM contacts WHERE id = $1")
        .bind(alice.id.clone())
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(contacts, 0, "the contact row is gone");
    for id in [&inbound, &outbound, &bare] {
        let rows = sqlx::query(
            "SELECT seq, speaker, text, start_ms FROM transcript_entries WHERE call_id = $1 ORDER BY seq",
        )
        .bind(id.clone())
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(rows.len(), 2, "lines are kept, their text is not");
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.try_get::<String, _>("text").unwrap(), REDACTED);
            assert_eq!(r.try_get::<i64, _>("seq").unwrap(), i as i64 + 1);
            assert_eq!(r.try_get::<i64, _>("start_ms").unwrap(), i as i64 * 1000);
        }
        let call = sqlx::query(
            "SELECT summary, outcome, structured_data, recording_path, contact_id, status, \
             answered_at, ended_at, duration_ms, hangup_reason, from_addr, to_addr \
             FROM calls WHERE id = $1",
        )
        .bind(id.clone())
        .fetch_one(&mut conn)
        .await
        .unwrap();
        for col in [
            "summary",
            "outcome",
            "structured_data",
            "recording_path",
            "contact_id",
        ] {
            assert_eq!(
                call.try_get::<Option<String>, _>(col).unwrap(),
                None,
                "{col} of {id}"
            );
        }
        assert_eq!(call.try_get::<String, _>("status").unwrap(), "completed");
        assert_eq!(
            call.try_get::<Option<i64>, _>("answered_at").unwrap(),
            Some(10_000)
        );
        assert_eq!(
            call.try_get::<Option<i64>, _>("ended_at").unwrap(),
            Some(70_000)
        );
        assert_eq!(
            call.try_get::<Option<i64>, _>("duration_ms").unwrap(),
            Some(60_000)
        );
        assert_eq!(
            call.try_get::<Option<String>, _>("hangup_reason")
                .unwrap()
                .as_deref(),
            Some("caller hung up")
        );
    }
    // Through the store too: the record reads back with its metadata.
    let after = s.get_call(&org.id, &inbound).await.unwrap();
    assert_eq!(
        (after.created_at, after.answered_at, after.ended_at),
        (before.created_at, before.answered_at, before.ended_at)
    );
    assert_eq!(after.summary, None);
    assert_eq!(after.structured_data, None);
    for (org_id, id) in [(&org.id, &bob), (&other.id, &theirs)] {
        let t = s.list_transcript(org_id, id).await.unwrap();
        assert_eq!(t[1].text, lines[1], "{id} untouched");
        let call = s.get_call(org_id, id).await.unwrap();
        assert!(call.summary.is_some() && call.recording_path.is_some());
    }
    sqlx::Connection::close(conn).await.unwrap();

    // Gone for good; a new call from the number starts afresh.
    assert!(matches!(
        s.get_contact(&org.id, &alice.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.forget_contact(&org.id, &alice.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(s.blocked_numbers().await.unwrap().is_empty());
    let fresh = s.touch_contact(&org.id, ALICE, 100).await.unwrap();
    assert_ne!(fresh.id, alice.id);
    assert_eq!(fresh.call_count, 1);
    assert_eq!(fresh.display_name, None);
    assert!(!fresh.blocked);
}
