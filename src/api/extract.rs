//! Request extractors that answer in the API's error format. axum's own
//! `Json` and `Query` reject with plain-text 400s and 415s; clients of the
//! hosted products expect a 422 whose `detail` names the field
//! (`[{"loc": ["body", "name"], "msg": "..."}]`), so bodies and query
//! strings are read here instead.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::{ApiError, FieldError};
use crate::config::DEFAULT_MAX_BODY_BYTES;
use crate::store::{MAX_PAGE_LIMIT, PageRequest};

/// A JSON request body of type `T`. A body that is not JSON, or does not
/// fit `T`, is a 422 naming the field at fault; one over the body limit
/// is a 413. An empty body reads as `{}`, so endpoints whose fields are
/// all optional accept no body at all.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// The body limit in force for a request, put in its extensions by the
/// router's body-limit layer (`crate::http`) so that a body found too
/// large while it is read is refused naming the same limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(DEFAULT_MAX_BODY_BYTES, |l| l.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            // A body sent without a length (chunked) is only found too
            // large while it is read, here.
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                return ApiError::PayloadTooLarge(limit);
            }
            ApiError::Validation(vec![FieldError {
                loc: vec!["body".into()],
                msg: e.body_text(),
            }])
        })?;
        parse_body(&bytes).map(JsonBody)
    }
}

/// Deserializes a JSON body, naming the field at fault on failure.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| ApiError::Validation(vec![body_error(&e)]))?;
    // Trailing garbage after the document is an error too.
    de.end().map_err(|e| {
        ApiError::Validation(vec![FieldError {
            loc: vec!["body".into()],
            msg: format!("not valid JSON: {}", strip_position(e.to_string())),
        }])
    })?;
    Ok(value)
}

/// serde_json appends the position to its messages; the location says it
/// better.
fn strip_position(mut msg: String) -> String {
    if let Some(at) = msg.rfind(" at line ") {
        msg.truncate(at);
    }
    msg
}

fn body_error(e: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    use serde_path_to_error::Segment;
    let mut loc = vec!["body".to_owned()];
    for seg in e.path().iter() {
        match seg {
            Segment::Seq { index } => loc.push(index.to_string()),
            Segment::Map { key } => loc.push(key.clone()),
            Segment::Enum { variant } => loc.push(variant.clone()),
            Segment::Unknown => {}
        }
    }
    let inner = e.inner();
    let mut msg = strip_position(inner.to_string());
    // Point at the missing or unknown field itself.
    for lead in ["missing field `", "unknown field `"] {
        if let Some(rest) = msg.strip_prefix(lead)
            && let Some(end) = rest.find('`')
        {
            let field = rest[..end].to_owned();
            msg = if lead.starts_with("missing") {
                "field required".to_owned()
            } else {
                "unknown field".to_owned()
            };
            // serde_path_to_error already ends the path with an unknown
            // field's name; a missing one is not in it.
            if loc.last() != Some(&field) {
                loc.push(field);
            }
            break;
        }
    }
    if inner.is_syntax() || inner.is_eof() {
        msg = format!("not valid JSON: {msg}");
    }
    FieldError { loc, msg }
}

/// The query string as a map, read into typed values by name so that a bad
/// value is a 422 on `["query", name]`.
#[derive(Debug, Clone, Default)]
pub struct QueryParams(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        QueryParams::parse(parts.uri.query().unwrap_or(""))
    }
}

impl QueryParams {
    /// Parses `a=1&b=x%20y` (`+` is a space, as in HTML forms); a
    /// repeated name keeps its last value. Bad percent-escapes and invalid
    /// UTF-8 are refused.
    pub fn parse(query: &str) -> Result<QueryParams, ApiError> {
        let mut map = HashMap::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let k = percent_decode(k).ok_or_else(bad_query)?;
            let v = percent_decode(v).ok_or_else(bad_query)?;
            map.insert(k, v);
        }
        Ok(QueryParams(map))
    }

    /// A text parameter; empty counts as absent.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.text(name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    ApiError::Validation(vec![FieldError::query(name, "must be an integer")])
                })
            })
            .transpose()
    }

    /// One of `allowed`, or absent.
    pub fn choice(
        &self,
        name: &str,
        allowed: &[&'static str],
    ) -> Result<Option<&'static str>, ApiError> {
        self.text(name)
            .map(|v| {
                allowed.iter().find(|a| **a == v).copied().ok_or_else(|| {
                    ApiError::Validation(vec![FieldError::query(
                        name,
                        format!("must be one of {}", allowed.join(", ")),
                    )])
                })
            })
            .transpose()
    }

    /// `limit` (1 to [`MAX_PAGE_LIMIT`]) and `cursor`, the paging
    /// parameters of every list.
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let limit = match self.int("limit") {
            Ok(Some(n)) if (1..=i64::from(MAX_PAGE_LIMIT)).contains(&n) => Some(n as u32),
            Ok(None) => None,
            _ => {
                return Err(ApiError::Validation(vec![FieldError::query(
                    "limit",
                    format!("must be an integer from 1 to {MAX_PAGE_LIMIT}"),
                )]));
            }
        };
        Ok(PageRequest {
            limit,
            cursor: self.text("cursor").map(str::to_owned),
        })
    }
}

