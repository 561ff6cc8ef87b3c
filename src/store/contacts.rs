//! Contacts: the people an organization's calls meet, one per phone number
//! (E.164) and organization, created on first contact and counted on every
//! call after it; and the right to be forgotten ([`Store::forget_contact`]).

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::numbers::check_e164;
use super::{
    Page, PageRequest, Result, Sql, Store, StoreError, check_opt_text, decode_err, new_id, now_ms,
    page_of, paginate, write_err,
};

/// What a forgotten contact's transcript lines say instead.
pub const REDACTED: &str = "[redacted]";
/// Most tags a contact has.
pub const MAX_TAGS: usize = 20;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 50;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;
/// Longest owner notes, in characters.
pub const MAX_OWNER_NOTES_CHARS: usize = 4000;

/// A stored contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    /// `cnt_` and 24 hex digits.
    pub id: String,
    /// Owning org.
    pub org_id: String,
    /// The number, E.164; unique in the org.
    pub phone_number: String,
    /// What the owner calls them.
    pub display_name: Option<String>,
    /// Short labels (lower case, at most [`MAX_TAGS`]).
    pub tags: Vec<String>,
    /// The owner's own notes.
    pub owner_notes: Option<String>,
    /// Their inbound calls are declined (603) before they are answered.
    pub blocked: bool,
    /// Calls with them: inbound calls that reached the org (declined
    /// calls from a blocked contact do not count) and outbound API calls.
    pub call_count: i64,
    /// When the last counted call started, unix ms.
    pub last_seen_at: Option<i64>,
    /// Creation (first contact), unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
}

/// A partial update: only fields that are `Some` change; `Some(None)`
/// clears a nullable field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactUpdate {
    /// New or cleared display name.
    pub display_name: Option<Option<String>>,
    /// New tags, replacing the old ones (normalised: trimmed, lower case,
    /// duplicates dropped).
    pub tags: Option<Vec<String>>,
    /// New or cleared owner notes.
    pub owner_notes: Option<Option<String>>,
    /// Blocked or not.
    pub blocked: Option<bool>,
}

/// Which contacts a list returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactFilter {
    /// Only blocked (or only unblocked) contacts.
    pub blocked: Option<bool>,
    /// Only contacts with this tag (compared in lower case).
    pub tag: Option<String>,
    /// Only contacts whose display name (case-insensitively) or number
    /// starts with this; digits alone also match the number after its `+`.
    pub q: Option<String>,
}

/// What [`Store::forget_contact`] erased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Calls with the number whose content was erased (their times,
    /// status and ids are kept).
    pub calls: u64,
    /// Transcript lines whose text was replaced by [`REDACTED`].
    pub transcript_lines: u64,
    /// Recording files those calls had, as stored (relative paths are
    /// under the data directory): the caller deletes the files.
    pub recordings: Vec<String>,
}

const CONTACT_COLS: &str = "id, org_id, phone_number, display_name, tags, owner_notes, blocked, \
     call_count, last_seen_at, created_at, updated_at";

