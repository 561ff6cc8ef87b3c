//! Numbers (DIDs): which org owns a dialled number and what happens to
//! calls that reach it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Page, PageRequest, Result, Sql, Store, StoreError, check_opt_text, json_col, new_id, now_ms,
    page_of, paginate, write_err,
};

/// Values of `inbound.mode`.
pub const INBOUND_MODES: &[&str] = &["ai", "flow", "echo", "play", "forward", "off"];

/// A stored number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Number {
    /// `num_` and 24 hex digits.
    pub id: String,
    /// Owning org.
    pub org_id: String,
    /// The number in E.164 (`+` and digits); unique across the server.
    pub e164: String,
    /// A label for people.
    pub label: Option<String>,
    /// Name of the SIP trunk outbound calls from this number use.
    pub trunk: Option<String>,
    /// The agent inbound AI calls run.
    pub agent_id: Option<String>,
    /// Inbound handling: `{"mode": "ai"|"flow"|"echo"|"play"|"forward"|"off", …}`.
    pub inbound: Value,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
}

/// What [`Store::create_number`] needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NewNumber {
    /// E.164 number.
    pub e164: String,
    /// See [`Number::label`].
    #[serde(default)]
    pub label: Option<String>,
    /// See [`Number::trunk`].
    #[serde(default)]
    pub trunk: Option<String>,
    /// See [`Number::agent_id`]; must be an agent of the same org.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// See [`Number::inbound`].
    pub inbound: Value,
}

/// A partial update: only fields that are `Some` change; `Some(None)`
/// clears a nullable field. The E.164 number itself cannot change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NumberUpdate {
    /// New or cleared label.
    pub label: Option<Option<String>>,
    /// New or cleared trunk.
    pub trunk: Option<Option<String>>,
    /// New or cleared agent.
    pub agent_id: Option<Option<String>>,
    /// New inbound handling.
    pub inbound: Option<Value>,
}

/// Which numbers a list returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct NumberFilter {
    /// Only numbers routed to this agent.
    pub agent_id: Option<String>,
}

const NUMBER_COLS: &str =
    "id, org_id, e164, label, trunk, agent_id, inbound, created_at, updated_at";

fn number_from_row(row: &AnyRow) -> Result<Number> {
    Ok(Number {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        e164: row.try_get("e164")?,
        label: row.try_get("label")?,
        trunk: row.try_get("trunk")?,
        agent_id: row.try_get("agent_id")?,
        inbound: json_col(row, "inbound")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// E.164: `+`, a non-zero digit, at most 15 digits in all.
pub(crate) fn check_e164(field: &'static str, number: &str) -> Result<()> {
    let ok = number.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    });
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            field,
            "must be E.164: + and 2 to 15 digits".into(),
        ))
    }
}

fn check_inbound(inbound: &Value) -> Result<()> {
    let mode = inbound.get("mode").and_then(Value::as_str);
    match mode {
        Some(m) if inbound.is_object() && INBOUND_MODES.contains(&m) => Ok(()),
        _ => Err(StoreError::Invalid(
            "inbound",
            format!(
                "must be an object whose mode is one of {}",
                INBOUND_MODES.join(", ")
            ),
        )),
    }
}

