//! `/v1/personas`: reusable caller identities for outbound calls (see
//! [`crate::playbooks::personas`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::agents::is_language_tag;
use super::inbound::check_voice;
use super::{found, listed, not_found};
use crate::api::extract::{JsonBody, QueryParams, present};
use crate::api::page::{List, ListParams, list_schema};
use crate::api::validate::{Problems, not_null};
use crate::api::{ApiError, AppState, Caller};
use crate::playbooks::{NewPersona, Persona, PersonaUpdate, trim_rules};

/// What a missing one is called in a 404.
const WHAT: &str = "persona";

/// The routes of `/v1/personas`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/personas", get(list).post(create))
        .route("/personas/{id}", get(read).patch(update).delete(remove))
}

/// A persona as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PersonaOut {
    /// `per_` and 24 hex digits.
    pub id: String,
    /// A label for people.
    pub name: String,
    /// How the agent introduces itself (`Alex`).
    pub caller_name: String,
    /// Who the agent calls for.
    pub company: Option<String>,
    /// The agent's role there.
    pub role: Option<String>,
    /// Voice id (`GET /v1/voices`).
    pub voice: Option<String>,
    /// BCP 47 language tag.
    pub language: Option<String>,
    /// Rules the agent keeps on every call as this persona.
    pub default_rules: Vec<String>,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
}

impl From<Persona> for PersonaOut {
    fn from(p: Persona) -> Self {
        PersonaOut {
            id: p.id,
            name: p.name,
            caller_name: p.caller_name,
            company: p.company,
            role: p.role,
            voice: p.voice,
            language: p.language,
            default_rules: p.default_rules,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

list_schema!(PersonaList, PersonaOut);

/// `POST /v1/personas`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePersona {
    /// A label for people, 1 to 200 characters.
    pub name: String,
    /// How the agent introduces itself, 1 to 100 characters.
    pub caller_name: String,
    /// Who the agent calls for, up to 200 characters.
    #[serde(default)]
    pub company: Option<String>,
    /// The agent's role there, up to 200 characters.
    #[serde(default)]
    pub role: Option<String>,
    /// A voice id of `GET /v1/voices`.
    #[serde(default)]
    pub voice: Option<String>,
    /// BCP 47 language tag (`en-US`).
    #[serde(default)]
    pub language: Option<String>,
    /// Up to 20 rules of up to 500 characters.
    #[serde(default)]
    pub default_rules: Vec<String>,
}

/// `PATCH /v1/personas/{id}`: only the fields sent change; `null` clears
/// an optional field.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePersona {
    /// New label (not null).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// New caller name (not null).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub caller_name: Option<Option<String>>,
    /// New or cleared company.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub company: Option<Option<String>>,
    /// New or cleared role.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub role: Option<Option<String>>,
    /// New or cleared voice.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub voice: Option<Option<String>>,
    /// New or cleared language.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub language: Option<Option<String>>,
    /// New rules, replacing the list (not null; `[]` for none).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub default_rules: Option<Option<Vec<String>>>,
}

/// Checks a language tag's shape, as agents' are checked.
pub(crate) fn check_language(p: &mut Problems, field: &str, value: Option<&str>) {
    if let Some(l) = value
        && !is_language_tag(l)
    {
        p.add(field, "must be a BCP 47 language tag such as en-US");
    }
}

fn add_all(p: &mut Problems, problems: crate::playbooks::Problems) {
    for (field, msg) in problems {
        p.add(&field, msg);
    }
}

/// Creates a persona.
#[utoipa::path(
    post, path = "/v1/personas", tag = "personas",
    request_body = CreatePersona,
    responses(
        (status = 201, description = "Created", body = PersonaOut),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreatePersona>,
) -> Result<(StatusCode, Json<PersonaOut>), ApiError> {
    let new = NewPersona {
        name: body.name.trim().to_owned(),
        caller_name: body.caller_name.trim().to_owned(),
        company: body.company,
        role: body.role,
        voice: body.voice,
        language: body.language,
        default_rules: trim_rules(body.default_rules),
    };
    let mut p = Problems::default();
    add_all(&mut p, new.check());
    check_language(&mut p, "language", new.language.as_deref());
    check_voice(
        &mut p,
        &state,
        &caller.org_id,
        "voice",
        new.voice.as_deref(),
    )
    .await?;
    p.finish()?;
    let persona = state.store.create_persona(&caller.org_id, &new).await?;
    Ok((StatusCode::CREATED, Json(persona.into())))
}

/// Lists the organization's personas, newest first.
#[utoipa::path(
    get, path = "/v1/personas", tag = "personas",
    params(ListParams),
    responses(
        (status = 200, description = "A page of personas", body = PersonaList),
        (status = 422, description = "Bad paging parameter", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<List<PersonaOut>>, ApiError> {
    listed(state.store.list_personas(&caller.org_id, &query.page()?)).await
}

/// Reads one persona.
#[utoipa::path(
    get, path = "/v1/personas/{id}", tag = "personas",
    params(("id" = String, Path, description = "Persona id")),
    responses(
        (status = 200, description = "The persona", body = PersonaOut),
        (status = 404, description = "No such persona", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PersonaOut>, ApiError> {
    found(WHAT, state.store.get_persona(&caller.org_id, &id)).await
}

/// Changes the fields sent.
#[utoipa::path(
    patch, path = "/v1/personas/{id}", tag = "personas",
    params(("id" = String, Path, description = "Persona id")),
    request_body = UpdatePersona,
    responses(
        (status = 200, description = "The persona as updated", body = PersonaOut),
        (status = 404, description = "No such persona", body = crate::api::error::ErrorBody),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdatePersona>,
) -> Result<Json<PersonaOut>, ApiError> {
    let mut p = Problems::default();
    let update = PersonaUpdate {
        name: not_null(&mut p, "name", body.name).map(|n| n.trim().to_owned()),
        caller_name: not_null(&mut p, "caller_name", body.caller_name).map(|n| n.trim().to_owned()),
        company: body.company,
        role: body.role,
        voice: body.voice,
        language: body.language,
        default_rules: not_null(&mut p, "default_rules", body.default_rules).map(trim_rules),
    };
    add_all(&mut p, update.check());
    if let Some(l) = &update.language {
        check_language(&mut p, "language", l.as_deref());
    }
    if let Some(v) = &update.voice {
        check_voice(&mut p, &state, &caller.org_id, "voice", v.as_deref()).await?;
    }
    p.finish()?;
    let persona = state
        .store
        .update_persona(&caller.org_id, &id, &update)
        .await
        .map_err(not_found(WHAT))?;
    Ok(Json(persona.into()))
}

/// Deletes a persona; numbers whose outbound defaults named it are left
/// without one.
#[utoipa::path(
    delete, path = "/v1/personas/{id}", tag = "personas",
    params(("id" = String, Path, description = "Persona id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such persona", body = crate::api::error::ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_persona(&caller.org_id, &id)
        .await
        .map_err(not_found(WHAT))?;
    Ok(StatusCode::NO_CONTENT)
}
