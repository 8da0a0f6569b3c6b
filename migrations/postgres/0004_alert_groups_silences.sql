-- Issue 6: notification groups (Alertmanager's model: group_wait, group_interval,
-- repeat_interval) and silences. ``notified``: the fingerprints of the group's last notification
-- that were firing, as a JSON list.
CREATE TABLE alert_groups (
    group_key     TEXT PRIMARY KEY,
    route         TEXT NOT NULL,
    receiver      TEXT NOT NULL,
    group_labels  JSONB NOT NULL,
    notified      JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_flush_at TIMESTAMPTZ
);

CREATE TABLE silences (
    id         BIGSERIAL PRIMARY KEY,
    matchers   JSONB NOT NULL,
    starts_at  TIMESTAMPTZ NOT NULL,
    ends_at    TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