impl Store {
    /// Fails unless `agent_id` names an agent of `org_id`: the foreign key
    /// alone would accept another org's agent.
    async fn check_agent_ref(&self, org_id: &str, agent_id: Option<&str>) -> Result<()> {
        if let Some(agent_id) = agent_id {
            match self.get_agent(org_id, agent_id).await {
                Err(StoreError::NotFound) => {
                    return Err(StoreError::Invalid("agent_id", "no such agent".into()));
                }
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    /// Every number of every org: what the call engine's number table is
    /// loaded from at start.
    pub async fn all_numbers(&self) -> Result<Vec<Number>> {
        let rows = Sql::new(&format!("SELECT {NUMBER_COLS} FROM numbers ORDER BY e164"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(number_from_row).collect()
    }

    /// Adds a number to `org_id`; [`StoreError::Conflict`]`("e164")` if any
    /// org already has it.
    pub async fn create_number(&self, org_id: &str, new: &NewNumber) -> Result<Number> {
        check_e164("e164", &new.e164)?;
        check_opt_text("label", new.label.as_deref(), 200)?;
        check_opt_text("trunk", new.trunk.as_deref(), 200)?;
        check_inbound(&new.inbound)?;
        self.check_agent_ref(org_id, new.agent_id.as_deref())
            .await?;
        let now = now_ms();
        let row = Sql::new(&format!("INSERT INTO numbers ({NUMBER_COLS}) VALUES ("))
            .text(new_id("num"))
            .push(", ")
            .text(org_id.to_owned())
            .push(", ")
            .text(new.e164.clone())
            .push(", ")
            .text(new.label.clone())
            .push(", ")
            .text(new.trunk.clone())
            .push(", ")
            .text(new.agent_id.clone())
            .push(", ")
            .text(new.inbound.to_string())
            .push(", ")
            .int(now)
            .push(", ")
            .int(now)
            .push(") RETURNING ")
            .push(NUMBER_COLS)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| write_err(e, "e164", "agent_id"))?
            .ok_or(StoreError::NotFound)?;
        number_from_row(&row)
    }

    /// One of the org's numbers.
    pub async fn get_number(&self, org_id: &str, id: &str) -> Result<Number> {
        let row = Sql::new(&format!(
            "SELECT {NUMBER_COLS} FROM numbers WHERE org_id = "
        ))
        .text(org_id.to_owned())
        .push(" AND id = ")
        .text(id.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        number_from_row(&row)
    }

    /// The number dialled on an inbound call, in whichever org owns it.
    /// Unscoped: this is how the engine finds the org.
    pub async fn get_number_by_e164(&self, e164: &str) -> Result<Number> {
        let row = Sql::new(&format!("SELECT {NUMBER_COLS} FROM numbers WHERE e164 = "))
            .text(e164.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        number_from_row(&row)
    }

    /// The org's numbers, newest first.
    pub async fn list_numbers(
        &self,
        org_id: &str,
        filter: &NumberFilter,
        page: &PageRequest,
    ) -> Result<Page<Number>> {
        let mut sql = Sql::new(&format!(
            "SELECT {NUMBER_COLS} FROM numbers WHERE org_id = "
        ));
        sql.text(org_id.to_owned());
        if let Some(agent_id) = &filter.agent_id {
            sql.push(" AND agent_id = ").text(agent_id.clone());
        }
        let limit = paginate(&mut sql, page)?;
        let rows = sql.fetch_all(&self.pool).await?;
        let numbers = rows
            .iter()
            .map(number_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(numbers, limit, |n| (n.created_at, &n.id)))
    }

    /// Changes the fields `update` sets and returns the number as stored.
    pub async fn update_number(
        &self,
        org_id: &str,
        id: &str,
        update: &NumberUpdate,
    ) -> Result<Number> {
        let mut sql = Sql::new("UPDATE numbers SET updated_at = ");
        sql.int(now_ms());
        if let Some(v) = &update.label {
            check_opt_text("label", v.as_deref(), 200)?;
            sql.push(", label = ").text(v.clone());
        }
        if let Some(v) = &update.trunk {
            check_opt_text("trunk", v.as_deref(), 200)?;
            sql.push(", trunk = ").text(v.clone());
        }
        if let Some(v) = &update.agent_id {
            self.check_agent_ref(org_id, v.as_deref()).await?;
            sql.push(", agent_id = ").text(v.clone());
        }
        if let Some(v) = &update.inbound {
            check_inbound(v)?;
            sql.push(", inbound = ").text(v.to_string());
        }
        sql.push(" WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .push(" RETURNING ")
            .push(NUMBER_COLS);
        let row = sql
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| write_err(e, "e164", "agent_id"))?
            .ok_or(StoreError::NotFound)?;
        number_from_row(&row)
    }

    /// Removes a number from the org (its calls keep the id).
    pub async fn delete_number(&self, org_id: &str, id: &str) -> Result<()> {
        let n = Sql::new("DELETE FROM numbers WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .execute(&self.pool)
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn e164_numbers_are_checked() {
        for ok in ["+15551234567", "+442071234567", "+12"] {
            assert!(check_e164("e164", ok).is_ok(), "{ok} refused");
        }
        for bad in [
            "15551234567",
            "+",
            "+1",
            "+0123",
            "+1555-123",
            "+1234567890123456",
            "",
        ] {
            assert!(check_e164("e164", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn inbound_needs_a_known_mode() {
        assert!(check_inbound(&json!({"mode": "echo"})).is_ok());
        assert!(check_inbound(&json!({"mode": "forward", "to": "+15550001111"})).is_ok());
        for bad in [
            json!({}),
            json!({"mode": "dance"}),
            json!("ai"),
            json!({"mode": 1}),
        ] {
            assert!(check_inbound(&bad).is_err(), "{bad} accepted");
        }
    }
}
