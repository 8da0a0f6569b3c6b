-- Issue 16: periodic reports, written once per period across replicas (claimed like vintages)
-- and kept here, so that any replica serves the latest at GET /report.
CREATE TABLE report_runs (
    period_start TIMESTAMPTZ NOT NULL,
    every_s      INTEGER NOT NULL,
    period_end   TIMESTAMPTZ NOT NULL,
    claimed_by   TEXT NOT NULL,
    claimed_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    report       TEXT,
    PRIMARY KEY (period_start, every_s)
);
