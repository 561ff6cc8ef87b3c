-- The voice agent marks the lines the caller cut short. 0/1 rather than a
-- BOOLEAN so both databases read it back as an integer through sqlx's Any
-- driver.
ALTER TABLE transcript_entries ADD COLUMN interrupted BIGINT NOT NULL DEFAULT 0;
