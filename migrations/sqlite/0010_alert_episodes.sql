-- Issue 15: every episode of an alert (each fire → resolve), kept. ``alerts`` holds one row per
-- fingerprint, its current state, so an alert firing again used to overwrite its last episode.
-- An episode is keyed by its fingerprint and the start of its firing; a pending alert that
-- never fired is no episode.
CREATE TABLE alert_episodes (
    dedup_key   TEXT NOT NULL,
    starts_at   TEXT NOT NULL,
    rule        TEXT NOT NULL,
    labels      TEXT NOT NULL,
    annotations TEXT NOT NULL,
    state       TEXT NOT NULL,
    ends_at     TEXT,
    value       REAL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (dedup_key, starts_at)
);
CREATE INDEX alert_episodes_starts ON alert_episodes (starts_at);
INSERT INTO alert_episodes (dedup_key, starts_at, rule, labels, annotations, state, ends_at, value, updated_at)
SELECT dedup_key, starts_at, rule, labels, annotations, state, ends_at, value, updated_at
FROM alerts WHERE state IN ('firing', 'resolved');

-- A firing alert whose breach has ended keeps firing for its rule's keep_firing_for (event time)
-- before it resolves: since when it has been quiet.
ALTER TABLE alerts ADD COLUMN quiet_since TEXT;
