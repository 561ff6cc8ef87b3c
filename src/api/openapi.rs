//! The OpenAPI 3 document served at `/openapi.json`, generated from the
//! handlers' `#[utoipa::path]` attributes and the request and response
//! types' `ToSchema` derives, so it cannot drift from the code.
//!
//! To document a new endpoint, annotate its handler with
//! `#[utoipa::path(...)]` and add the handler to `paths(...)` below;
//! schemas it mentions are collected on their own. Every operation under
//! `/v1` needs the `bearer` key and may answer 401 and 429; [`Conventions`]
//! adds those to each so handlers list only their own answers.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema};

use super::error::ErrorBody;
use super::resources;

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hotline API",
        description = "Control plane of Hotline, a self-hosted realtime voice server.\n\n\
            Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>` \
            (keys start with `hl_live_`; create the first with `hotline keys create --org NAME`).\n\n\
            Errors are `{\"detail\": \"...\"}`; validation errors (422) list each field at fault: \
            `{\"detail\": [{\"loc\": [\"body\", \"name\"], \"msg\": \"...\"}]}`. \
            Lists answer `{\"data\": [...], \"next_cursor\": ...}`: pass `next_cursor` back as \
            `?cursor=` for the next page (`?limit=` 1 to 100). Timestamps are unix milliseconds. \
            PATCH changes only the fields sent; `null` clears an optional field. \
            Another organization's resources answer 404."
    ),
    paths(
        crate::http::healthz,
        crate::http::readyz,
        crate::http::metrics,
        resources::agents::create,
        resources::agents::list,
        resources::agents::read,
        resources::agents::update,
        resources::agents::remove,
        resources::numbers::create,
        resources::numbers::list,
        resources::numbers::read,
        resources::numbers::update,
        resources::numbers::remove,
        resources::inbound::read,
        resources::inbound::replace,
        resources::inbound::update,
        resources::inbound::turn_off,
        resources::contacts::list,
        resources::contacts::read,
        resources::contacts::read_by_phone,
        resources::contacts::update,
        resources::contacts::forget,
        resources::webhooks::create,
        resources::webhooks::list,
        resources::webhooks::read,
        resources::webhooks::remove,
        resources::webhooks::rotate_secret,
        resources::webhooks::test,
        resources::webhooks::deliveries,
        resources::keys::create,
        resources::keys::list,
        resources::keys::revoke,
        resources::usage::usage,
        resources::settings::read,
        resources::settings::update,
        resources::templates::list,
        resources::templates::read,
        resources::voices::list,
        resources::voices::sample,
        super::calls::create_call,
        super::calls::list_calls,
        super::calls::get_call,
        super::calls::hangup_call,
        super::calls::cancel_call,
        super::calls::batch::create,
        super::calls::batch::read,
        super::calls::batch::cancel,
        super::calls::dnc::add,
        super::calls::dnc::list,
        super::calls::dnc::read,
        super::calls::dnc::remove,
        super::calls::get_transcript,
        super::calls::get_recording,
        resources::reports::read,
        resources::reports::list,
        super::alerts::phones::create,
        super::alerts::phones::list,
        super::alerts::phones::read,
        super::alerts::phones::verify,
        super::alerts::phones::resend,
        super::alerts::phones::make_primary,
        super::alerts::handlers::create,
        super::alerts::handlers::list,
        super::alerts::handlers::read,
        super::alerts::handlers::acknowledge,
        super::alerts::tools::openai,
        resources::memory::read,
        resources::memory::set,
        resources::memory::reject,
        resources::memory::context,
        resources::playbooks::create,
        resources::playbooks::list,
        resources::playbooks::read,
        resources::playbooks::update,
        resources::playbooks::remove,
        resources::playbooks::classify,
        resources::personas::create,
        resources::personas::list,
        resources::personas::read,
        resources::personas::update,
        resources::personas::remove,
        resources::outbound_defaults::read,
        resources::outbound_defaults::replace,
        resources::outbound_defaults::remove,
    ),
    modifiers(&Conventions),
    tags(
        (name = "agents", description = "Prompt, voice and model settings of AI calls"),
        (name = "numbers", description = "DIDs and how their inbound calls are handled"),
        (name = "contacts", description = "The people calls meet, one per phone number: names, tags, notes, blocking and the right to be forgotten"),
        (name = "webhooks", description = "Signed event deliveries"),
        (name = "api-keys", description = "The organization's API keys"),
        (name = "usage", description = "Calls and minutes"),
        (name = "settings", description = "The organization's own provider keys and alert policy"),
        (name = "prompt-templates", description = "Ready-made agent prompts for real businesses"),
        (name = "voices", description = "The voices this server can speak with, and samples"),
        (name = "phones", description = "Verified phones alerts may call"),
        (name = "alerts", description = "Phone alerts that escalate until acknowledged"),
        (name = "calls", description = "Placing, following and reading calls"),
        (name = "reports", description = "After-call reports of AI calls: summary, intent, urgency, callback time and quoted facts"),
        (name = "playbooks", description = "Outbound call strategies: nine built-ins and the organization's own, and choosing one for an objective"),
        (name = "personas", description = "Caller identities outbound calls introduce themselves with"),
        (name = "operations", description = "Health, readiness and metrics (no key needed)"),
    )
)]
pub struct ApiDoc;

/// The name of the security scheme every `/v1` operation requires.
pub const BEARER: &str = "bearer";

/// Adds what every `/v1` operation shares: the key requirement (as a
/// Bearer token, or as `X-API-Key`) and the 401 and 429 answers.
pub struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("hl_live_…")
                    .description(Some("An API key as a Bearer token"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "The same API key in a header",
            ))),
        );
        components
            .schemas
            .insert("ErrorBody".into(), ErrorBody::schema());
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                                "ErrorBody",
                            ))))
                            .build(),
                    )
                    .build(),
            )
        };
        let security = vec![
            utoipa::openapi::security::SecurityRequirement::new(BEARER, Vec::<String>::new()),
            utoipa::openapi::security::SecurityRequirement::new("api_key", Vec::<String>::new()),
        ];
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                op.security = Some(security.clone());
                op.responses
                    .responses
                    .insert("401".into(), error("Missing, unknown or revoked API key"));
                op.responses.responses.insert(
                    "429".into(),
                    error("Rate limit exceeded; retry after `Retry-After` seconds"),
                );
            }
        }
    }
}

/// The document as JSON.
pub fn document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes")
}
