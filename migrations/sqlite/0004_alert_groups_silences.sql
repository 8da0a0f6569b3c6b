-- Issue 6: notification groups (Alertmanager's model: group_wait, group_interval,
-- repeat_interval) and silences. ``notified``: the fingerprints of the group's last notification
-- that were firing, as a JSON list.
CREATE TABLE alert_groups (
    group_key     TEXT PRIMARY KEY,
    route         TEXT NOT NULL,
    receiver      TEXT NOT NULL,
    group_labels  TEXT NOT NULL,
    notified      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_flush_at TEXT
);

CREATE TABLE silences (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    matchers   TEXT NOT NULL,
    starts_at  TEXT NOT NULL,
    ends_at    TEXT NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL,
    created_at TEXT NOT NULL
);
