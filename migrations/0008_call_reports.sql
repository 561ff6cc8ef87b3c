-- After-call reports (issue 7): one per AI call, extracted in the
-- background once the call is over. Times are unix ms; facts, commitments
-- and follow-ups are JSON arrays as TEXT; spam is 0/1.

CREATE TABLE call_reports (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- One report per call.
    call_id      TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    -- The call's contact when the report was made (filters; forgetting a
    -- contact deletes its reports).
    contact_id   TEXT,
    -- pending | ready | failed
    status       TEXT NOT NULL,
    error        TEXT,
    -- llm | flow
    extractor    TEXT,
    summary      TEXT,
    caller_name  TEXT,
    intent       TEXT,
    urgency      TEXT,
    callback_by  TEXT,
    spam         BIGINT NOT NULL DEFAULT 0,
    facts        TEXT NOT NULL DEFAULT '[]',
    commitments  TEXT NOT NULL DEFAULT '[]',
    follow_ups   TEXT NOT NULL DEFAULT '[]',
    -- Items the model gave whose quote is not in the transcript.
    dropped      BIGINT NOT NULL DEFAULT 0,
    -- none | skipped | pending | sent | failed
    email_status TEXT NOT NULL DEFAULT 'none',
    email_error  TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    ready_at     BIGINT,
    CONSTRAINT call_reports_call_key UNIQUE (call_id)
);
CREATE INDEX call_reports_org_created ON call_reports (org_id, created_at, id);
CREATE INDEX call_reports_contact ON call_reports (contact_id);
CREATE INDEX call_reports_status ON call_reports (status);
