//! The HTTP API in-process: requests go straight into the axum router
//! (no socket), on a fresh database, with an organization and its key.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use hotline::api::AppState;
use hotline::config::Config;
use serde_json::Value;
use tower::ServiceExt;

use super::db::TestDb;

/// A router over its own database, with one org and API key ready.
pub struct Api {
    pub db: TestDb,
    pub state: AppState,
    pub org_id: String,
    pub key: String,
}

/// What a request got back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Api {
    /// An API on `db` with org `acme` and a key for it.
    pub async fn on(db: TestDb) -> Api {
        let org = db.store.ensure_org("acme").await.unwrap();
        let key = db.store.create_api_key(&org.id, "test").await.unwrap();
        let state = AppState::new(
            std::sync::Arc::new(Config::default()),
            db.store.clone(),
            None,
        );
        Api {
            db,
            state,
            org_id: org.id,
            key: key.plaintext,
        }
    }

    /// A key of another organization, for isolation tests.
    pub async fn other_org_key(&self, name: &str) -> String {
        let org = self.db.store.ensure_org(name).await.unwrap();
        self.db
            .store
            .create_api_key(&org.id, "other")
            .await
            .unwrap()
            .plaintext
    }

    /// Sends a request with this API's key.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send_as(Some(&self.key), method, path, body).await
    }

    /// Sends a request with `key` (or none) as `Authorization: Bearer`.
    pub async fn send_as(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let router = hotline::http::router(self.state.clone());
        let res = router.oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 16 << 20)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            json,
        }
    }
}

/// Runs each named async test body `fn(&Api)` on SQLite and on Postgres
/// (when configured), as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! api_on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let api = super::support::api::Api::on(super::support::db::TestDb::sqlite().await).await;
                super::$name(&api).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = super::support::db::TestDb::postgres(stringify!($name)).await {
                    let api = super::support::api::Api::on(db).await;
                    super::$name(&api).await;
                    api.db.cleanup().await;
                }
            }
        }
    )*};
}
