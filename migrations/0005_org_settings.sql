-- Per-organization settings (a JSON object): the organization's own keys
-- for cloud speech and language providers, and later its alert policy.
ALTER TABLE orgs ADD COLUMN settings TEXT;
