-- The control plane's schema. Portable between SQLite and Postgres: ids and
-- JSON are TEXT, timestamps are BIGINT unix milliseconds, and nothing uses a
-- type or clause only one of the two understands. Rows of every table carry
-- org_id so each query can be scoped by it.

CREATE TABLE orgs (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT orgs_name_key UNIQUE (name)
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    -- Hex SHA-256 of the key; the key itself is never stored.
    hash         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    CONSTRAINT api_keys_hash_key UNIQUE (hash)
);
CREATE INDEX api_keys_org_created ON api_keys (org_id, created_at, id);

CREATE TABLE agents (
    id                TEXT PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    system_prompt     TEXT NOT NULL,
    first_message     TEXT,
    voice             TEXT,
    language          TEXT,
    model             TEXT NOT NULL,
    tools             TEXT NOT NULL,
    voicemail_message TEXT,
    transfer_number   TEXT,
    max_duration_secs BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX agents_org_created ON agents (org_id, created_at, id);

CREATE TABLE numbers (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- A DID belongs to one org: unique across the server.
    e164       TEXT NOT NULL,
    label      TEXT,
    trunk      TEXT,
    agent_id   TEXT REFERENCES agents (id) ON DELETE SET NULL,
    inbound    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT numbers_e164_key UNIQUE (e164)
);
CREATE INDEX numbers_org_created ON numbers (org_id, created_at, id);
CREATE INDEX numbers_agent ON numbers (agent_id);

CREATE TABLE calls (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    direction       TEXT NOT NULL,
    from_addr       TEXT NOT NULL,
    to_addr         TEXT NOT NULL,
    -- No foreign keys to numbers or agents: a call is a historical record
    -- and keeps the ids after they are deleted.
    number_id       TEXT,
    agent_id        TEXT,
    status          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    answered_at     BIGINT,
    ended_at        BIGINT,
    duration_ms     BIGINT,
    hangup_by       TEXT,
    hangup_reason   TEXT,
    sip_code        BIGINT,
    sip_call_id     TEXT,
    summary         TEXT,
    outcome         TEXT,
    structured_data TEXT,
    recording_path  TEXT,
    metadata        TEXT NOT NULL,
    request         TEXT NOT NULL,
    webhook_url     TEXT,
    client_id       TEXT,
    -- Last transcript sequence number handed out; bumping it row-locks the
    -- call, which serialises appends to one call's transcript.
    transcript_seq  BIGINT NOT NULL DEFAULT 0,
    -- Idempotency of creation: NULLs never collide, so calls without a
    -- client_id are unconstrained.
    CONSTRAINT calls_org_client_id_key UNIQUE (org_id, client_id)
);
CREATE INDEX calls_org_created ON calls (org_id, created_at, id);
CREATE INDEX calls_org_status ON calls (org_id, status, created_at);

CREATE TABLE transcript_entries (
    call_id    TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    speaker    TEXT NOT NULL,
    text       TEXT NOT NULL,
    start_ms   BIGINT,
    end_ms     BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (call_id, seq)
);

CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    -- JSON array of event types; empty means every event.
    events     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhooks_org_created ON webhooks (org_id, created_at, id);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    org_id           TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    event_type       TEXT NOT NULL,
    payload          TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    -- pending, in_flight, delivered or failed.
    status           TEXT NOT NULL,
    -- While in_flight: when the claim expires and the delivery is due again.
    lease_until      BIGINT,
    last_error       TEXT,
    last_status_code BIGINT,
    created_at       BIGINT NOT NULL,
    delivered_at     BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_org_created ON webhook_deliveries (org_id, created_at, id);
