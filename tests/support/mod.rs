//! Helpers shared by the control-plane tests.

#![allow(dead_code)]

pub mod api;
pub mod db;
pub mod smtp;

/// `both_databases!(name, "pg")` runs `async fn name(db: TestDb)` as two
/// tests, `name::sqlite` and `name::postgres` (skipped, saying so, when
/// `HOTLINE_TEST_POSTGRES` is not set); `"pg"` names the Postgres
/// database. Invoke it at the test crate's root, which has `mod support`.
#[allow(unused_macros)]
macro_rules! both_databases {
    ($name:ident, $pg:literal) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::support::db::TestDb::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = super::support::db::TestDb::postgres($pg).await {
                    super::$name(db).await;
                }
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use both_databases;
