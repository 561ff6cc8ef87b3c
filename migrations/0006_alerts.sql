-- Phone alerts (issue 6): the organization's verified phones, its alerts
-- with their escalation state, every delivery attempt and every status
-- change. Times are unix ms; JSON is TEXT.

CREATE TABLE phones (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (id),
    e164            TEXT NOT NULL,
    label           TEXT,
    is_primary      BIGINT NOT NULL DEFAULT 0,
    verified_at     BIGINT,
    -- SHA-256 of the code spoken on the verification call, its expiry
    -- and the wrong guesses so far.
    code_hash       TEXT,
    code_expires_at BIGINT,
    code_attempts   BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    CONSTRAINT phones_org_e164_key UNIQUE (org_id, e164)
);

CREATE TABLE alerts (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES orgs (id),
    key_id           TEXT,
    title            TEXT NOT NULL,
    message          TEXT,
    severity         TEXT NOT NULL,
    alert_type       TEXT NOT NULL,
    delay_seconds    BIGINT NOT NULL,
    phone_id         TEXT NOT NULL REFERENCES phones (id),
    to_number        TEXT NOT NULL,
    status           TEXT NOT NULL,
    -- The escalation state machine's state (a JSON object).
    escalation       TEXT NOT NULL,
    -- Bumped by every stored step: a step is saved only over the state it
    -- was computed from, so two workers never both act on one step.
    escalation_step  BIGINT NOT NULL DEFAULT 0,
    next_at          BIGINT,
    lease_until      BIGINT,
    metadata         TEXT,
    client_id        TEXT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    acknowledged_at  BIGINT,
    acknowledged_via TEXT,
    updated_at       BIGINT NOT NULL,
    CONSTRAINT alerts_org_client_key UNIQUE (org_id, client_id)
);
CREATE INDEX alerts_due ON alerts (next_at);
CREATE INDEX alerts_org_created ON alerts (org_id, created_at);

CREATE TABLE alert_deliveries (
    id          TEXT PRIMARY KEY,
    alert_id    TEXT NOT NULL REFERENCES alerts (id),
    attempt     BIGINT NOT NULL,
    channel     TEXT NOT NULL,
    status      TEXT NOT NULL,
    to_number   TEXT NOT NULL,
    call_id     TEXT,
    sip_call_id TEXT,
    error       TEXT,
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT
);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id, attempt);

CREATE TABLE alert_events (
    alert_id    TEXT NOT NULL REFERENCES alerts (id),
    seq         BIGINT NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    at          BIGINT NOT NULL,
    detail      TEXT,
    PRIMARY KEY (alert_id, seq)
);
