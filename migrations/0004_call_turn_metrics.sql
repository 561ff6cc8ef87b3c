-- The voice agent's per-turn timings (a JSON array), stored with the
-- call's conclusion.
ALTER TABLE calls ADD COLUMN turn_metrics TEXT;