fn bad_query() -> ApiError {
    ApiError::Validation(vec![FieldError {
        loc: vec!["query".into()],
        msg: "malformed query string".into(),
    }])
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Deserializes a field that may be absent, `null` or a value into
/// `Option<Option<T>>`: absent is `None` (leave unchanged), `null` is
/// `Some(None)` (clear), a value `Some(Some(v))`. Use with
/// `#[serde(default, deserialize_with = "present")]`.
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The idempotency key of a create request: `client_id`, or its alias
/// `idempotency_key` (the two must agree when both are given), or else
/// the `Idempotency-Key` header; 1 to 255 bytes. Problems go to `errors`.
pub fn idempotency_key(
    headers: &axum::http::HeaderMap,
    client_id: Option<&String>,
    alias: Option<&String>,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let header = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let key = match (client_id, alias) {
        (Some(a), Some(b)) if a != b => {
            errors.push(FieldError::body(
                "idempotency_key",
                "differs from client_id; give one of them",
            ));
            None
        }
        (Some(a), _) | (None, Some(a)) => Some(a.clone()),
        (None, None) => header,
    };
    if key.as_ref().is_some_and(|c| c.is_empty() || c.len() > 255) {
        errors.push(FieldError::body("client_id", "must be 1 to 255 bytes"));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        name: String,
        #[serde(default)]
        tags: Vec<u32>,
        #[serde(default, deserialize_with = "present")]
        note: Option<Option<String>>,
    }

    fn loc(r: Result<Body, ApiError>) -> Vec<String> {
        match r {
            Err(ApiError::Validation(e)) => e[0].loc.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn body_errors_name_the_field() {
        assert_eq!(loc(parse_body(br#"{}"#)), ["body", "name"]);
        assert_eq!(loc(parse_body(b"")), ["body", "name"]);
        assert_eq!(loc(parse_body(br#"{"name": 5}"#)), ["body", "name"]);
        assert_eq!(
            loc(parse_body(br#"{"name": "a", "tags": [1, "x"]}"#)),
            ["body", "tags", "1"]
        );
        assert_eq!(
            loc(parse_body(br#"{"name": "a", "nmae": 1}"#)),
            ["body", "nmae"]
        );
        // Cut short inside a field: the path says where.
        assert_eq!(loc(parse_body(br#"{"name": "#)), ["body", "name"]);
        assert_eq!(loc(parse_body(br#"{"#)), ["body"]);
        assert_eq!(loc(parse_body(br#"{"name": "a"} x"#)), ["body"]);
    }

    #[test]
    fn absent_null_and_value_differ() {
        let b: Body = parse_body(br#"{"name": "a"}"#).unwrap();
        assert_eq!(b.note, None);
        let b: Body = parse_body(br#"{"name": "a", "note": null}"#).unwrap();
        assert_eq!(b.note, Some(None));
        let b: Body = parse_body(br#"{"name": "a", "note": "x"}"#).unwrap();
        assert_eq!(b.note, Some(Some("x".into())));
    }

    #[test]
    fn query_values_are_typed_by_name() {
        let q = QueryParams::parse("limit=5&cursor=abc%3D&period=day&x=a+b").unwrap();
        assert_eq!(q.page().unwrap(), PageRequest::after(5, "abc="));
        assert_eq!(q.text("x"), Some("a b"));
        assert_eq!(q.choice("period", &["day", "month"]).unwrap(), Some("day"));
        for bad in ["limit=0", "limit=101", "limit=ten", "limit=-1"] {
            let e = QueryParams::parse(bad).unwrap().page().unwrap_err();
            assert_eq!(
                e,
                ApiError::Validation(vec![FieldError::query(
                    "limit",
                    "must be an integer from 1 to 100"
                )])
            );
        }
        assert!(QueryParams::parse("a=%zz").is_err());
        assert!(QueryParams::parse("a=%ff").is_err());
        assert_eq!(
            QueryParams::parse("").unwrap().page().unwrap(),
            PageRequest::default()
        );
    }
}
