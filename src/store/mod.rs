//! The control plane's durable state: orgs, API keys, agents, numbers, calls
//! and their transcripts, contacts, after-call reports, webhooks and the
//! webhook delivery outbox.
//!
//! # Backends
//!
//! SQLite is the embedded default (`hotline.db` in `data_dir`, WAL mode);
//! Postgres is used when `database.url` (or `DATABASE_URL`) is a
//! `postgres://` URL. [`Store`] talks to both through sqlx's `Any` driver,
//! so every query is written once. That is possible because the schema
//! sticks to what both understand:
//!
//! - ids, JSON documents and enums are `TEXT`; timestamps are `BIGINT` unix
//!   milliseconds (the `Any` driver has no date or JSON types, and integers
//!   compare and paginate identically on both);
//! - parameters are written `$1, $2, …`, which SQLite accepts as numbered
//!   parameters too;
//! - `INSERT … RETURNING` and `UPDATE … RETURNING` (SQLite ≥ 3.35; the
//!   bundled SQLite is newer);
//! - uniqueness (org names, API key hashes, DIDs, call `client_id`s) is
//!   enforced by constraints, and both drivers report violations with the
//!   same [`sqlx::error::ErrorKind`], which becomes [`StoreError::Conflict`].
//!
//! The alternative, an enum over `SqlitePool` and `PgPool`, would buy native
//! types at the cost of writing and testing every query twice; nothing here
//! needs a type `Any` lacks. One migration set (`migrations/`) serves both;
//! it runs at [`Store::open`].
//!
//! # Scoping
//!
//! Every method that reads or changes a tenant's rows takes the `org_id`
//! and puts it in the `WHERE` clause, so another org's row is simply
//! [`StoreError::NotFound`]. The few unscoped methods (routing by DID,
//! authenticating a key, the delivery worker, the operator CLI) say so.
//!
//! # Concurrency
//!
//! Writes are single statements or short transactions that start with a
//! write, so SQLite's busy timeout (5 s) covers contention and Postgres's
//! row locks order them. Races that matter are settled by the database:
//! idempotent call creation by a unique constraint, transcript sequence
//! numbers by a counter on the call row, and outbox claims by a conditional
//! `UPDATE` that re-checks the claimable state.

mod agents;
mod alerts;
mod batches;
mod calls;
mod contacts;
mod keys;
mod memory;
mod numbers;
mod outbound;
mod playbooks;
mod reports;
mod webhooks;

use std::borrow::Cow;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Row, SqlSafeStr};

use crate::config::Config;

pub use agents::{Agent, AgentUpdate, NewAgent};
pub use alerts::{
    Alert, AlertDelivery, AlertFilter, CodeRefusal, MAX_CODE_ATTEMPTS, NewAlert, Phone,
};
pub use batches::{Batch, NewBatch};
pub use calls::{
    Call, CallFilter, CallStatus, CallUpdate, NewCall, NewTranscriptEntry, TranscriptEntry,
    UnknownStatus, UsagePeriod, UsageQuery, UsageRow, day_start_ms,
};
pub use contacts::{
    Contact, ContactFilter, ContactUpdate, Forgotten, MAX_DISPLAY_NAME_CHARS,
    MAX_OWNER_NOTES_CHARS, MAX_TAG_CHARS, MAX_TAGS, REDACTED, normalize_tag, normalize_tags,
};
pub use keys::{API_KEY_PREFIX, ApiKey, CreatedApiKey, Org};
pub use numbers::{INBOUND_MODES, NewNumber, Number, NumberFilter, NumberUpdate};
pub use outbound::{AttemptEnd, CallAttempt, Claim, DialLimits, DncEntry};
pub use reports::{
    CallReport, EmailStatus, INTENTS, ReportContent, ReportFact, ReportFilter, ReportItem,
    ReportStatus, URGENCIES,
};
pub use webhooks::{
    ClaimedDelivery, DeliveryStatus, NewWebhook, TEST_EVENT, WEBHOOK_SECRET_PREFIX, Webhook,
    WebhookDelivery,
};

/// The schema, in order. Both backends run the same files (see the module
/// docs for why that works).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (
        2,
        "call webhooks",
        include_str!("../../migrations/0002_call_webhooks.sql"),
    ),
    (
        3,
        "transcript interrupted flag",
        include_str!("../../migrations/0003_transcript_interrupted.sql"),
    ),
    (
        4,
        "call turn metrics",
        include_str!("../../migrations/0004_call_turn_metrics.sql"),
    ),
    (
        5,
        "org settings",
        include_str!("../../migrations/0005_org_settings.sql"),
    ),
    (
        6,
        "alerts",
        include_str!("../../migrations/0006_alerts.sql"),
    ),
    (
        7,
        "contacts",
        include_str!("../../migrations/0007_contacts.sql"),
    ),
    (
        8,
        "call reports",
        include_str!("../../migrations/0008_call_reports.sql"),
    ),
    (
        9,
        "contact memory",
        include_str!("../../migrations/0009_contact_memory.sql"),
    ),
    (
        10,
        "outbound queue",
        include_str!("../../migrations/0010_outbound_queue.sql"),
    ),
    (
        11,
        "playbooks, personas and outbound defaults",
        include_str!("../../migrations/0011_playbooks.sql"),
    ),
];

