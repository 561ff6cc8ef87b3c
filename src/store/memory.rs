//! A contact's memory: the active fact of each slot and the timeline of
//! every decision, applied by [`crate::memory::facts::decide`] inside one
//! transaction per batch, so a report's facts land together or not at
//! all.

use sqlx::Row;

use super::{Result, Sql, Store, StoreError, decode_err, new_id};
use crate::memory::facts::{Candidate, Fact, TimelineEntry, decide, slot_key};

/// Most timeline entries returned.
const TIMELINE_MAX: i64 = 500;

impl Store {
    /// Applies `candidates` to `contact_id`'s memory at `now`, in order;
    /// the timeline entries made. The contact must be `org_id`'s.
    pub async fn remember(
        &self,
        org_id: &str,
        contact_id: &str,
        candidates: &[Candidate],
        now: i64,
    ) -> Result<Vec<TimelineEntry>> {
        self.get_contact(org_id, contact_id).await?;
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(candidates.len());
        for c in candidates {
            let Some(slot) = slot_key(&c.slot) else {
                continue;
            };
            let current = Sql::new("SELECT fact FROM contact_facts WHERE contact_id = ")
                .text(contact_id.to_owned())
                .push(" AND slot = ")
                .text(slot.clone())
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| -> Result<Fact> {
                    let json: String = r.try_get("fact")?;
                    serde_json::from_str(&json).map_err(|e| decode_err("fact", e))
                })
                .transpose()?;
            let (after, decision) = decide(current.as_ref(), c, now);
            if after != current
                && let Some(fact) = &after
            {
                let json = serde_json::to_string(fact).expect("a fact serializes");
                let updated = Sql::new("UPDATE contact_facts SET fact = ")
                    .text(json.clone())
                    .push(", updated_at = ")
                    .int(now)
                    .push(" WHERE contact_id = ")
                    .text(contact_id.to_owned())
                    .push(" AND slot = ")
                    .text(slot.clone())
                    .execute(&mut *tx)
                    .await?;
                if updated == 0 {
                    Sql::new("INSERT INTO contact_facts (org_id, contact_id, slot, fact, updated_at) VALUES (")
                        .text(org_id.to_owned())
                        .push(", ")
                        .text(contact_id.to_owned())
                        .push(", ")
                        .text(slot.clone())
                        .push(", ")
                        .text(json)
                        .push(", ")
                        .int(now)
                        .push(")")
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let entry = TimelineEntry {
                slot: slot.clone(),
                value: c.value.trim().to_owned(),
                confidence: c.confidence,
                source: c.source.clone(),
                decision,
                at: now,
            };
            self.log_fact(&mut tx, org_id, contact_id, out.len(), &entry)
                .await?;
            out.push(entry);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn log_fact(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        org_id: &str,
        contact_id: &str,
        index: usize,
        entry: &TimelineEntry,
    ) -> Result<()> {
        // Ids sort as the entries were made: by time, then by place in
        // their batch (the random part only keeps them unique).
        let id = format!("cfe_{:016x}_{index:04x}_{}", entry.at, new_id("r"));
        Sql::new(
            "INSERT INTO contact_fact_events (id, org_id, contact_id, slot, entry, at) VALUES (",
        )
        .text(id)
        .push(", ")
        .text(org_id.to_owned())
        .push(", ")
        .text(contact_id.to_owned())
        .push(", ")
        .text(entry.slot.clone())
        .push(", ")
        .text(serde_json::to_string(entry).expect("an entry serializes"))
        .push(", ")
        .int(entry.at)
        .push(")")
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The owner rejects `slot`'s active fact: the slot is empty again,
    /// and the timeline says so. `NotFound` when the slot holds nothing.
    pub async fn forget_fact(
        &self,
        org_id: &str,
        contact_id: &str,
        slot: &str,
        now: i64,
    ) -> Result<TimelineEntry> {
        self.get_contact(org_id, contact_id).await?;
        let slot = slot_key(slot).ok_or(StoreError::NotFound)?;
        let mut tx = self.pool.begin().await?;
        let row = Sql::new("DELETE FROM contact_facts WHERE contact_id = ")
            .text(contact_id.to_owned())
            .push(" AND slot = ")
            .text(slot.clone())
            .push(" RETURNING fact")
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let json: String = row.try_get("fact")?;
        let fact: Fact = serde_json::from_str(&json).map_err(|e| decode_err("fact", e))?;
        let entry = TimelineEntry {
            slot,
            value: fact.value,
            confidence: fact.confidence,
            source: crate::memory::facts::Source::Owner,
            decision: crate::memory::facts::Decision::Rejected {
                reason: "rejected by the owner".into(),
            },
            at: now,
        };
        self.log_fact(&mut tx, org_id, contact_id, 0, &entry)
            .await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// `contact_id`'s active facts (by slot) and its timeline (oldest
    /// first, the last [`TIMELINE_MAX`] entries).
    pub async fn contact_memory(
        &self,
        org_id: &str,
        contact_id: &str,
    ) -> Result<(Vec<Fact>, Vec<TimelineEntry>)> {
        self.get_contact(org_id, contact_id).await?;
        let facts = Sql::new("SELECT fact FROM contact_facts WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND contact_id = ")
            .text(contact_id.to_owned())
            .push(" ORDER BY slot")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let json: String = r.try_get("fact")?;
                serde_json::from_str(&json).map_err(|e| decode_err("fact", e))
            })
            .collect::<Result<Vec<Fact>>>()?;
        let mut timeline = Sql::new("SELECT entry FROM contact_fact_events WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND contact_id = ")
            .text(contact_id.to_owned())
            .push(" ORDER BY id DESC LIMIT ")
            .int(TIMELINE_MAX)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let json: String = r.try_get("entry")?;
                serde_json::from_str(&json).map_err(|e| decode_err("entry", e))
            })
            .collect::<Result<Vec<TimelineEntry>>>()?;
        timeline.reverse();
        Ok((facts, timeline))
    }
}
