//! `/v1/playbooks`: outbound call strategies. The nine built-ins (see
//! [`crate::playbooks::builtin`]) are listed first and are read-only; an
//! organization creates its own, from scratch or as a fork of another
//! (`fork_of`), and changes or deletes those. `POST /v1/playbooks/classify`
//! names the playbook that fits an objective.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::not_found;
use crate::agent::openai::OpenAiConfig;
use crate::api::extract::{JsonBody, QueryParams, present};
use crate::api::page::{List, ListParams, list_schema, page_error};
use crate::api::validate::{Problems, not_null};
use crate::api::{ApiError, AppState, Caller};
use crate::playbooks::classify::MAX_CUSTOM_CANDIDATES;
use crate::playbooks::{
    self, ClassifyMethod, NewPlaybook, Playbook, PlaybookUpdate, ResolveError, builtin,
    normalize_schema, trim_rules,
};
use crate::store::{PageRequest, StoreError};

/// What a missing one is called in a 404.
const WHAT: &str = "playbook";

/// Longest objective `classify` reads, in characters.
const OBJECTIVE_MAX: usize = 2_000;

/// The routes of `/v1/playbooks`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/playbooks", get(list).post(create))
        .route("/playbooks/classify", post(classify))
        .route("/playbooks/{id}", get(read).patch(update).delete(remove))
}

/// A playbook as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlaybookOut {
    /// A built-in's slug (`reservation`) or `pb_` and 24 hex digits.
    pub id: String,
    /// Ships with the server: read-only (fork it to change it).
    pub builtin: bool,
    /// Display name.
    pub name: String,
    /// What kind of call it is for.
    pub description: Option<String>,
    /// How the agent goes about the call.
    pub strategy: String,
    /// Rules the agent keeps on such calls.
    pub behavior_rules: Vec<String>,
    /// What to capture, as a JSON Schema object.
    #[schema(value_type = Option<Object>)]
    pub extraction_schema: Option<Value>,
    /// How the agent should sound.
    pub voice_tone: Option<String>,
    /// When the call counts as a success.
    pub success_criteria: Option<String>,
    /// The playbook this one was forked from.
    pub forked_from: Option<String>,
    /// Creation time, unix ms; null for built-ins.
    pub created_at: Option<i64>,
    /// Last change, unix ms; null for built-ins.
    pub updated_at: Option<i64>,
}

impl From<Playbook> for PlaybookOut {
    fn from(p: Playbook) -> Self {
        PlaybookOut {
            id: p.id,
            builtin: p.builtin,
            name: p.name,
            description: p.description,
            strategy: p.strategy,
            behavior_rules: p.behavior_rules,
            extraction_schema: p.extraction_schema,
            voice_tone: p.voice_tone,
            success_criteria: p.success_criteria,
            forked_from: p.forked_from,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

list_schema!(PlaybookList, PlaybookOut);

/// `POST /v1/playbooks`. Without `fork_of`, `name` and `strategy` are
/// required; with it, every field not sent is copied from that playbook
/// (`null` clears an optional one instead).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlaybook {
    /// A built-in id or one of the organization's playbooks to start from.
    #[serde(default)]
    pub fork_of: Option<String>,
    /// Display name, 1 to 200 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// What kind of call it is for, up to 1000 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// How the agent goes about the call, 1 to 1000 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub strategy: Option<Option<String>>,
    /// Up to 20 rules of up to 500 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub behavior_rules: Option<Option<Vec<String>>>,
    /// What to capture: a JSON Schema object, or a map of field name to
    /// type (`string`, `number`, `integer`, `boolean`, `date`, `time`,
    /// `datetime`, `string[]`, or `{"type": …, "description": …}`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub extraction_schema: Option<Option<Value>>,
    /// How the agent should sound, up to 150 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub voice_tone: Option<Option<String>>,
    /// When the call counts as a success, up to 400 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub success_criteria: Option<Option<String>>,
}

/// `PATCH /v1/playbooks/{id}`: only the fields sent change; `null` clears
/// an optional field. Built-ins cannot be changed (409).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlaybook {
    /// New name (not null).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// New or cleared description.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// New strategy (not null).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub strategy: Option<Option<String>>,
    /// New rules, replacing the list (not null; `[]` for none).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub behavior_rules: Option<Option<Vec<String>>>,
    /// New or cleared extraction schema.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub extraction_schema: Option<Option<Value>>,
    /// New or cleared tone.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub voice_tone: Option<Option<String>>,
    /// New or cleared success criteria.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub success_criteria: Option<Option<String>>,
}

/// `POST /v1/playbooks/classify`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    /// The call's objective, 1 to 2000 characters.
    pub objective: String,
}

/// The playbook that fits an objective.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ClassifyOut {
    /// A built-in id or one of the organization's playbooks.
    pub playbook_id: String,
    /// `llm` when the server's LLM chose it, `keywords` when the keyword
    /// table did (no LLM configured, or its answer was unusable).
    pub method: ClassifyMethod,
}

