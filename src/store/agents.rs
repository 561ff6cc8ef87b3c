//! Agents: the prompt, voice and model settings an AI call runs with.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Page, PageRequest, Result, Sql, Store, StoreError, check_opt_text, check_text, json_col,
    new_id, now_ms, page_of, paginate, write_err,
};

/// Longest call an agent may be configured for: a day.
const MAX_DURATION_LIMIT_SECS: i64 = 86_400;

/// A stored agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agent {
    /// `agt_` and 24 hex digits.
    pub id: String,
    /// Owning org.
    pub org_id: String,
    /// Display name.
    pub name: String,
    /// The system prompt.
    pub system_prompt: String,
    /// Said when the call connects; the agent waits for the caller if unset.
    pub first_message: Option<String>,
    /// TTS voice name.
    pub voice: Option<String>,
    /// BCP 47 language tag for STT and TTS.
    pub language: Option<String>,
    /// Provider and model settings (a JSON object).
    pub model: Value,
    /// Tool definitions (a JSON array).
    pub tools: Value,
    /// Left as a message when the call reaches voicemail.
    pub voicemail_message: Option<String>,
    /// Where the `transfer` tool sends the caller.
    pub transfer_number: Option<String>,
    /// Hang up after this many seconds.
    pub max_duration_secs: Option<i64>,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
}

/// What [`Store::create_agent`] needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NewAgent {
    /// Display name.
    pub name: String,
    /// The system prompt.
    pub system_prompt: String,
    /// See [`Agent::first_message`].
    #[serde(default)]
    pub first_message: Option<String>,
    /// See [`Agent::voice`].
    #[serde(default)]
    pub voice: Option<String>,
    /// See [`Agent::language`].
    #[serde(default)]
    pub language: Option<String>,
    /// A JSON object; `{}` when omitted.
    #[serde(default = "empty_object")]
    pub model: Value,
    /// A JSON array; `[]` when omitted.
    #[serde(default = "empty_array")]
    pub tools: Value,
    /// See [`Agent::voicemail_message`].
    #[serde(default)]
    pub voicemail_message: Option<String>,
    /// See [`Agent::transfer_number`].
    #[serde(default)]
    pub transfer_number: Option<String>,
    /// See [`Agent::max_duration_secs`].
    #[serde(default)]
    pub max_duration_secs: Option<i64>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

fn empty_array() -> Value {
    Value::Array(Vec::new())
}

impl NewAgent {
    /// An agent with a name and prompt and every other setting left default.
    pub fn new(name: impl Into<String>, system_prompt: impl Into<String>) -> NewAgent {
        NewAgent {
            name: name.into(),
            system_prompt: system_prompt.into(),
            first_message: None,
            voice: None,
            language: None,
            model: empty_object(),
            tools: empty_array(),
            voicemail_message: None,
            transfer_number: None,
            max_duration_secs: None,
        }
    }
}

/// A partial update: only fields that are `Some` change. For nullable
/// fields, `Some(None)` clears the value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentUpdate {
    /// New name.
    pub name: Option<String>,
    /// New system prompt.
    pub system_prompt: Option<String>,
    /// New or cleared first message.
    pub first_message: Option<Option<String>>,
    /// New or cleared voice.
    pub voice: Option<Option<String>>,
    /// New or cleared language.
    pub language: Option<Option<String>>,
    /// New model settings (replaces the whole object).
    pub model: Option<Value>,
    /// New tools (replaces the whole array).
    pub tools: Option<Value>,
    /// New or cleared voicemail message.
    pub voicemail_message: Option<Option<String>>,
    /// New or cleared transfer number.
    pub transfer_number: Option<Option<String>>,
    /// New or cleared duration limit.
    pub max_duration_secs: Option<Option<i64>>,
}

const AGENT_COLS: &str = "id, org_id, name, system_prompt, first_message, voice, language, \
     model, tools, voicemail_message, transfer_number, max_duration_secs, created_at, updated_at";

