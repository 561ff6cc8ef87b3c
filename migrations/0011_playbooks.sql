-- Playbooks, personas and saved outbound defaults (issue 8). Portable like
-- the rest: ids and JSON are TEXT, times BIGINT unix ms. The nine built-in
-- playbooks ship with the server (src/playbooks/builtin.toml) and are
-- never rows here; only an organization's own are.

CREATE TABLE playbooks (
    id                TEXT PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    description       TEXT,
    strategy          TEXT NOT NULL,
    -- JSON array of strings.
    behavior_rules    TEXT NOT NULL,
    -- A JSON Schema object (already normalized), or NULL.
    extraction_schema TEXT,
    voice_tone        TEXT,
    success_criteria  TEXT,
    -- The built-in or custom playbook this one was copied from. No foreign
    -- key: built-ins are not rows, and a fork outlives its source.
    forked_from       TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX playbooks_org_created ON playbooks (org_id, created_at, id);

CREATE TABLE personas (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    caller_name   TEXT NOT NULL,
    company       TEXT,
    role          TEXT,
    voice         TEXT,
    language      TEXT,
    -- JSON array of strings.
    default_rules TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX personas_org_created ON personas (org_id, created_at, id);

-- A number's saved outbound call settings: one row per number at most.
-- The three references are columns so that deleting what they name can
-- clear them, as deleting an agent clears numbers.agent_id; the rest of
-- the settings are one JSON object.
CREATE TABLE number_outbound_defaults (
    number_id   TEXT PRIMARY KEY REFERENCES numbers (id) ON DELETE CASCADE,
    org_id      TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    agent_id    TEXT REFERENCES agents (id) ON DELETE SET NULL,
    -- A built-in id or a custom playbook's; cleared by the store when a
    -- custom playbook is deleted (built-ins are not rows to refer to).
    playbook_id TEXT,
    persona_id  TEXT REFERENCES personas (id) ON DELETE SET NULL,
    settings    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX number_outbound_defaults_playbook ON number_outbound_defaults (org_id, playbook_id);
CREATE INDEX number_outbound_defaults_persona ON number_outbound_defaults (persona_id);
CREATE INDEX number_outbound_defaults_agent ON number_outbound_defaults (agent_id);
