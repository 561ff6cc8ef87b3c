//! `/v1/contacts`: the people an organization's calls meet, one per phone
//! number. A contact is created on first contact (an inbound call to one
//! of the organization's stored numbers from an E.164 caller ID, or an
//! outbound API call to an E.164 number) and counted on every call after
//! it; the owner names, tags, annotates and blocks it here. A blocked
//! contact's calls are declined with `603 Decline` before they are
//! answered (see [`crate::api::calls::contacts`]).
//!
//! `DELETE` is the right to be forgotten: the contact goes, and on every
//! call of the organization with the number the transcript's text is
//! replaced by `[redacted]`, what the agent concluded (summary, outcome,
//! structured data) is cleared and the recording deleted; the calls'
//! metadata (ids, numbers, times, status, hang-up cause) stays.

use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use utoipa::ToSchema;

use super::{found, listed, not_found};
use crate::api::error::FieldError;
use crate::api::extract::{JsonBody, QueryParams, present};
use crate::api::page::{List, ListParams, list_schema};
use crate::api::validate::{Problems, e164, not_null};
use crate::api::{ApiError, AppState, Caller};
use crate::store::{
    Contact, ContactFilter, ContactUpdate, MAX_DISPLAY_NAME_CHARS, MAX_OWNER_NOTES_CHARS,
    MAX_TAG_CHARS, MAX_TAGS, normalize_tag,
};

/// What a missing one is called in a 404.
const WHAT: &str = "contact";

/// Longest `q` of a list, in characters.
const MAX_Q_CHARS: usize = 100;

/// The routes of `/v1/contacts`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/contacts", get(list))
        .route("/contacts/by-phone/{e164}", get(read_by_phone))
        .route("/contacts/{id}", get(read).patch(update).delete(forget))
}

/// A contact as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ContactOut {
    /// `cnt_` and 24 hex digits.
    pub id: String,
    /// The number, E.164; one contact per number.
    pub phone_number: String,
    /// What the owner calls them.
    pub display_name: Option<String>,
    /// Short labels, lower case.
    pub tags: Vec<String>,
    /// The owner's notes.
    pub owner_notes: Option<String>,
    /// Their calls to the organization's numbers are declined (603).
    pub blocked: bool,
    /// Calls with them: inbound calls that reached the organization
    /// (declined calls of a blocked contact do not count) and outbound
    /// API calls.
    pub call_count: i64,
    /// When the last counted call started, unix ms.
    pub last_seen_at: Option<i64>,
    /// First contact, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
}