/// File name of the embedded SQLite database inside `data_dir`.
pub const SQLITE_FILE: &str = "hotline.db";

/// Largest page a list returns.
pub const MAX_PAGE_LIMIT: u32 = 100;
/// Page size when a list request does not give one.
pub const DEFAULT_PAGE_LIMIT: u32 = 20;

/// Why a store operation failed, in terms the HTTP layer maps to statuses.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row in this org (404).
    #[error("not found")]
    NotFound,
    /// A unique value is already taken (409); names the field.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A field's value is unacceptable (400/422): the field and why.
    #[error("invalid {0}: {1}")]
    Invalid(&'static str, String),
    /// The database failed or returned something unreadable (500).
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// A Postgres server.
    Postgres,
}

impl Backend {
    /// The backend a database URL names, if it is one Hotline supports.
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// A page of a list, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Pass as [`PageRequest::cursor`] for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// Which page of a list to return.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PageRequest {
    /// Rows per page, 1 to [`MAX_PAGE_LIMIT`]; [`DEFAULT_PAGE_LIMIT`] if unset.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page; the first page if unset.
    pub cursor: Option<String>,
}

impl PageRequest {
    /// The first page with `limit` rows.
    pub fn first(limit: u32) -> PageRequest {
        PageRequest {
            limit: Some(limit),
            cursor: None,
        }
    }

    /// The page after `cursor`, with `limit` rows.
    pub fn after(limit: u32, cursor: impl Into<String>) -> PageRequest {
        PageRequest {
            limit: Some(limit),
            cursor: Some(cursor.into()),
        }
    }
}

/// The control plane's database: cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// The database URL a configuration asks for: `database.url`, else the
    /// `DATABASE_URL` given in `env_database_url`, else the SQLite file in
    /// `data_dir`.
    pub fn database_url(config: &Config, env_database_url: Option<&str>) -> String {
        config
            .database
            .url
            .clone()
            .or_else(|| {
                env_database_url
                    .filter(|u| !u.trim().is_empty())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| sqlite_url(&config.data_dir.join(SQLITE_FILE)))
    }

    /// Opens the database a configuration names (see [`Store::database_url`],
    /// reading `DATABASE_URL` from the environment), creating `data_dir` for
    /// the embedded SQLite file.
    pub async fn open_config(config: &Config) -> Result<Store> {
        let env = std::env::var("DATABASE_URL").ok();
        let url = Store::database_url(config, env.as_deref());
        if config.database.url.is_none() && env.as_deref().is_none_or(|u| u.trim().is_empty()) {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                StoreError::Invalid(
                    "data_dir",
                    format!("cannot create {}: {e}", config.data_dir.display()),
                )
            })?;
        }
        Store::open(&url).await
    }

    /// Connects to `url` (`sqlite://…` or `postgres://…`) and brings the
    /// schema up to date.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or_else(|| {
            StoreError::Invalid(
                "database.url",
                "expected a sqlite:// or postgres:// URL".into(),
            )
        })?;
        // Each connection to an in-memory SQLite URL is a database of its
        // own, so such a store must keep exactly one connection, forever.
        let in_memory =
            backend == Backend::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        let mut options = AnyPoolOptions::new()
            // SQLite has one writer at a time however many connections
            // there are; a few let reads proceed beside it (WAL).
            .max_connections(match backend {
                Backend::Sqlite if in_memory => 1,
                Backend::Sqlite => 4,
                Backend::Postgres => 10,
            });
        if in_memory {
            options = options
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let pool = options.connect(url).await?;
        if backend == Backend::Sqlite {
            // WAL lets readers run while a call's events are written, and it
            // is a property of the file, so setting it once (before other
            // connections exist) is enough. `synchronous` keeps SQLite's
            // default (FULL): a commit is on disk when it returns, which is
            // what "nothing is lost on restart" needs. An in-memory database
            // answers "memory", which is fine for tests.
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
                .fetch_one(&pool)
                .await?;
            if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
                return Err(StoreError::Invalid(
                    "database.url",
                    format!("SQLite refused WAL mode (journal_mode is {mode})"),
                ));
            }
        }
        let migrations = MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&pool)
            .await
            .map_err(sqlx::Error::from)?;
        Ok(Store { pool, backend })
    }

    /// Checks that the database answers a trivial query: readiness.
    pub async fn ping(&self) -> Result<()> {
        Sql::new("SELECT 1 AS one")
            .fetch_optional(&self.pool)
            .await?;
        Ok(())
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Waits for queries in progress, then closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A `sqlite://` URL that creates the file at `path` when missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A unix-ms time as `YYYY-MM-DD HH:MM:SS` UTC, for people.
pub fn format_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = calls::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// A fresh identifier: `prefix`, `_` and 24 hex digits (96 random bits).
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{:024x}", rand::random::<u128>() >> 32)
}

