//! Agents, numbers, webhooks, API keys and usage: the configuration side
//! of the API.
//!
//! Conventions shared by these endpoints (and meant for every `/v1` list):
//!
//! - Every list answers `{"data": [...], "next_cursor": "..." | null}`,
//!   newest first; pass `next_cursor` back as `?cursor=` for the next page,
//!   with `?limit=` from 1 to 100 (20 by default).
//! - Timestamps are unix milliseconds (UTC).
//! - Request bodies refuse unknown fields, so a misspelt field is a 422
//!   rather than silently ignored.
//! - PATCH changes only the fields sent: an absent field is left as it
//!   is, `null` clears a field that may be empty.
//! - Another organization's resource answers 404, like a missing one.

pub mod agents;
pub mod keys;
pub mod numbers;
pub mod usage;
pub mod webhooks;

use axum::Router;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::FieldError;

/// The routes of this part of `/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(agents::routes())
        .merge(numbers::routes())
        .merge(webhooks::routes())
        .merge(keys::routes())
        .merge(usage::routes())
}

/// The paging parameters every list takes.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of a list: the envelope of every list in the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct List<T> {
    /// The items of this page, newest first.
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// A store page as the API shows it.
    pub fn from_page<S>(page: crate::store::Page<S>) -> List<T>
    where
        T: From<S>,
    {
        List {
            data: page.items.into_iter().map(T::from).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// Declares the OpenAPI schema of `List<$item>` under the name `$name`
/// (one concrete schema per list keeps the document readable in any
/// OpenAPI tool, where generic schemas render poorly).
macro_rules! list_schema {
    ($name:ident, $item:ty) => {
        #[doc = concat!("A page of `", stringify!($item), "`s.")]
        #[derive(Debug, utoipa::ToSchema)]
        #[allow(dead_code)]
        pub struct $name {
            /// The items of this page, newest first.
            pub data: Vec<$item>,
            /// Pass as `cursor` for the next page; `null` on the last page.
            pub next_cursor: Option<String>,
        }
    };
}
pub(crate) use list_schema;

/// Collects the problems with a request body, all of them at once, so a
/// client fixes its request in one round.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub Vec<FieldError>);

impl Problems {
    pub(crate) fn add(&mut self, field: &str, msg: impl Into<String>) {
        self.0.push(FieldError::body(field, msg));
    }

    /// A required text: not blank, at most `max` characters.
    pub(crate) fn text(&mut self, field: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.add(field, "must not be empty");
        } else if value.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
        }
    }

    /// An optional text.
    pub(crate) fn opt_text(&mut self, field: &str, value: Option<&str>, max: usize) {
        if let Some(v) = value {
            self.text(field, v, max);
        }
    }

    pub(crate) fn finish(self) -> Result<(), super::ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(super::ApiError::Validation(self.0))
        }
    }
}

/// A field that may not be `null` in a PATCH (it has no empty state).
pub(crate) fn not_null<T>(
    problems: &mut Problems,
    field: &str,
    value: Option<Option<T>>,
) -> Option<T> {
    match value {
        Some(None) => {
            problems.add(field, "may not be null");
            None
        }
        Some(Some(v)) => Some(v),
        None => None,
    }
}

/// A `{"detail": "..."}` error, as documented in the OpenAPI document.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// What went wrong.
    pub detail: String,
}

/// A field at fault, as documented in the OpenAPI document.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct FieldErrorBody {
    /// Where: `["body", "name"]`, `["query", "limit"]`.
    pub loc: Vec<String>,
    /// What is wrong.
    pub msg: String,
}

/// A 422 answer, as documented in the OpenAPI document.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ValidationErrorBody {
    /// Every field at fault.
    pub detail: Vec<FieldErrorBody>,
}

/// A list query's store error: a bad cursor or limit is the query
/// parameter's fault, not the body's.
pub(crate) fn page_error(e: crate::store::StoreError) -> super::ApiError {
    use crate::store::StoreError;
    match e {
        StoreError::Invalid(field @ ("cursor" | "limit"), msg) => {
            super::ApiError::Validation(vec![FieldError::query(field, msg)])
        }
        other => other.into(),
    }
}
