-- What Hotline remembers about a contact (issue 7): one active fact per
-- slot, and every decision about a slot in a timeline. Times are unix ms;
-- JSON is TEXT. Rows go when their contact is forgotten.

CREATE TABLE contact_facts (
    org_id     TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    slot       TEXT NOT NULL,
    -- The active fact (crate::memory::facts::Fact as JSON).
    fact       TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (contact_id, slot)
);

CREATE TABLE contact_fact_events (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    slot       TEXT NOT NULL,
    -- The candidate (value, confidence, source) and the decision
    -- (crate::memory::facts::TimelineEntry as JSON).
    entry      TEXT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX contact_fact_events_contact ON contact_fact_events (contact_id, at);
