-- Issue 14: a dead letter keeps its message's own bytes (raw media cut out), so that a replay
-- reads exactly what came — invalid UTF-8 or a NUL byte included — and the kind its source said
-- (a topic or an endpoint), so that a message sent to the wrong one is not stored as the other
-- kind on replay. Rows stored before keep their text in payload.
ALTER TABLE dead_letters ADD COLUMN raw BYTEA;
ALTER TABLE dead_letters ADD COLUMN kind TEXT;