/// 32 random bytes as 64 hex digits: the secret part of API keys and
/// webhook secrets.
pub(crate) fn random_hex32() -> String {
    let bytes: [u8; 32] = rand::random();
    hex(&bytes)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Maps an insert or update error: a unique violation is a conflict on
/// `unique`, a foreign-key violation an invalid reference in `fk`.
pub(crate) fn write_err(e: sqlx::Error, unique: &'static str, fk: &'static str) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return StoreError::Conflict(unique);
        }
        if d.is_foreign_key_violation() {
            return StoreError::Invalid(fk, "refers to a row that does not exist".into());
        }
    }
    StoreError::Db(e)
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Parses a JSON column; a malformed document is a decode error.
pub(crate) fn json_col(row: &AnyRow, col: &str) -> Result<serde_json::Value> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| decode_err(col, e))
}

/// Parses a nullable JSON column.
pub(crate) fn opt_json_col(row: &AnyRow, col: &str) -> Result<Option<serde_json::Value>> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| decode_err(col, e)))
        .transpose()
}

pub(crate) fn decode_err(
    col: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Db(sqlx::Error::ColumnDecode {
        index: col.to_owned(),
        source: Box::new(e),
    })
}

/// Checks a required text field: not blank, at most `max` characters.
pub(crate) fn check_text(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(StoreError::Invalid(field, "must not be empty".into()));
    }
    if value.chars().count() > max {
        return Err(StoreError::Invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// Checks an optional text field's length.
pub(crate) fn check_opt_text(field: &'static str, value: Option<&str>, max: usize) -> Result<()> {
    value.map_or(Ok(()), |v| check_text(field, v, max))
}

/// Checks that a URL is absolute http(s).
pub(crate) fn check_url(field: &'static str, url: &str) -> Result<()> {
    check_text(field, url, 2048)?;
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
        _ => Err(StoreError::Invalid(
            field,
            "must be an absolute http:// or https:// URL".into(),
        )),
    }
}

/// One bound value of a [`Sql`] statement.
enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
}

/// A statement assembled from fixed fragments with numbered (`$n`)
/// placeholders for every value, for queries whose shape depends on the
/// request (filters, partial updates, pagination). Values are always bound,
/// never spliced into the text.
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Sql {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    fn placeholder(&mut self, arg: Arg) -> &mut Sql {
        self.args.push(arg);
        let n = self.args.len();
        self.text.push('$');
        self.text.push_str(&n.to_string());
        self
    }

    /// Appends a placeholder bound to a text value (NULL when `None`).
    pub(crate) fn text(&mut self, value: impl Into<Option<String>>) -> &mut Sql {
        self.placeholder(Arg::Text(value.into()))
    }

    /// Appends a placeholder bound to an integer (NULL when `None`).
    pub(crate) fn int(&mut self, value: impl Into<Option<i64>>) -> &mut Sql {
        self.placeholder(Arg::Int(value.into()))
    }

    fn build(&self) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
        let mut q = sqlx::query(AssertSqlSafe(self.text.clone()));
        for arg in &self.args {
            q = match arg {
                Arg::Text(v) => q.bind(v.clone()),
                Arg::Int(v) => q.bind(*v),
            };
        }
        q
    }

    pub(crate) async fn fetch_all<'e>(
        &self,
        ex: impl sqlx::Executor<'e, Database = sqlx::Any>,
    ) -> Result<Vec<AnyRow>, sqlx::Error> {
        self.build().fetch_all(ex).await
    }

    pub(crate) async fn fetch_optional<'e>(
        &self,
        ex: impl sqlx::Executor<'e, Database = sqlx::Any>,
    ) -> Result<Option<AnyRow>, sqlx::Error> {
        self.build().fetch_optional(ex).await
    }

    pub(crate) async fn execute<'e>(
        &self,
        ex: impl sqlx::Executor<'e, Database = sqlx::Any>,
    ) -> Result<u64, sqlx::Error> {
        Ok(self.build().execute(ex).await?.rows_affected())
    }
}

