-- modalwatch schema, PostgreSQL. Timestamps are timestamptz, JSON columns jsonb.
-- No raw media is ever stored. Hypertables are made in code where timescaledb exists.
CREATE TABLE events (
    event_id      TEXT PRIMARY KEY,
    ts            TIMESTAMPTZ NOT NULL,
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    slice         JSONB NOT NULL,
    signals       JSONB NOT NULL,
    modalities    TEXT NOT NULL,
    pred_label    TEXT NOT NULL,
    confidence    DOUBLE PRECISION NOT NULL,
    probabilities JSONB,
    abstained     BOOLEAN NOT NULL,
    embeddings    JSONB,
    position      TEXT NOT NULL,
    ingested_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_model_ts ON events (model_name, model_version, ts);

-- One row per model version: when its traffic began and the latest event time seen. The
-- scheduler reads this instead of scanning events.
CREATE TABLE model_versions (
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    first_ts      TIMESTAMPTZ NOT NULL,
    last_ts       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (model_name, model_version)
);

CREATE TABLE labels (
    event_id    TEXT PRIMARY KEY,
    label       TEXT NOT NULL,
    source      TEXT NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    position    TEXT NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX labels_ts ON labels (ts);

CREATE TABLE dead_letters (
    id          BIGSERIAL PRIMARY KEY,
    source      TEXT NOT NULL,
    position    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    payload     TEXT,
    received_at TIMESTAMPTZ NOT NULL,
    replayed_at TIMESTAMPTZ,
    UNIQUE (source, position)
);

CREATE TABLE eval_runs (
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    interval_s    BIGINT NOT NULL,
    lag_s         BIGINT NOT NULL,
    window_start  TIMESTAMPTZ NOT NULL,
    window_end    TIMESTAMPTZ NOT NULL,
    claimed_by    TEXT NOT NULL,
    claimed_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    PRIMARY KEY (model_name, model_version, interval_s, lag_s, window_start)
);

CREATE TABLE evaluations (
    id              BIGSERIAL PRIMARY KEY,
    model_name      TEXT NOT NULL,
    model_version   TEXT NOT NULL,
    interval_s      BIGINT NOT NULL,
    lag_s           BIGINT NOT NULL,
    window_start    TIMESTAMPTZ NOT NULL,
    window_end      TIMESTAMPTZ NOT NULL,
    slice           TEXT NOT NULL,
    detector        TEXT NOT NULL,
    metric          TEXT NOT NULL,
    signal          TEXT NOT NULL,
    variant         TEXT NOT NULL,
    status          TEXT NOT NULL,
    value           DOUBLE PRECISION,
    reference_value DOUBLE PRECISION,
    ci_low          DOUBLE PRECISION,
    ci_high         DOUBLE PRECISION,
    n               INTEGER NOT NULL,
    n_reference     INTEGER NOT NULL,
    evaluated_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (model_name, model_version, interval_s, lag_s, window_start, slice, metric, signal)
);
CREATE INDEX evaluations_window ON evaluations (window_start);

CREATE TABLE findings (
    id            BIGSERIAL PRIMARY KEY,
    ts            TIMESTAMPTZ NOT NULL,
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    slice         TEXT NOT NULL,
    detector      TEXT NOT NULL,
    metric        TEXT NOT NULL,
    value         DOUBLE PRECISION,
    detail        JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE detector_state (
    key        TEXT PRIMARY KEY,
    state      JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE alerts (
    dedup_key   TEXT PRIMARY KEY,
    rule        TEXT NOT NULL,
    labels      JSONB NOT NULL,
    annotations JSONB NOT NULL,
    state       TEXT NOT NULL,
    starts_at   TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ,
    value       DOUBLE PRECISION,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    dedup_key       TEXT NOT NULL,
    receiver        TEXT NOT NULL,
    status          TEXT NOT NULL,
    payload         JSONB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ
);
CREATE INDEX outbox_pending ON outbox (status, next_attempt_at);

CREATE TABLE review_items (
    event_id    TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    priority    DOUBLE PRECISION NOT NULL,
    state       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    exported_at TIMESTAMPTZ
);
