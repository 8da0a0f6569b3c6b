-- Issue 25: mergeable summaries (monitor/summaries.py): per model version, measure, time bucket,
-- slice and known_before (the earliest cut-off of the configured schedule a row's labels are
-- known by; event measures: the bucket itself), each cell of the measure holds a count, a sum and
-- a sum of squares that writers add to (ON CONFLICT ... SET n = n + excluded.n): two writers
-- adding to one row serialise on that row only, and any window is a GROUP BY of its buckets.
CREATE TABLE summaries (
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    measure       TEXT NOT NULL,
    bucket        TIMESTAMPTZ NOT NULL,
    slice         TEXT NOT NULL,
    known_before  TIMESTAMPTZ NOT NULL,
    cell          TEXT NOT NULL,
    n             DOUBLE PRECISION NOT NULL,
    sum_x         DOUBLE PRECISION NOT NULL,
    sum_x2        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (model_name, model_version, measure, bucket, slice, known_before, cell)
);
