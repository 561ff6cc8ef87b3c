//! `GET /v1/prompt-templates`: ready-made prompts for AI numbers and
//! calls (receptionist, lead qualifier, appointment booker…), written for
//! real small businesses, with `[PLACEHOLDERS]` to fill in. The texts are
//! in [`crate::agent::templates`].

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::agent::templates::{self, Direction, Placeholder, ReportField, Template};
use crate::api::extract::QueryParams;
use crate::api::page::{List, list_schema};
use crate::api::{ApiError, AppState, Caller};

/// The routes of `/v1/prompt-templates`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/prompt-templates", get(list))
        .route("/prompt-templates/{id}", get(read))
}

/// A prompt template as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TemplateOut {
    /// Slug (`receptionist`, `lead-qualifier`, …).
    pub id: String,
    /// Display name.
    pub name: String,
    /// `inbound` (answers the business's number) or `outbound` (places
    /// calls).
    pub direction: Direction,
    /// What the agent does.
    pub description: String,
    /// The kind of business the text was written for.
    pub example: String,
    /// The system prompt: fill in its placeholders and use it as an
    /// agent's `system_prompt`.
    pub system_prompt: String,
    /// What the agent says first (an agent's `first_message`).
    pub first_message: String,
    /// Every `[PLACEHOLDER]` in the prompt and first message, in order of
    /// first appearance, with what to put there.
    pub placeholders: Vec<Placeholder>,
    /// A voice of `GET /v1/voices` that suits it: this server's natural
    /// local voice.
    pub recommended_voice: String,
    /// A sensible `max_duration_secs` for such calls.
    pub max_duration_secs: u32,
    /// What a report of such a call should capture.
    pub report_fields: Vec<ReportField>,
    /// `report_fields` as a JSON Schema, ready for an agent's
    /// `model.structured_data_schema`.
    #[schema(value_type = Object)]
    pub structured_data_schema: Value,
}

list_schema!(TemplateList, TemplateOut);

fn shown(t: &Template, voice: &str) -> TemplateOut {
    TemplateOut {
        id: t.id.clone(),
        name: t.name.clone(),
        direction: t.direction,
        description: t.description.clone(),
        example: t.example.clone(),
        system_prompt: t.system_prompt.clone(),
        first_message: t.first_message.clone(),
        placeholders: t.placeholders.clone(),
        recommended_voice: voice.to_owned(),
        max_duration_secs: t.max_duration_secs,
        report_fields: t.report_fields.clone(),
        structured_data_schema: t.structured_data_schema(),
    }
}

/// The voice templates recommend: the server's first local voice (the
/// embedded Piper voice when installed, else espeak-ng's).
async fn recommended_voice(state: &AppState) -> Result<String, ApiError> {
    let voices = super::voices::catalog(state, None).await?;
    Ok(voices
        .into_iter()
        .next()
        .map_or_else(|| "en-us".to_owned(), |v| v.id))
}

/// Lists the prompt templates, inbound first.
#[utoipa::path(
    get, path = "/v1/prompt-templates", tag = "prompt-templates",
    params(("direction" = Option<String>, Query, description = "`inbound` or `outbound`; both when absent")),
    responses(
        (status = 200, description = "The templates (one page: `next_cursor` is null)", body = TemplateList),
        (status = 422, description = "Unknown direction", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    query: QueryParams,
) -> Result<Json<List<TemplateOut>>, ApiError> {
    let direction = query.choice(
        "direction",
        &[Direction::Inbound.as_str(), Direction::Outbound.as_str()],
    )?;
    let voice = recommended_voice(&state).await?;
    let data = templates::all()
        .iter()
        .filter(|t| direction.is_none_or(|d| t.direction.as_str() == d))
        .map(|t| shown(t, &voice))
        .collect();
    Ok(Json(List {
        data,
        next_cursor: None,
    }))
}

/// Reads one prompt template.
#[utoipa::path(
    get, path = "/v1/prompt-templates/{id}", tag = "prompt-templates",
    params(("id" = String, Path, description = "Template id, e.g. `receptionist`")),
    responses(
        (status = 200, description = "The template", body = TemplateOut),
        (status = 404, description = "No such template", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TemplateOut>, ApiError> {
    let t = templates::get(&id).ok_or(ApiError::NotFound("prompt template"))?;
    let voice = recommended_voice(&state).await?;
    Ok(Json(shown(t, &voice)))
}
