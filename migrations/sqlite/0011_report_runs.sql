-- Issue 16: periodic reports, written once per period across replicas (claimed like vintages)
-- and kept here, so that any replica serves the latest at GET /report.
CREATE TABLE report_runs (
    period_start TEXT NOT NULL,
    every_s      INTEGER NOT NULL,
    period_end   TEXT NOT NULL,
    claimed_by   TEXT NOT NULL,
    claimed_at   TEXT NOT NULL,
    finished_at  TEXT,
    report       TEXT,
    PRIMARY KEY (period_start, every_s)
);
