//! A store on a fresh database of its own: a SQLite file in a temporary
//! directory, or a new database on the Postgres server named by
//! `HOTLINE_TEST_POSTGRES` (`scripts/test` starts one).

#![allow(dead_code)]

use std::io::Write as _;

use hotline::store::{Backend, Store};

/// A store on a database of its own, reopenable on the same data.
pub struct TestDb {
    pub url: String,
    pub store: Store,
    // Keeps the SQLite file's directory alive for the test.
    pub _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = hotline::store::sqlite_url(&dir.path().join("hotline.db"));
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        TestDb {
            url,
            store,
            _dir: Some(dir),
        }
    }

    /// A new, empty database on the test server, or `None` (announced on
    /// stderr) when no server is configured.
    pub async fn postgres(test: &str) -> Option<TestDb> {
        let Some(base) = std::env::var("HOTLINE_TEST_POSTGRES")
            .ok()
            .filter(|b| !b.is_empty())
        else {
            // Straight to the process's stderr: libtest captures
            // `eprintln!` of passing tests, and a skip must not be silent.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {test} on Postgres: HOTLINE_TEST_POSTGRES is not set \
                 (scripts/test sets it up)"
            );
            return None;
        };
        let base = base.trim_end_matches('/');
        sqlx::any::install_default_drivers();
        let name = format!("hl_test_{:016x}", rand::random::<u64>());
        let mut admin =
            <sqlx::AnyConnection as sqlx::Connection>::connect(&format!("{base}/postgres"))
                .await
                .unwrap_or_else(|e| panic!("cannot reach HOTLINE_TEST_POSTGRES={base}: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::Connection::close(admin).await.unwrap();
        let url = format!("{base}/{name}");
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.backend(), Backend::Postgres);
        Some(TestDb {
            url,
            store,
            _dir: None,
        })
    }

    /// Drops a Postgres test database after a passing test, so a long-lived
    /// server given as HOTLINE_TEST_POSTGRES does not fill up. A failing
    /// test leaves its database behind for inspection.
    pub async fn cleanup(self) {
        self.store.close().await;
        if self._dir.is_some() {
            return;
        }
        let (base, name) = self.url.rsplit_once('/').unwrap();
        let mut admin =
            <sqlx::AnyConnection as sqlx::Connection>::connect(&format!("{base}/postgres"))
                .await
                .unwrap();
        // FORCE: a server just stopped may still be closing its pool's
        // connections (Postgres 13 and later).
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
        sqlx::Connection::close(admin).await.unwrap();
    }

    /// Closes the store and opens the same database again, as a restart.
    pub async fn reopen(&mut self) {
        self.store.close().await;
        self.store = Store::open(&self.url).await.unwrap();
    }
}
