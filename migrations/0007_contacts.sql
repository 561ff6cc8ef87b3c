-- Contacts (issue 7): one row per phone number an organization's calls
-- have met, created on first contact. Times are unix ms; tags are a JSON
-- array as TEXT; blocked is 0/1 (read back as an integer by both
-- databases through sqlx's Any driver).

CREATE TABLE contacts (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- E.164; one contact per number and organization. The unique key is
    -- what makes the first contact race-safe (INSERT … ON CONFLICT).
    phone_number TEXT NOT NULL,
    display_name TEXT,
    tags         TEXT NOT NULL,
    owner_notes  TEXT,
    blocked      BIGINT NOT NULL DEFAULT 0,
    call_count   BIGINT NOT NULL DEFAULT 0,
    last_seen_at BIGINT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    CONSTRAINT contacts_org_phone_key UNIQUE (org_id, phone_number)
);
CREATE INDEX contacts_org_created ON contacts (org_id, created_at, id);
-- The engine's blocked-caller table is loaded from this at start.
CREATE INDEX contacts_blocked ON contacts (blocked);

-- The contact a call was with (the caller of an inbound call, the callee
-- of an outbound one). No foreign key, like number_id: forgetting a
-- contact clears it on its calls.
ALTER TABLE calls ADD COLUMN contact_id TEXT;
CREATE INDEX calls_contact ON calls (contact_id);
