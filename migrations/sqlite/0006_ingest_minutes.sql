-- Issue 6: data health. Messages and message-level dead letters per source and minute of the
-- ingest clock, so the daemon can tell a dead-letter rate, and a source that went quiet, without
-- scanning events.
CREATE TABLE ingest_minutes (
    minute       TEXT NOT NULL,
    source       TEXT NOT NULL,
    messages     INTEGER NOT NULL,
    dead_letters INTEGER NOT NULL,
    PRIMARY KEY (minute, source)
);