impl From<Contact> for ContactOut {
    fn from(c: Contact) -> Self {
        ContactOut {
            id: c.id,
            phone_number: c.phone_number,
            display_name: c.display_name,
            tags: c.tags,
            owner_notes: c.owner_notes,
            blocked: c.blocked,
            call_count: c.call_count,
            last_seen_at: c.last_seen_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

list_schema!(ContactList, ContactOut);

/// `PATCH /v1/contacts/{id}`: only the fields sent change; `null` clears
/// an optional field. The number itself cannot change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContact {
    /// New or cleared display name (1 to 200 characters, trimmed).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// New tags, replacing the old ones (at most 20, each 1 to 50
    /// characters; stored trimmed and in lower case, duplicates dropped);
    /// `null` or `[]` clears them.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Option<Option<Vec<String>>>,
    /// New or cleared notes (at most 4000 characters).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub owner_notes: Option<Option<String>>,
    /// Block (their calls are declined) or unblock (not null).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>)]
    pub blocked: Option<Option<bool>>,
}

/// Lists the organization's contacts, newest first.
#[utoipa::path(
    get, path = "/v1/contacts", tag = "contacts",
    params(
        ListParams,
        ("blocked" = Option<bool>, Query, description = "Only blocked (`true`) or unblocked (`false`) contacts"),
        ("tag" = Option<String>, Query, description = "Only contacts with this tag (case-insensitive)"),
        ("q" = Option<String>, Query, description = "Only contacts whose display name (case-insensitive) or number starts with this"),
    ),
    responses(
        (status = 200, description = "A page of contacts", body = ContactList),
        (status = 422, description = "Bad query parameter", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<List<ContactOut>>, ApiError> {
    let mut problems = Vec::new();
    let blocked = match query.choice("blocked", &["true", "false"]) {
        Ok(b) => b.map(|b| b == "true"),
        Err(ApiError::Validation(e)) => {
            problems.extend(e);
            None
        }
        Err(e) => return Err(e),
    };
    let tag = match query.text("tag").map(normalize_tag).transpose() {
        Ok(t) => t,
        Err(e) => {
            problems.push(FieldError::query(
                "tag",
                format!("not a tag: {}", store_msg(e)),
            ));
            None
        }
    };
    let q = query.text("q").map(str::to_owned);
    if q.as_ref()
        .is_some_and(|q| q.trim().chars().count() > MAX_Q_CHARS)
    {
        problems.push(FieldError::query(
            "q",
            format!("at most {MAX_Q_CHARS} characters"),
        ));
    }
    let page = query.page()?;
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let filter = ContactFilter { blocked, tag, q };
    listed(state.store.list_contacts(&caller.org_id, &filter, &page)).await
}

fn store_msg(e: crate::store::StoreError) -> String {
    match e {
        crate::store::StoreError::Invalid(_, msg) => msg,
        other => other.to_string(),
    }
}

/// Reads one contact.
#[utoipa::path(
    get, path = "/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "Contact id")),
    responses(
        (status = 200, description = "The contact", body = ContactOut),
        (status = 404, description = "No such contact", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ContactOut>, ApiError> {
    found(WHAT, state.store.get_contact(&caller.org_id, &id)).await
}

/// Reads the contact of a phone number. The number is E.164; its `+` may
/// be sent as is or percent-encoded (`%2B14155550100`).
#[utoipa::path(
    get, path = "/v1/contacts/by-phone/{e164}", tag = "contacts",
    params(("e164" = String, Path, description = "The number in E.164 (`+14155550100`, or `%2B14155550100`)")),
    responses(
        (status = 200, description = "The contact", body = ContactOut),
        (status = 404, description = "No contact has this number", body = crate::api::error::ErrorBody),
        (status = 422, description = "Not an E.164 number", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn read_by_phone(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<ContactOut>, ApiError> {
    let number = e164("e164", &raw).map_err(|e| {
        ApiError::Validation(vec![FieldError {
            loc: vec!["path".into(), "e164".into()],
            msg: e.msg,
        }])
    })?;
    found(
        WHAT,
        state.store.get_contact_by_phone(&caller.org_id, &number),
    )
    .await
}

/// Changes the fields sent. Blocking or unblocking applies to the
/// contact's next call.
#[utoipa::path(
    patch, path = "/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "Contact id")),
    request_body = UpdateContact,
    responses(
        (status = 200, description = "The contact as updated", body = ContactOut),
        (status = 404, description = "No such contact", body = crate::api::error::ErrorBody),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateContact>,
) -> Result<Json<ContactOut>, ApiError> {
    let mut p = Problems::default();
    let display_name = body.display_name.map(|n| n.map(|n| n.trim().to_owned()));
    if let Some(Some(n)) = &display_name {
        p.text("display_name", n, MAX_DISPLAY_NAME_CHARS);
    }
    let tags = body.tags.map(Option::unwrap_or_default);
    if let Some(tags) = &tags {
        if tags.len() > MAX_TAGS {
            p.add("tags", format!("at most {MAX_TAGS} tags"));
        }
        for (i, t) in tags.iter().enumerate() {
            let n = t.trim().chars().count();
            if n == 0 || n > MAX_TAG_CHARS {
                p.add(
                    &format!("tags.{i}"),
                    format!("must be 1 to {MAX_TAG_CHARS} characters"),
                );
            } else if let Err(e) = normalize_tag(t) {
                p.add(&format!("tags.{i}"), store_msg(e));
            }
        }
    }
    if let Some(Some(n)) = &body.owner_notes {
        p.text("owner_notes", n, MAX_OWNER_NOTES_CHARS);
    }
    let blocked = not_null(&mut p, "blocked", body.blocked);
    p.finish()?;
    let update = ContactUpdate {
        display_name,
        tags,
        owner_notes: body.owner_notes,
        blocked,
    };
    let contact = state
        .store
        .update_contact(&caller.org_id, &id, &update)
        .await
        .map_err(not_found(WHAT))?;
    crate::api::calls::contacts::contact_changed(&state, &contact);
    Ok(Json(contact.into()))
}

/// Forgets a contact (the right to be forgotten): the contact is deleted;
/// on every call of the organization with its number, the transcript's
/// text is replaced by `[redacted]`, the summary, outcome and structured
/// data are cleared and the recording is deleted. The calls' metadata
/// (ids, numbers, times, status, hang-up cause) stays. A later call from
/// the number starts a new contact.
#[utoipa::path(
    delete, path = "/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "Contact id")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 404, description = "No such contact", body = crate::api::error::ErrorBody),
    )
)]
pub async fn forget(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let contact = state
        .store
        .get_contact(&caller.org_id, &id)
        .await
        .map_err(not_found(WHAT))?;
    let forgotten = state
        .store
        .forget_contact(&caller.org_id, &id)
        .await
        .map_err(not_found(WHAT))?;
    crate::api::calls::contacts::contact_removed(&state, &caller.org_id, &contact.phone_number);
    for path in &forgotten.recordings {
        let mut file = PathBuf::from(path);
        if file.is_relative() {
            file = state.config.data_dir.join(file);
        }
        match tokio::fs::remove_file(&file).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // The record no longer points at it; say where it is so an
            // operator can finish the job.
            Err(e) => {
                warn!(contact = %id, file = %file.display(), error = %e, "cannot delete a forgotten contact's recording")
            }
        }
    }
    info!(
        contact = %id,
        calls = forgotten.calls,
        transcript_lines = forgotten.transcript_lines,
        recordings = forgotten.recordings.len(),
        "contact forgotten"
    );
    Ok(StatusCode::NO_CONTENT)
}