impl From<ResolveError> for ApiError {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::NotFound(field) => ApiError::field(field, no_such(field)),
            ResolveError::Store(e) => e.into(),
        }
    }
}

/// The 422 message of an id field that names nothing in the organization.
pub(crate) fn no_such(field: &str) -> &'static str {
    match field {
        "playbook_id" | "fork_of" => "no such playbook (a built-in id or one of yours)",
        "persona_id" => "no such persona",
        "agent_id" => "no such agent",
        _ => "not found",
    }
}

/// A schema sent by a client, normalized, or a problem on `field`.
pub(crate) fn schema_field(p: &mut Problems, field: &str, value: &Value) -> Option<Value> {
    match normalize_schema(value) {
        Ok(s) => Some(s),
        Err(e) => {
            p.add(field, e);
            None
        }
    }
}

fn add_all(p: &mut Problems, problems: playbooks::Problems) {
    for (field, msg) in problems {
        p.add(&field, msg);
    }
}

/// The playbook `id` names in the organization: a built-in or its own.
async fn find(state: &AppState, org_id: &str, id: &str) -> Result<Option<Playbook>, ApiError> {
    if let Some(b) = builtin::get(id) {
        return Ok(Some(b.clone()));
    }
    match state.store.get_playbook(org_id, id).await {
        Ok(p) => Ok(Some(p)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn read_only(id: &str) -> ApiError {
    ApiError::Conflict(format!(
        "{id} is a built-in playbook and cannot be changed or deleted; fork it with \
         POST /v1/playbooks {{\"fork_of\": \"{id}\"}} and change the copy"
    ))
}

/// Creates a playbook, from scratch or as a fork.
#[utoipa::path(
    post, path = "/v1/playbooks", tag = "playbooks",
    request_body = CreatePlaybook,
    responses(
        (status = 201, description = "Created", body = PlaybookOut),
        (status = 422, description = "A field is invalid, or fork_of names no playbook", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreatePlaybook>,
) -> Result<(StatusCode, Json<PlaybookOut>), ApiError> {
    let mut p = Problems::default();
    let base = match &body.fork_of {
        Some(id) => match find(&state, &caller.org_id, id).await? {
            Some(source) => Some(NewPlaybook::copy_of(&source)),
            None => return Err(ApiError::field("fork_of", no_such("fork_of"))),
        },
        None => None,
    };
    let forked = base.is_some();
    let mut new = base.unwrap_or(NewPlaybook {
        name: String::new(),
        description: None,
        strategy: String::new(),
        behavior_rules: Vec::new(),
        extraction_schema: None,
        voice_tone: None,
        success_criteria: None,
        forked_from: None,
    });
    // Required unless forked; null is refused by `not_null` either way.
    let (name_sent, strategy_sent) = (body.name.is_some(), body.strategy.is_some());
    match not_null(&mut p, "name", body.name) {
        Some(n) => new.name = n.trim().to_owned(),
        None if !forked && !name_sent => p.add("name", "field required"),
        None => {}
    }
    match not_null(&mut p, "strategy", body.strategy) {
        Some(s) => new.strategy = s.trim().to_owned(),
        None if !forked && !strategy_sent => p.add("strategy", "field required"),
        None => {}
    }
    if let Some(rules) = not_null(&mut p, "behavior_rules", body.behavior_rules) {
        new.behavior_rules = trim_rules(rules);
    }
    if let Some(v) = body.description {
        new.description = v;
    }
    if let Some(v) = body.voice_tone {
        new.voice_tone = v;
    }
    if let Some(v) = body.success_criteria {
        new.success_criteria = v;
    }
    if let Some(v) = body.extraction_schema {
        new.extraction_schema = v.and_then(|s| schema_field(&mut p, "extraction_schema", &s));
    }
    // Problems already reported (a missing field, a bad schema) are not
    // reported twice by the whole-playbook check.
    if p.0.is_empty() {
        add_all(&mut p, new.check());
    }
    p.finish()?;
    let playbook = state.store.create_playbook(&caller.org_id, &new).await?;
    Ok((StatusCode::CREATED, Json(playbook.into())))
}

/// Lists the playbooks: the first page starts with the nine built-ins
/// (`builtin: true`, not counted in `limit`), then the organization's
/// own, newest first.
#[utoipa::path(
    get, path = "/v1/playbooks", tag = "playbooks",
    params(ListParams),
    responses(
        (status = 200, description = "A page of playbooks", body = PlaybookList),
        (status = 422, description = "Bad paging parameter", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<List<PlaybookOut>>, ApiError> {
    let page = query.page()?;
    let first = page.cursor.is_none();
    let own = state
        .store
        .list_playbooks(&caller.org_id, &page)
        .await
        .map_err(page_error)?;
    let mut data: Vec<PlaybookOut> = Vec::new();
    if first {
        data.extend(builtin::all().iter().cloned().map(PlaybookOut::from));
    }
    data.extend(own.items.into_iter().map(PlaybookOut::from));
    Ok(Json(List {
        data,
        next_cursor: own.next_cursor,
    }))
}

/// Reads one playbook, built-in or the organization's.
#[utoipa::path(
    get, path = "/v1/playbooks/{id}", tag = "playbooks",
    params(("id" = String, Path, description = "Playbook id: a built-in slug or pb_…")),
    responses(
        (status = 200, description = "The playbook", body = PlaybookOut),
        (status = 404, description = "No such playbook", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PlaybookOut>, ApiError> {
    find(&state, &caller.org_id, &id)
        .await?
        .map(|p| Json(p.into()))
        .ok_or(ApiError::NotFound(WHAT))
}

/// Changes the fields sent of one of the organization's playbooks.
#[utoipa::path(
    patch, path = "/v1/playbooks/{id}", tag = "playbooks",
    params(("id" = String, Path, description = "Playbook id (pb_…)")),
    request_body = UpdatePlaybook,
    responses(
        (status = 200, description = "The playbook as updated", body = PlaybookOut),
        (status = 404, description = "No such playbook", body = crate::api::error::ErrorBody),
        (status = 409, description = "A built-in playbook: read-only", body = crate::api::error::ErrorBody),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdatePlaybook>,
) -> Result<Json<PlaybookOut>, ApiError> {
    if builtin::is_builtin(&id) {
        return Err(read_only(&id));
    }
    let mut p = Problems::default();
    let extraction_schema = body
        .extraction_schema
        .map(|v| v.and_then(|s| schema_field(&mut p, "extraction_schema", &s)));
    let update = PlaybookUpdate {
        name: not_null(&mut p, "name", body.name).map(|n| n.trim().to_owned()),
        description: body.description,
        strategy: not_null(&mut p, "strategy", body.strategy).map(|s| s.trim().to_owned()),
        behavior_rules: not_null(&mut p, "behavior_rules", body.behavior_rules).map(trim_rules),
        extraction_schema,
        voice_tone: body.voice_tone,
        success_criteria: body.success_criteria,
    };
    if p.0.is_empty() {
        add_all(&mut p, update.check());
    }
    p.finish()?;
    let playbook = state
        .store
        .update_playbook(&caller.org_id, &id, &update)
        .await
        .map_err(not_found(WHAT))?;
    Ok(Json(playbook.into()))
}

/// Deletes one of the organization's playbooks; numbers whose outbound
/// defaults named it are left without one.
#[utoipa::path(
    delete, path = "/v1/playbooks/{id}", tag = "playbooks",
    params(("id" = String, Path, description = "Playbook id (pb_…)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such playbook", body = crate::api::error::ErrorBody),
        (status = 409, description = "A built-in playbook: read-only", body = crate::api::error::ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if builtin::is_builtin(&id) {
        return Err(read_only(&id));
    }
    state
        .store
        .delete_playbook(&caller.org_id, &id)
        .await
        .map_err(not_found(WHAT))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The playbook for `objective` among the built-ins and the
/// organization's own, by the LLM when there is one, else by keywords.
pub(crate) async fn classify_objective(
    state: &AppState,
    org_id: &str,
    objective: &str,
) -> Result<playbooks::Classification, ApiError> {
    let llm = llm_config(state, org_id).await;
    let custom = match &llm {
        // Keywords only choose among the built-ins: no need to read.
        None => Vec::new(),
        Some(_) => {
            let limit = u32::try_from(MAX_CUSTOM_CANDIDATES).unwrap_or(u32::MAX);
            state
                .store
                .list_playbooks(org_id, &PageRequest::first(limit))
                .await?
                .items
        }
    };
    Ok(playbooks::classify(llm.as_ref(), objective, &custom).await)
}

/// The LLM the organization's calls would use, if the server has one:
/// the organization's own key over the server's settings.
async fn llm_config(state: &AppState, org_id: &str) -> Option<OpenAiConfig> {
    let agents = state.engine.as_ref()?.agents()?;
    match agents.report_llm(org_id, None).await {
        Ok(config) => config,
        Err(e) => {
            tracing::warn!(error = %e, "no LLM for playbook classification; using keywords");
            None
        }
    }
}

/// Names the playbook that fits an objective: the server's LLM chooses
/// among the built-ins and the organization's own when one is configured
/// (3 s at most), else (or when its answer is unusable) a keyword table
/// chooses among the built-ins.
#[utoipa::path(
    post, path = "/v1/playbooks/classify", tag = "playbooks",
    request_body = ClassifyRequest,
    responses(
        (status = 200, description = "The playbook and how it was chosen", body = ClassifyOut),
        (status = 422, description = "No objective", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn classify(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ClassifyRequest>,
) -> Result<Json<ClassifyOut>, ApiError> {
    let mut p = Problems::default();
    p.text("objective", &body.objective, OBJECTIVE_MAX);
    p.finish()?;
    let c = classify_objective(&state, &caller.org_id, &body.objective).await?;
    Ok(Json(ClassifyOut {
        playbook_id: c.playbook_id,
        method: c.method,
    }))
}
