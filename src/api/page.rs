//! The one list envelope of the API: `{"data": [...], "next_cursor": ...}`,
//! newest first, paged with `?limit=` (1 to 100, 20 by default) and
//! `?cursor=` (the previous page's `next_cursor`). Every `/v1` list uses
//! [`List`] for its answer, [`crate::api::extract::QueryParams::page`] for
//! its parameters, [`ListParams`] in its OpenAPI `params(...)` and
//! `list_schema!` for its documented response type.

use serde::Serialize;
use utoipa::IntoParams;

use super::error::{ApiError, FieldError};

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

/// A list query's store error: a bad cursor or limit is the query
/// parameter's fault, not the body's.
pub fn page_error(e: crate::store::StoreError) -> ApiError {
    use crate::store::StoreError;
    match e {
        StoreError::Invalid(field @ ("cursor" | "limit"), msg) => {
            ApiError::Validation(vec![FieldError::query(field, msg)])
        }
        other => other.into(),
    }
}
