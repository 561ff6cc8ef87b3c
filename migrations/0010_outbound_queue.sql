-- Objective-driven outbound calls (issue 8): the calls table is also the
-- durable dialling queue. A waiting call (queued, scheduled,
-- retry_scheduled, needs_follow_up) is due at next_attempt_at; claiming it
-- moves it to dialing in the same statement, under its organization's
-- dial gate, so no two nodes ever place the same attempt. Times are unix
-- ms; JSON is TEXT.

ALTER TABLE calls ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN next_attempt_at BIGINT;
ALTER TABLE calls ADD COLUMN batch_id TEXT;
-- Connected time of earlier attempts (billed, not in duration_ms).
ALTER TABLE calls ADD COLUMN prior_connected_ms BIGINT NOT NULL DEFAULT 0;
CREATE INDEX calls_due ON calls (status, next_attempt_at);
CREATE INDEX calls_batch ON calls (batch_id, created_at, id);

-- One row per attempt at a call: started when claimed, closed when over.
CREATE TABLE call_attempts (
    call_id       TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    attempt       BIGINT NOT NULL,
    status        TEXT NOT NULL,
    answered_by   TEXT,
    sip_code      BIGINT,
    hangup_reason TEXT,
    started_at    BIGINT NOT NULL,
    answered_at   BIGINT,
    ended_at      BIGINT,
    PRIMARY KEY (call_id, attempt)
);

-- One row per organization that dials: locking it serialises the
-- organization's claims across nodes (concurrency is counted, and the
-- calls-per-second spacing kept, inside that lock).
CREATE TABLE dial_gates (
    org_id      TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    next_dial_at BIGINT NOT NULL
);

-- Numbers an organization must not call (the callee asked, or the org
-- added them).
CREATE TABLE dnc_numbers (
    org_id     TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    e164       TEXT NOT NULL,
    -- callee_request | api
    source     TEXT NOT NULL,
    call_id    TEXT,
    reason     TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, e164)
);
CREATE INDEX dnc_numbers_org_created ON dnc_numbers (org_id, created_at, e164);

-- Batches of calls sharing defaults: the calls carry batch_id.
CREATE TABLE call_batches (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name           TEXT,
    -- running | completed | canceled
    status         TEXT NOT NULL,
    -- Calls of this batch up at once; the organization's limit also holds.
    max_concurrent BIGINT NOT NULL,
    total          BIGINT NOT NULL,
    -- The shared defaults, as sent.
    defaults       TEXT NOT NULL,
    metadata       TEXT NOT NULL,
    client_id      TEXT,
    created_at     BIGINT NOT NULL,
    completed_at   BIGINT,
    CONSTRAINT call_batches_org_client_key UNIQUE (org_id, client_id)
);
CREATE INDEX call_batches_org_created ON call_batches (org_id, created_at, id);
