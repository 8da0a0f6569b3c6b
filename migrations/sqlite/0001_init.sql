-- modalwatch schema, SQLite (the embedded default). Timestamps are ISO-8601 UTC text with
-- microseconds (sortable); JSON columns hold JSON text. No raw media is ever stored.
CREATE TABLE events (
    event_id      TEXT PRIMARY KEY,
    ts            TEXT NOT NULL,
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    slice         TEXT NOT NULL,
    signals       TEXT NOT NULL,
    modalities    TEXT NOT NULL,
    pred_label    TEXT NOT NULL,
    confidence    REAL NOT NULL,
    probabilities TEXT,
    abstained     INTEGER NOT NULL,
    embeddings    TEXT,
    position      TEXT NOT NULL,
    ingested_at   TEXT NOT NULL
);
CREATE INDEX events_model_ts ON events (model_name, model_version, ts);

-- One row per model version: when its traffic began and the latest event time seen. The
-- scheduler reads this instead of scanning events.
CREATE TABLE model_versions (
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    first_ts      TEXT NOT NULL,
    last_ts       TEXT NOT NULL,
    PRIMARY KEY (model_name, model_version)
);

CREATE TABLE labels (
    event_id    TEXT PRIMARY KEY,
    label       TEXT NOT NULL,
    source      TEXT NOT NULL,
    ts          TEXT NOT NULL,
    position    TEXT NOT NULL,
    ingested_at TEXT NOT NULL
);
CREATE INDEX labels_ts ON labels (ts);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,
    position    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    payload     TEXT,
    received_at TEXT NOT NULL,
    replayed_at TEXT,
    UNIQUE (source, position)
);

CREATE TABLE eval_runs (
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    interval_s    INTEGER NOT NULL,
    lag_s         INTEGER NOT NULL,
    window_start  TEXT NOT NULL,
    window_end    TEXT NOT NULL,
    claimed_by    TEXT NOT NULL,
    claimed_at    TEXT NOT NULL,
    finished_at   TEXT,
    PRIMARY KEY (model_name, model_version, interval_s, lag_s, window_start)
);

CREATE TABLE evaluations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    model_name      TEXT NOT NULL,
    model_version   TEXT NOT NULL,
    interval_s      INTEGER NOT NULL,
    lag_s           INTEGER NOT NULL,
    window_start    TEXT NOT NULL,
    window_end      TEXT NOT NULL,
    slice           TEXT NOT NULL,
    detector        TEXT NOT NULL,
    metric          TEXT NOT NULL,
    signal          TEXT NOT NULL,
    variant         TEXT NOT NULL,
    status          TEXT NOT NULL,
    value           REAL,
    reference_value REAL,
    ci_low          REAL,
    ci_high         REAL,
    n               INTEGER NOT NULL,
    n_reference     INTEGER NOT NULL,
    evaluated_at    TEXT NOT NULL,
    UNIQUE (model_name, model_version, interval_s, lag_s, window_start, slice, metric, signal)
);
CREATE INDEX evaluations_window ON evaluations (window_start);

CREATE TABLE findings (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    ts            TEXT NOT NULL,
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    slice         TEXT NOT NULL,
    detector      TEXT NOT NULL,
    metric        TEXT NOT NULL,
    value         REAL,
    detail        TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE detector_state (
    key        TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE alerts (
    dedup_key   TEXT PRIMARY KEY,
    rule        TEXT NOT NULL,
    labels      TEXT NOT NULL,
    annotations TEXT NOT NULL,
    state       TEXT NOT NULL,
    starts_at   TEXT NOT NULL,
    ends_at     TEXT,
    value       REAL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key       TEXT NOT NULL,
    receiver        TEXT NOT NULL,
    status          TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT
);
CREATE INDEX outbox_pending ON outbox (status, next_attempt_at);

CREATE TABLE review_items (
    event_id    TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    priority    REAL NOT NULL,
    state       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    exported_at TEXT
);