/// Position of a row in a newest-first list: its creation time and id (the
/// id breaks ties between rows created in the same millisecond).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    created_at: i64,
    id: String,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.created_at, self.id))
    }

    fn decode(s: &str) -> Result<Cursor> {
        let bad = || StoreError::Invalid("cursor", "not a cursor from a previous page".into());
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (at, id) = text.split_once(':').ok_or_else(bad)?;
        let created_at = at.parse().map_err(|_| bad())?;
        if id.is_empty() {
            return Err(bad());
        }
        Ok(Cursor {
            created_at,
            id: id.to_owned(),
        })
    }
}

/// Appends keyset pagination to `sql` (which must end inside a `WHERE`):
/// rows strictly older than the cursor, newest first, one more than the
/// page so the caller knows whether another page follows. Returns the page
/// size.
pub(crate) fn paginate(sql: &mut Sql, page: &PageRequest) -> Result<usize> {
    let limit = page.limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if !(1..=MAX_PAGE_LIMIT).contains(&limit) {
        return Err(StoreError::Invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE_LIMIT}"),
        ));
    }
    if let Some(cursor) = &page.cursor {
        let c = Cursor::decode(cursor)?;
        sql.push(" AND (created_at < ")
            .int(c.created_at)
            .push(" OR (created_at = ")
            .int(c.created_at)
            .push(" AND id < ")
            .text(c.id)
            .push("))");
    }
    sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .int(i64::from(limit) + 1);
    Ok(limit as usize)
}

/// Turns the rows of a [`paginate`]d query into a page.
pub(crate) fn page_of<T>(
    mut items: Vec<T>,
    limit: usize,
    key: impl Fn(&T) -> (i64, &str),
) -> Page<T> {
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| {
            let (created_at, id) = key(last);
            Cursor {
                created_at,
                id: id.to_owned(),
            }
            .encode()
        })
    } else {
        None
    };
    Page { items, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor {
            created_at: 1_700_000_000_123,
            id: "call_0123456789abcdef01234567".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in [
            "",
            "!!!",
            &URL_SAFE_NO_PAD.encode("no-colon"),
            &URL_SAFE_NO_PAD.encode("x:id"),
            &URL_SAFE_NO_PAD.encode("12:"),
        ] {
            assert!(
                matches!(Cursor::decode(bad), Err(StoreError::Invalid("cursor", _))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn paginate_checks_the_limit() {
        for limit in [0, MAX_PAGE_LIMIT + 1] {
            let mut sql = Sql::new("SELECT 1 WHERE 1 = 1");
            assert!(matches!(
                paginate(&mut sql, &PageRequest::first(limit)),
                Err(StoreError::Invalid("limit", _))
            ));
        }
        let mut sql = Sql::new("SELECT id FROM t WHERE org_id = ");
        sql.text("org_1".to_owned());
        let limit = paginate(&mut sql, &PageRequest::default()).unwrap();
        assert_eq!(limit, DEFAULT_PAGE_LIMIT as usize);
        assert_eq!(
            sql.text,
            "SELECT id FROM t WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        );
    }

    #[test]
    fn ids_have_their_prefix_and_24_hex_digits() {
        let id = new_id("agt");
        let hex_part = id.strip_prefix("agt_").unwrap();
        assert_eq!(hex_part.len(), 24);
        assert!(hex_part.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(new_id("agt"), new_id("agt"));
        assert_eq!(random_hex32().len(), 64);
    }

    #[test]
    fn database_url_prefers_config_then_env_then_data_dir() {
        let mut config = Config {
            data_dir: "/var/lib/hotline".into(),
            ..Config::default()
        };
        assert_eq!(
            Store::database_url(&config, None),
            "sqlite:///var/lib/hotline/hotline.db?mode=rwc"
        );
        assert_eq!(
            Store::database_url(&config, Some("")),
            "sqlite:///var/lib/hotline/hotline.db?mode=rwc"
        );
        assert_eq!(
            Store::database_url(&config, Some("postgres://env/db")),
            "postgres://env/db"
        );
        config.database.url = Some("postgres://config/db".into());
        assert_eq!(
            Store::database_url(&config, Some("postgres://env/db")),
            "postgres://config/db"
        );
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("url", "https://example.com/hook").is_ok());
        assert!(check_url("url", "http://127.0.0.1:9000").is_ok());
        for bad in ["", "ftp://x", "https://", "https:///path", "example.com"] {
            assert!(check_url("url", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(1_709_294_645_999), "2024-03-01 12:04:05");
        assert_eq!(format_utc(-1), "1969-12-31 23:59:59");
    }

    #[test]
    fn backend_from_url() {
        assert_eq!(Backend::from_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(
            Backend::from_url("postgresql://h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::from_url("mysql://h/db"), None);
    }
}
