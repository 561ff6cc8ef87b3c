//! An organization's own playbooks, its personas, and its numbers' saved
//! outbound defaults (see [`crate::playbooks`]; the built-in playbooks
//! are compiled in, never stored).

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Page, PageRequest, Result, Sql, Store, StoreError, json_col, new_id, now_ms, opt_json_col,
    page_of, paginate, write_err,
};
use crate::playbooks::personas::PERSONA_ID_PREFIX;
use crate::playbooks::{
    NewPersona, NewPlaybook, OutboundDefaults, PLAYBOOK_ID_PREFIX, Persona, PersonaUpdate,
    Playbook, PlaybookUpdate, Problems, SavedOutboundDefaults,
};

const PLAYBOOK_COLS: &str = "id, org_id, name, description, strategy, behavior_rules, \
     extraction_schema, voice_tone, success_criteria, forked_from, created_at, updated_at";

const PERSONA_COLS: &str = "id, org_id, name, caller_name, company, role, voice, language, \
     default_rules, created_at, updated_at";

const DEFAULTS_COLS: &str = "number_id, org_id, agent_id, playbook_id, persona_id, settings, \
     updated_at";

/// The first of `problems` as a store error. The store's field names are
/// `'static`, so the dotted path (`behavior_rules.3`) is reduced to its
/// field, found among `fields`.
fn refuse(problems: Problems, fields: &[&'static str]) -> Result<()> {
    let Some((path, msg)) = problems.into_iter().next() else {
        return Ok(());
    };
    let head = path.split('.').next().unwrap_or("");
    let field = fields
        .iter()
        .copied()
        .find(|f| *f == head)
        .unwrap_or("body");
    Err(StoreError::Invalid(field, msg))
}

const PLAYBOOK_FIELDS: &[&str] = &[
    "name",
    "description",
    "strategy",
    "behavior_rules",
    "extraction_schema",
    "voice_tone",
    "success_criteria",
];

const PERSONA_FIELDS: &[&str] = &[
    "name",
    "caller_name",
    "company",
    "role",
    "voice",
    "language",
    "default_rules",
];

const DEFAULTS_FIELDS: &[&str] = &[
    "agent_id",
    "playbook_id",
    "persona_id",
    "objective",
    "context",
    "behavior_rules",
    "system_prompt",
    "first_message",
    "voice",
    "language",
    "on_voicemail",
    "voicemail_message",
    "max_duration_minutes",
    "extraction_schema",
    "retry_policy",
    "record",
];

fn strings_col(row: &AnyRow, col: &str) -> Result<Vec<String>> {
    let v = json_col(row, col)?;
    serde_json::from_value(v).map_err(|e| super::decode_err(col, e))
}

fn strings_json(list: &[String]) -> String {
    Value::from(list.to_vec()).to_string()
}

fn playbook_from_row(row: &AnyRow) -> Result<Playbook> {
    Ok(Playbook {
        id: row.try_get("id")?,
        org_id: Some(row.try_get("org_id")?),
        builtin: false,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        strategy: row.try_get("strategy")?,
        behavior_rules: strings_col(row, "behavior_rules")?,
        extraction_schema: opt_json_col(row, "extraction_schema")?,
        voice_tone: row.try_get("voice_tone")?,
        success_criteria: row.try_get("success_criteria")?,
        forked_from: row.try_get("forked_from")?,
        created_at: Some(row.try_get("created_at")?),
        updated_at: Some(row.try_get("updated_at")?),
    })
}

fn persona_from_row(row: &AnyRow) -> Result<Persona> {
    Ok(Persona {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        caller_name: row.try_get("caller_name")?,
        company: row.try_get("company")?,
        role: row.try_get("role")?,
        voice: row.try_get("voice")?,
        language: row.try_get("language")?,
        default_rules: strings_col(row, "default_rules")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn defaults_from_row(row: &AnyRow) -> Result<SavedOutboundDefaults> {
    let settings = json_col(row, "settings")?;
    let mut defaults: OutboundDefaults =
        serde_json::from_value(settings).map_err(|e| super::decode_err("settings", e))?;
    defaults.agent_id = row.try_get("agent_id")?;
    defaults.playbook_id = row.try_get("playbook_id")?;
    defaults.persona_id = row.try_get("persona_id")?;
    Ok(SavedOutboundDefaults {
        number_id: row.try_get("number_id")?,
        defaults,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Creates a custom playbook in `org_id`.
    pub async fn create_playbook(&self, org_id: &str, new: &NewPlaybook) -> Result<Playbook> {
        refuse(new.check(), PLAYBOOK_FIELDS)?;
        let now = now_ms();
        let row = Sql::new(&format!("INSERT INTO playbooks ({PLAYBOOK_COLS}) VALUES ("))
            .text(new_id(PLAYBOOK_ID_PREFIX))
            .push(", ")
            .text(org_id.to_owned())
            .push(", ")
            .text(new.name.clone())
            .push(", ")
            .text(new.description.clone())
            .push(", ")
            .text(new.strategy.clone())
            .push(", ")
            .text(strings_json(&new.behavior_rules))
            .push(", ")
            .text(new.extraction_schema.as_ref().map(Value::to_string))
            .push(", ")
            .text(new.voice_tone.clone())
            .push(", ")
            .text(new.success_criteria.clone())
            .push(", ")
            .text(new.forked_from.clone())
            .push(", ")
            .int(now)
            .push(", ")
            .int(now)
            .push(") RETURNING ")
            .push(PLAYBOOK_COLS)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| write_err(e, "id", "org_id"))?
            .ok_or(StoreError::NotFound)?;
        playbook_from_row(&row)
    }

    /// One of the org's own playbooks (built-ins are not stored).
    pub async fn get_playbook(&self, org_id: &str, id: &str) -> Result<Playbook> {
        let row = Sql::new(&format!(
            "SELECT {PLAYBOOK_COLS} FROM playbooks WHERE org_id = "
        ))
        .text(org_id.to_owned())
        .push(" AND id = ")
        .text(id.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        playbook_from_row(&row)
    }

    /// The org's own playbooks, newest first.
    pub async fn list_playbooks(&self, org_id: &str, page: &PageRequest) -> Result<Page<Playbook>> {
        let mut sql = Sql::new(&format!(
            "SELECT {PLAYBOOK_COLS} FROM playbooks WHERE org_id = "
        ));
        sql.text(org_id.to_owned());
        let limit = paginate(&mut sql, page)?;
        let rows = sql.fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(playbook_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, limit, |p| {
            (p.created_at.unwrap_or_default(), &p.id)
        }))
    }

    /// Changes the fields `update` sets and returns the playbook as stored.
    pub async fn update_playbook(
        &self,
        org_id: &str,
        id: &str,
        update: &PlaybookUpdate,
    ) -> Result<Playbook> {
        refuse(update.check(), PLAYBOOK_FIELDS)?;
        let mut sql = Sql::new("UPDATE playbooks SET updated_at = ");
        sql.int(now_ms());
        if let Some(v) = &update.name {
            sql.push(", name = ").text(v.clone());
        }
        if let Some(v) = &update.strategy {
            sql.push(", strategy = ").text(v.clone());
        }
        let nullable: [(&str, &Option<Option<String>>); 3] = [
            ("description", &update.description),
            ("voice_tone", &update.voice_tone),
            ("success_criteria", &update.success_criteria),
        ];
        for (col, value) in nullable {
            if let Some(v) = value {
                sql.push(", ").push(col).push(" = ").text(v.clone());
            }
        }
        if let Some(v) = &update.behavior_rules {
            sql.push(", behavior_rules = ").text(strings_json(v));
        }
        if let Some(v) = &update.extraction_schema {
            sql.push(", extraction_schema = ")
                .text(v.as_ref().map(Value::to_string));
        }
        sql.push(" WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .push(" RETURNING ")
            .push(PLAYBOOK_COLS);
        let row = sql
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        playbook_from_row(&row)
    }

    /// Deletes a custom playbook; numbers whose outbound defaults named it
    /// are left without one, as numbers are when their agent goes.
    pub async fn delete_playbook(&self, org_id: &str, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // Deleting first both checks that it is this org's and locks it
        // against a concurrent save of defaults naming it.
        let n = Sql::new("DELETE FROM playbooks WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .execute(&mut *tx)
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Sql::new("UPDATE number_outbound_defaults SET playbook_id = NULL WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND playbook_id = ")
            .text(id.to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates a persona in `org_id`.
    pub async fn create_persona(&self, org_id: &str, new: &NewPersona) -> Result<Persona> {
        refuse(new.check(), PERSONA_FIELDS)?;
        let now = now_ms();
        let row = Sql::new(&format!("INSERT INTO personas ({PERSONA_COLS}) VALUES ("))
            .text(new_id(PERSONA_ID_PREFIX))
            .push(", ")
            .text(org_id.to_owned())
            .push(", ")
            .text(new.name.clone())
            .push(", ")
            .text(new.caller_name.clone())
            .push(", ")
            .text(new.company.clone())
            .push(", ")
            .text(new.role.clone())
            .push(", ")
            .text(new.voice.clone())
            .push(", ")
            .text(new.language.clone())
            .push(", ")
            .text(strings_json(&new.default_rules))
            .push(", ")
            .int(now)
            .push(", ")
            .int(now)
            .push(") RETURNING ")
            .push(PERSONA_COLS)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| write_err(e, "id", "org_id"))?
            .ok_or(StoreError::NotFound)?;
        persona_from_row(&row)
    }

    /// One of the org's personas.
    pub async fn get_persona(&self, org_id: &str, id: &str) -> Result<Persona> {
        let row = Sql::new(&format!(
            "SELECT {PERSONA_COLS} FROM personas WHERE org_id = "
        ))
        .text(org_id.to_owned())
        .push(" AND id = ")
        .text(id.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        persona_from_row(&row)
    }

    /// The org's personas, newest first.
    pub async fn list_personas(&self, org_id: &str, page: &PageRequest) -> Result<Page<Persona>> {
        let mut sql = Sql::new(&format!(
            "SELECT {PERSONA_COLS} FROM personas WHERE org_id = "
        ));
        sql.text(org_id.to_owned());
        let limit = paginate(&mut sql, page)?;
        let rows = sql.fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(persona_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, limit, |p| (p.created_at, &p.id)))
    }

    /// Changes the fields `update` sets and returns the persona as stored.
    pub async fn update_persona(
        &self,
        org_id: &str,
        id: &str,
        update: &PersonaUpdate,
    ) -> Result<Persona> {
        refuse(update.check(), PERSONA_FIELDS)?;
        let mut sql = Sql::new("UPDATE personas SET updated_at = ");
        sql.int(now_ms());
        if let Some(v) = &update.name {
            sql.push(", name = ").text(v.clone());
        }
        if let Some(v) = &update.caller_name {
            sql.push(", caller_name = ").text(v.clone());
        }
        let nullable: [(&str, &Option<Option<String>>); 4] = [
            ("company", &update.company),
            ("role", &update.role),
            ("voice", &update.voice),
            ("language", &update.language),
        ];
        for (col, value) in nullable {
            if let Some(v) = value {
                sql.push(", ").push(col).push(" = ").text(v.clone());
            }
        }
        if let Some(v) = &update.default_rules {
            sql.push(", default_rules = ").text(strings_json(v));
        }
        sql.push(" WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .push(" RETURNING ")
            .push(PERSONA_COLS);
        let row = sql
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        persona_from_row(&row)
    }

    /// Deletes a persona; outbound defaults that named it are left without
    /// one (by the foreign key).
    pub async fn delete_persona(&self, org_id: &str, id: &str) -> Result<()> {
        let n = Sql::new("DELETE FROM personas WHERE org_id = ")
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

    /// The saved outbound defaults of the org's number `number_id`, if any
    /// were saved.
    pub async fn outbound_defaults(
        &self,
        org_id: &str,
        number_id: &str,
    ) -> Result<Option<SavedOutboundDefaults>> {
        Sql::new(&format!(
            "SELECT {DEFAULTS_COLS} FROM number_outbound_defaults WHERE org_id = "
        ))
        .text(org_id.to_owned())
        .push(" AND number_id = ")
        .text(number_id.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(defaults_from_row)
        .transpose()
    }

    /// Saves `defaults` as the outbound defaults of the org's number
    /// `number_id`, replacing any before. [`StoreError::NotFound`] when the
    /// number is not the org's; an agent or persona id that names no row
    /// is [`StoreError::Invalid`] (whether it is the org's is the caller's
    /// to check).
    pub async fn set_outbound_defaults(
        &self,
        org_id: &str,
        number_id: &str,
        defaults: &OutboundDefaults,
    ) -> Result<SavedOutboundDefaults> {
        refuse(defaults.check(), DEFAULTS_FIELDS)?;
        let mut tx = self.pool.begin().await?;
        Sql::new("SELECT id FROM numbers WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(number_id.to_owned())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let row = Sql::new(&format!(
            "INSERT INTO number_outbound_defaults ({DEFAULTS_COLS}) VALUES ("
        ))
        .text(number_id.to_owned())
        .push(", ")
        .text(org_id.to_owned())
        .push(", ")
        .text(defaults.agent_id.clone())
        .push(", ")
        .text(defaults.playbook_id.clone())
        .push(", ")
        .text(defaults.persona_id.clone())
        .push(", ")
        .text(defaults.settings_json().to_string())
        .push(", ")
        .int(now_ms())
        .push(
            ") ON CONFLICT (number_id) DO UPDATE SET agent_id = excluded.agent_id, \
             playbook_id = excluded.playbook_id, persona_id = excluded.persona_id, \
             settings = excluded.settings, updated_at = excluded.updated_at RETURNING ",
        )
        .push(DEFAULTS_COLS)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| write_err(e, "number_id", "agent_id or persona_id"))?
        .ok_or(StoreError::NotFound)?;
        let saved = defaults_from_row(&row)?;
        tx.commit().await?;
        Ok(saved)
    }

    /// Forgets the outbound defaults of the org's number `number_id`;
    /// whether there were any.
    pub async fn delete_outbound_defaults(&self, org_id: &str, number_id: &str) -> Result<bool> {
        let n = Sql::new("DELETE FROM number_outbound_defaults WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND number_id = ")
            .text(number_id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(n > 0)
    }
}