fn contact_from_row(row: &AnyRow) -> Result<Contact> {
    let tags: String = row.try_get("tags")?;
    Ok(Contact {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        phone_number: row.try_get("phone_number")?,
        display_name: row.try_get("display_name")?,
        tags: serde_json::from_str(&tags).map_err(|e| decode_err("tags", e))?,
        owner_notes: row.try_get("owner_notes")?,
        blocked: row.try_get::<i64, _>("blocked")? != 0,
        call_count: row.try_get("call_count")?,
        last_seen_at: row.try_get("last_seen_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A tag as stored: trimmed and in lower case. Quotes, backslashes and
/// control characters are refused, so that a tag is stored in the JSON
/// array exactly as `"tag"` and the tag filter can match that text.
pub fn normalize_tag(tag: &str) -> Result<String> {
    let t = tag.trim().to_lowercase();
    let n = t.chars().count();
    if n == 0 || n > MAX_TAG_CHARS {
        return Err(StoreError::Invalid(
            "tags",
            format!("each tag must be 1 to {MAX_TAG_CHARS} characters"),
        ));
    }
    if t.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        return Err(StoreError::Invalid(
            "tags",
            "tags may not contain quotes, backslashes or control characters".into(),
        ));
    }
    Ok(t)
}

/// Tags as stored: each normalised, duplicates dropped (first kept), at
/// most [`MAX_TAGS`].
pub fn normalize_tags(tags: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        let t = normalize_tag(t)?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > MAX_TAGS {
        return Err(StoreError::Invalid(
            "tags",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    Ok(out)
}

/// `s` with LIKE's wildcards (and the escape character `!`) escaped, for a
/// pattern written with `ESCAPE '!'`.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '!' | '%' | '_') {
            out.push('!');
        }
        out.push(c);
    }
    out
}

/// The calls of `org` with the number `e164` (or linked to `contact_id`):
/// a `WHERE` condition over `calls`. The number is matched as E.164 and
/// as the bare digits a caller ID may carry.
fn calls_with(sql: &mut Sql, org_id: &str, contact_id: &str, e164: &str) {
    let digits = e164.trim_start_matches('+').to_owned();
    sql.push("org_id = ")
        .text(org_id.to_owned())
        .push(" AND (contact_id = ")
        .text(contact_id.to_owned())
        .push(" OR from_addr = ")
        .text(e164.to_owned())
        .push(" OR from_addr = ")
        .text(digits.clone())
        .push(" OR to_addr = ")
        .text(e164.to_owned())
        .push(" OR to_addr = ")
        .text(digits)
        .push(")");
}

impl Store {
    /// A call with `e164` at `at` (unix ms): creates the org's contact for
    /// the number on first contact, else counts the call (one more in
    /// `call_count`; `last_seen_at` moves forward only). One statement
    /// (`INSERT … ON CONFLICT DO UPDATE`) against the unique key, so
    /// concurrent first calls make one contact, counted once per call.
    pub async fn touch_contact(&self, org_id: &str, e164: &str, at: i64) -> Result<Contact> {
        check_e164("phone_number", e164)?;
        let now = now_ms();
        let row = Sql::new(&format!("INSERT INTO contacts ({CONTACT_COLS}) VALUES ("))
            .text(new_id("cnt"))
            .push(", ")
            .text(org_id.to_owned())
            .push(", ")
            .text(e164.to_owned())
            .push(", NULL, '[]', NULL, 0, 1, ")
            .int(at)
            .push(", ")
            .int(now)
            .push(", ")
            .int(now)
            .push(
                ") ON CONFLICT (org_id, phone_number) DO UPDATE SET \
             call_count = contacts.call_count + 1, \
             last_seen_at = CASE WHEN contacts.last_seen_at IS NULL \
             OR contacts.last_seen_at < excluded.last_seen_at \
             THEN excluded.last_seen_at ELSE contacts.last_seen_at END, \
             updated_at = excluded.updated_at RETURNING ",
            )
            .push(CONTACT_COLS)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| write_err(e, "phone_number", "org_id"))?
            .ok_or(StoreError::NotFound)?;
        contact_from_row(&row)
    }

    /// One of the org's contacts.
    pub async fn get_contact(&self, org_id: &str, id: &str) -> Result<Contact> {
        let row = Sql::new(&format!(
            "SELECT {CONTACT_COLS} FROM contacts WHERE org_id = "
        ))
        .text(org_id.to_owned())
        .push(" AND id = ")
        .text(id.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        contact_from_row(&row)
    }

    /// The org's contact for a number (E.164).
    pub async fn get_contact_by_phone(&self, org_id: &str, e164: &str) -> Result<Contact> {
        let row = Sql::new(&format!(
            "SELECT {CONTACT_COLS} FROM contacts WHERE org_id = "
        ))
        .text(org_id.to_owned())
        .push(" AND phone_number = ")
        .text(e164.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        contact_from_row(&row)
    }

    /// The org's contacts matching `filter`, newest first.
    pub async fn list_contacts(
        &self,
        org_id: &str,
        filter: &ContactFilter,
        page: &PageRequest,
    ) -> Result<Page<Contact>> {
        let mut sql = Sql::new(&format!(
            "SELECT {CONTACT_COLS} FROM contacts WHERE org_id = "
        ));
        sql.text(org_id.to_owned());
        if let Some(b) = filter.blocked {
            sql.push(" AND blocked = ").int(i64::from(b));
        }
        if let Some(tag) = &filter.tag {
            // Stored tags are a JSON array of plain strings (no quotes or
            // backslashes inside a tag), so `"tag"` appears in the text
            // exactly when the tag is in the array.
            let tag = normalize_tag(tag)?;
            sql.push(" AND tags LIKE ")
                .text(format!("%\"{}\"%", like_escape(&tag)))
                .push(" ESCAPE '!'");
        }
        if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            if q.chars().count() > 100 {
                return Err(StoreError::Invalid("q", "at most 100 characters".into()));
            }
            let prefix = format!("{}%", like_escape(q));
            sql.push(" AND (phone_number LIKE ")
                .text(prefix.clone())
                .push(" ESCAPE '!'");
            if q.bytes().all(|b| b.is_ascii_digit()) {
                sql.push(" OR phone_number LIKE ")
                    .text(format!("+{prefix}"))
                    .push(" ESCAPE '!'");
            }
            // SQLite's LIKE ignores ASCII case and Postgres's does not;
            // comparing lower case with lower case behaves alike on both.
            sql.push(" OR LOWER(display_name) LIKE ")
                .text(format!("{}%", like_escape(&q.to_lowercase())))
                .push(" ESCAPE '!')");
        }
        let limit = paginate(&mut sql, page)?;
        let rows = sql.fetch_all(&self.pool).await?;
        let contacts = rows
            .iter()
            .map(contact_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(contacts, limit, |c| (c.created_at, &c.id)))
    }

    /// Changes the fields `update` sets and returns the contact as stored.
    pub async fn update_contact(
        &self,
        org_id: &str,
        id: &str,
        update: &ContactUpdate,
    ) -> Result<Contact> {
        let mut sql = Sql::new("UPDATE contacts SET updated_at = ");
        sql.int(now_ms());
        if let Some(v) = &update.display_name {
            check_opt_text("display_name", v.as_deref(), MAX_DISPLAY_NAME_CHARS)?;
            sql.push(", display_name = ").text(v.clone());
        }
        if let Some(tags) = &update.tags {
            let tags = normalize_tags(tags)?;
            let text = serde_json::to_string(&tags).map_err(|e| decode_err("tags", e))?;
            sql.push(", tags = ").text(text);
        }
        if let Some(v) = &update.owner_notes {
            check_opt_text("owner_notes", v.as_deref(), MAX_OWNER_NOTES_CHARS)?;
            sql.push(", owner_notes = ").text(v.clone());
        }
        if let Some(b) = update.blocked {
            sql.push(", blocked = ").int(i64::from(b));
        }
        sql.push(" WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .push(" RETURNING ")
            .push(CONTACT_COLS);
        let row = sql
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        contact_from_row(&row)
    }

    /// Every blocked contact's `(org_id, phone_number)`, for the call
    /// engine's table of blocked callers at start. Unscoped.
    pub async fn blocked_numbers(&self) -> Result<Vec<(String, String)>> {
        let rows = Sql::new(
            "SELECT org_id, phone_number FROM contacts WHERE blocked = 1 ORDER BY org_id, phone_number",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("org_id")?, r.try_get("phone_number")?)))
            .collect()
    }

    /// Links a call to its contact.
    pub async fn set_call_contact(
        &self,
        org_id: &str,
        call_id: &str,
        contact_id: &str,
    ) -> Result<()> {
        let n = Sql::new("UPDATE calls SET contact_id = ")
            .text(contact_id.to_owned())
            .push(" WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(call_id.to_owned())
            .execute(&self.pool)
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The right to be forgotten, in one transaction: deletes the contact
    /// and, on every call of the org with its number (linked to it, or
    /// from or to the number), replaces each transcript line's text by
    /// [`REDACTED`] and clears what the agent concluded (summary, outcome,
    /// structured data) and the recording, deletes the calls' after-call
    /// reports, and unlinks the contact. The
    /// calls' metadata stays: ids, direction, numbers, times, status,
    /// hang-up cause, SIP codes. Returns what was erased; the caller
    /// deletes the recording files.
    pub async fn forget_contact(&self, org_id: &str, id: &str) -> Result<Forgotten> {
        let mut tx = self.pool.begin().await?;
        for table in ["contact_facts", "contact_fact_events"] {
            Sql::new(&format!("DELETE FROM {table} WHERE org_id = "))
                .text(org_id.to_owned())
                .push(" AND contact_id = ")
                .text(id.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        // Deleting first both checks that the contact is this org's and
        // locks it against a concurrent forget.
        let row = Sql::new("DELETE FROM contacts WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .push(" RETURNING phone_number")
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let e164: String = row.try_get("phone_number")?;
        let mut recordings_sql =
            Sql::new("SELECT recording_path FROM calls WHERE recording_path IS NOT NULL AND ");
        calls_with(&mut recordings_sql, org_id, id, &e164);
        let recordings = recordings_sql
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("recording_path"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut redact = Sql::new("UPDATE transcript_entries SET text = ");
        redact
            .text(REDACTED.to_owned())
            .push(" WHERE call_id IN (SELECT id FROM calls WHERE ");
        calls_with(&mut redact, org_id, id, &e164);
        redact.push(")");
        let transcript_lines = redact.execute(&mut *tx).await?;
        // The after-call reports are memory about the person: they go.
        let mut reports = Sql::new("DELETE FROM call_reports WHERE org_id = ");
        reports
            .text(org_id.to_owned())
            .push(" AND (contact_id = ")
            .text(id.to_owned())
            .push(" OR call_id IN (SELECT id FROM calls WHERE ");
        calls_with(&mut reports, org_id, id, &e164);
        reports.push("))");
        reports.execute(&mut *tx).await?;
        let mut clear = Sql::new(
            "UPDATE calls SET summary = NULL, outcome = NULL, structured_data = NULL, \
             recording_path = NULL, contact_id = NULL WHERE ",
        );
        calls_with(&mut clear, org_id, id, &e164);
        let calls = clear.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Forgotten {
            calls,
            transcript_lines,
            recordings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_normalised_and_bounded() {
        let tags: Vec<String> = [" VIP ", "vip", "Plumber"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(normalize_tags(&tags).unwrap(), ["vip", "plumber"]);
        for bad in ["", "   ", "a\"b", "a\\b", "tab\there", &"x".repeat(51)] {
            assert!(normalize_tag(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_tag(&"é".repeat(50)).is_ok());
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(normalize_tags(&many).is_err());
        assert!(normalize_tags(&many[..20]).is_ok());
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_escape("50%_off!"), "50!%!_off!!");
        assert_eq!(like_escape("+1415"), "+1415");
    }
}
