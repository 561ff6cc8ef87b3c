//! Orgs (tenants) and their API keys.
//!
//! A key is `hl_live_` and 64 hex digits (256 random bits). Only its SHA-256
//! is stored: the key has full entropy, so a slow or peppered hash would add
//! nothing against guessing, and a plain hash makes lookup by hash possible.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use subtle::ConstantTimeEq;

use super::{
    Page, PageRequest, Result, Sql, Store, StoreError, check_text, hex, new_id, now_ms, page_of,
    paginate, random_hex32, write_err,
};

/// What every API key starts with; makes leaked keys easy to scan for.
pub const API_KEY_PREFIX: &str = "hl_live_";
/// How many leading characters of a key are kept to tell keys apart in lists.
pub const API_KEY_SHOWN_CHARS: usize = 12;
/// `last_used_at` is refreshed at most this often, so authenticating does
/// not write on every request.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// A tenant: every other row belongs to one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Org {
    /// `org_` and 24 hex digits.
    pub id: String,
    /// Unique name, used by the CLI to find it.
    pub name: String,
    /// Creation time, unix ms.
    pub created_at: i64,
}

/// An API key as listed: never the key itself, nor its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// `key_` and 24 hex digits.
    pub id: String,
    /// The org the key acts for.
    pub org_id: String,
    /// A label chosen by whoever created it.
    pub name: String,
    /// The key's first characters (`hl_live_` and 4 more), to recognise it.
    pub prefix: String,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last successful authentication (to the minute), unix ms.
    pub last_used_at: Option<i64>,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<i64>,
}

/// A key just created: the only time its plaintext is available.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    /// The stored record.
    pub key: ApiKey,
    /// The key to hand to the client; it cannot be recovered later.
    pub plaintext: String,
}