fn agent_from_row(row: &AnyRow) -> Result<Agent> {
    Ok(Agent {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        system_prompt: row.try_get("system_prompt")?,
        first_message: row.try_get("first_message")?,
        voice: row.try_get("voice")?,
        language: row.try_get("language")?,
        model: json_col(row, "model")?,
        tools: json_col(row, "tools")?,
        voicemail_message: row.try_get("voicemail_message")?,
        transfer_number: row.try_get("transfer_number")?,
        max_duration_secs: row.try_get("max_duration_secs")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn check_model(model: &Value) -> Result<()> {
    if model.is_object() {
        Ok(())
    } else {
        Err(StoreError::Invalid("model", "must be a JSON object".into()))
    }
}

fn check_tools(tools: &Value) -> Result<()> {
    if tools.is_array() {
        Ok(())
    } else {
        Err(StoreError::Invalid("tools", "must be a JSON array".into()))
    }
}

fn check_max_duration(secs: Option<i64>) -> Result<()> {
    match secs {
        Some(s) if !(1..=MAX_DURATION_LIMIT_SECS).contains(&s) => Err(StoreError::Invalid(
            "max_duration_secs",
            format!("must be between 1 and {MAX_DURATION_LIMIT_SECS}"),
        )),
        _ => Ok(()),
    }
}

const SHORT: usize = 200;
const LONG: usize = 100_000;

impl Store {
    /// Creates an agent in `org_id`.
    pub async fn create_agent(&self, org_id: &str, new: &NewAgent) -> Result<Agent> {
        check_text("name", &new.name, SHORT)?;
        check_text("system_prompt", &new.system_prompt, LONG)?;
        check_opt_text("first_message", new.first_message.as_deref(), LONG)?;
        check_opt_text("voice", new.voice.as_deref(), SHORT)?;
        check_opt_text("language", new.language.as_deref(), 35)?;
        check_opt_text("voicemail_message", new.voicemail_message.as_deref(), LONG)?;
        check_opt_text("transfer_number", new.transfer_number.as_deref(), SHORT)?;
        check_model(&new.model)?;
        check_tools(&new.tools)?;
        check_max_duration(new.max_duration_secs)?;
        let now = now_ms();
        let row = Sql::new(&format!("INSERT INTO agents ({AGENT_COLS}) VALUES ("))
            .text(new_id("agt"))
            .push(", ")
            .text(org_id.to_owned())
            .push(", ")
            .text(new.name.clone())
            .push(", ")
            .text(new.system_prompt.clone())
            .push(", ")
            .text(new.first_message.clone())
            .push(", ")
            .text(new.voice.clone())
            .push(", ")
            .text(new.language.clone())
            .push(", ")
            .text(new.model.to_string())
            .push(", ")
            .text(new.tools.to_string())
            .push(", ")
            .text(new.voicemail_message.clone())
            .push(", ")
            .text(new.transfer_number.clone())
            .push(", ")
            .int(new.max_duration_secs)
            .push(", ")
            .int(now)
            .push(", ")
            .int(now)
            .push(") RETURNING ")
            .push(AGENT_COLS)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| write_err(e, "id", "org_id"))?
            .ok_or(StoreError::NotFound)?;
        agent_from_row(&row)
    }

    /// One of the org's agents.
    pub async fn get_agent(&self, org_id: &str, id: &str) -> Result<Agent> {
        let row = Sql::new(&format!("SELECT {AGENT_COLS} FROM agents WHERE org_id = "))
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        agent_from_row(&row)
    }

    /// The org's agents, newest first.
    pub async fn list_agents(&self, org_id: &str, page: &PageRequest) -> Result<Page<Agent>> {
        let mut sql = Sql::new(&format!("SELECT {AGENT_COLS} FROM agents WHERE org_id = "));
        sql.text(org_id.to_owned());
        let limit = paginate(&mut sql, page)?;
        let rows = sql.fetch_all(&self.pool).await?;
        let agents = rows
            .iter()
            .map(agent_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(agents, limit, |a| (a.created_at, &a.id)))
    }

    /// Changes the fields `update` sets and returns the agent as stored.
    pub async fn update_agent(
        &self,
        org_id: &str,
        id: &str,
        update: &AgentUpdate,
    ) -> Result<Agent> {
        let mut sql = Sql::new("UPDATE agents SET updated_at = ");
        sql.int(now_ms());
        if let Some(v) = &update.name {
            check_text("name", v, SHORT)?;
            sql.push(", name = ").text(v.clone());
        }
        if let Some(v) = &update.system_prompt {
            check_text("system_prompt", v, LONG)?;
            sql.push(", system_prompt = ").text(v.clone());
        }
        let nullable: [(&'static str, &Option<Option<String>>, usize); 5] = [
            ("first_message", &update.first_message, LONG),
            ("voice", &update.voice, SHORT),
            ("language", &update.language, 35),
            ("voicemail_message", &update.voicemail_message, LONG),
            ("transfer_number", &update.transfer_number, SHORT),
        ];
        for (col, value, max) in nullable {
            if let Some(v) = value {
                check_opt_text(col, v.as_deref(), max)?;
                sql.push(", ").push(col).push(" = ").text(v.clone());
            }
        }
        if let Some(v) = &update.model {
            check_model(v)?;
            sql.push(", model = ").text(v.to_string());
        }
        if let Some(v) = &update.tools {
            check_tools(v)?;
            sql.push(", tools = ").text(v.to_string());
        }
        if let Some(v) = update.max_duration_secs {
            check_max_duration(v)?;
            sql.push(", max_duration_secs = ").int(v);
        }
        sql.push(" WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .push(" RETURNING ")
            .push(AGENT_COLS);
        let row = sql
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        agent_from_row(&row)
    }

    /// Deletes an agent; numbers that pointed at it are left without one.
    pub async fn delete_agent(&self, org_id: &str, id: &str) -> Result<()> {
        let n = Sql::new("DELETE FROM agents WHERE org_id = ")
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
