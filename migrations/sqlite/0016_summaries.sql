-- Issue 25: mergeable summaries per (model version, measure, time bucket, slice), added to where
-- events and labels are stored (monitor/summaries.py). known_before: the earliest cut-off of the
-- configured schedule a row's labels are known by (event measures: the bucket itself). sums: the
-- measure's vector as little-endian float64; rows with one key add elementwise (mw_add, a
-- function of the connection: connectors/sqlite.py).
CREATE TABLE summaries (
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    measure       TEXT NOT NULL,
    bucket        TEXT NOT NULL,
    slice         TEXT NOT NULL,
    known_before  TEXT NOT NULL,
    sums          BLOB NOT NULL,
    PRIMARY KEY (model_name, model_version, measure, bucket, slice, known_before)
) WITHOUT ROWID;