fn org_from_row(row: &AnyRow) -> Result<Org> {
    Ok(Org {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

const KEY_COLS: &str = "id, org_id, name, prefix, created_at, last_used_at, revoked_at";

fn key_from_row(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// Hex SHA-256 of a key, as stored.
fn key_hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

impl Store {
    /// Creates an org; [`StoreError::Conflict`]`("name")` if the name is taken.
    pub async fn create_org(&self, name: &str) -> Result<Org> {
        check_text("name", name, 200)?;
        let row = Sql::new("INSERT INTO orgs (id, name, created_at) VALUES (")
            .text(new_id("org"))
            .push(", ")
            .text(name.to_owned())
            .push(", ")
            .int(now_ms())
            .push(") RETURNING id, name, created_at")
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| write_err(e, "name", "name"))?
            .ok_or(StoreError::NotFound)?;
        org_from_row(&row)
    }

    /// The org with this id.
    pub async fn get_org(&self, id: &str) -> Result<Org> {
        let row = Sql::new("SELECT id, name, created_at FROM orgs WHERE id = ")
            .text(id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        org_from_row(&row)
    }

    /// The org's settings: a JSON object, `{}` until some are saved.
    pub async fn org_settings(&self, org_id: &str) -> Result<serde_json::Value> {
        let row = Sql::new("SELECT settings FROM orgs WHERE id = ")
            .text(org_id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(super::opt_json_col(&row, "settings")?
            .unwrap_or_else(|| serde_json::Value::Object(Default::default())))
    }

    /// Replaces the org's settings (a JSON object, at most 64 KiB).
    pub async fn set_org_settings(&self, org_id: &str, settings: &serde_json::Value) -> Result<()> {
        if !settings.is_object() {
            return Err(StoreError::Invalid(
                "settings",
                "must be a JSON object".into(),
            ));
        }
        let text = settings.to_string();
        if text.len() > 65_536 {
            return Err(StoreError::Invalid("settings", "too large".into()));
        }
        let updated = Sql::new("UPDATE orgs SET settings = ")
            .text(text)
            .push(" WHERE id = ")
            .text(org_id.to_owned())
            .push(" RETURNING id")
            .fetch_optional(&self.pool)
            .await?;
        updated.map(|_| ()).ok_or(StoreError::NotFound)
    }

    /// The org with this name (for the CLI).
    pub async fn get_org_by_name(&self, name: &str) -> Result<Org> {
        let row = Sql::new("SELECT id, name, created_at FROM orgs WHERE name = ")
            .text(name.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        org_from_row(&row)
    }

    /// The org with this name, created if missing. Safe when two callers
    /// race: the loser of the insert reads the winner's row.
    pub async fn ensure_org(&self, name: &str) -> Result<Org> {
        match self.get_org_by_name(name).await {
            Err(StoreError::NotFound) => {}
            other => return other,
        }
        match self.create_org(name).await {
            Err(StoreError::Conflict(_)) => self.get_org_by_name(name).await,
            other => other,
        }
    }

    /// Creates an API key for `org_id`; the plaintext is returned only here.
    pub async fn create_api_key(&self, org_id: &str, name: &str) -> Result<CreatedApiKey> {
        check_text("name", name, 200)?;
        let plaintext = format!("{API_KEY_PREFIX}{}", random_hex32());
        let prefix: String = plaintext.chars().take(API_KEY_SHOWN_CHARS).collect();
        let row =
            Sql::new("INSERT INTO api_keys (id, org_id, name, prefix, hash, created_at) VALUES (")
                .text(new_id("key"))
                .push(", ")
                .text(org_id.to_owned())
                .push(", ")
                .text(name.to_owned())
                .push(", ")
                .text(prefix)
                .push(", ")
                .text(key_hash(&plaintext))
                .push(", ")
                .int(now_ms())
                .push(") RETURNING ")
                .push(KEY_COLS)
                .fetch_optional(&self.pool)
                .await
                // A hash collision of fresh 256-bit keys does not happen; a
                // foreign-key failure means the org does not exist.
                .map_err(|e| match write_err(e, "key", "org_id") {
                    StoreError::Invalid("org_id", _) => StoreError::NotFound,
                    other => other,
                })?
                .ok_or(StoreError::NotFound)?;
        Ok(CreatedApiKey {
            key: key_from_row(&row)?,
            plaintext,
        })
    }

    /// The org and key id a presented key acts for, or `None` if the key is
    /// unknown or revoked. Unscoped by nature. Refreshes `last_used_at` at
    /// most once a minute.
    pub async fn authenticate(&self, key: &str) -> Result<Option<(String, String)>> {
        if !key.starts_with(API_KEY_PREFIX) || key.len() > 128 {
            return Ok(None);
        }
        let hash = key_hash(key);
        let Some(row) = Sql::new(
            "SELECT id, org_id, hash, last_used_at FROM api_keys \
             WHERE revoked_at IS NULL AND hash = ",
        )
        .text(hash.clone())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let stored: String = row.try_get("hash")?;
        // The lookup already matched; comparing again in constant time
        // keeps the decision itself free of data-dependent timing.
        if !bool::from(stored.as_bytes().ct_eq(hash.as_bytes())) {
            return Ok(None);
        }
        let id: String = row.try_get("id")?;
        let org_id: String = row.try_get("org_id")?;
        let last_used: Option<i64> = row.try_get("last_used_at")?;
        let now = now_ms();
        if last_used.is_none_or(|t| now - t >= LAST_USED_RESOLUTION_MS) {
            Sql::new("UPDATE api_keys SET last_used_at = ")
                .int(now)
                .push(" WHERE id = ")
                .text(id.clone())
                .push(" AND (last_used_at IS NULL OR last_used_at < ")
                .int(now - LAST_USED_RESOLUTION_MS + 1)
                .push(")")
                .execute(&self.pool)
                .await?;
        }
        Ok(Some((org_id, id)))
    }

    /// One of the org's keys.
    pub async fn get_api_key(&self, org_id: &str, id: &str) -> Result<ApiKey> {
        let row = Sql::new(&format!("SELECT {KEY_COLS} FROM api_keys WHERE org_id = "))
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        key_from_row(&row)
    }

    /// A key by id in any org: for the operator CLI, which revokes by id.
    pub async fn find_api_key(&self, id: &str) -> Result<ApiKey> {
        let row = Sql::new(&format!("SELECT {KEY_COLS} FROM api_keys WHERE id = "))
            .text(id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        key_from_row(&row)
    }

    /// The org's keys, revoked ones included, newest first.
    pub async fn list_api_keys(&self, org_id: &str, page: &PageRequest) -> Result<Page<ApiKey>> {
        let mut sql = Sql::new(&format!("SELECT {KEY_COLS} FROM api_keys WHERE org_id = "));
        sql.text(org_id.to_owned());
        let limit = paginate(&mut sql, page)?;
        let rows = sql.fetch_all(&self.pool).await?;
        let keys = rows.iter().map(key_from_row).collect::<Result<Vec<_>>>()?;
        Ok(page_of(keys, limit, |k| (k.created_at, &k.id)))
    }

    /// Revokes a key (again is a no-op) and returns it.
    pub async fn revoke_api_key(&self, org_id: &str, id: &str) -> Result<ApiKey> {
        Sql::new("UPDATE api_keys SET revoked_at = ")
            .int(now_ms())
            .push(" WHERE revoked_at IS NULL AND org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .execute(&self.pool)
            .await?;
        self.get_api_key(org_id, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_hex_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
