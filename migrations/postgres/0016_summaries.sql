-- Issue 25: mergeable summaries per (model version, measure, time bucket, slice), added to where
-- events and labels are stored (monitor/summaries.py). known_before: the earliest cut-off of the
-- configured schedule a row's labels are known by (event measures: the bucket itself), so a
-- vintage sums the rows whose known_before is at or before its cut-off. sums: the measure's
-- vector; rows with one key add elementwise (modalwatch_add), so two writers adding to one row
-- serialise on that row only.
CREATE TABLE summaries (
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    measure       TEXT NOT NULL,
    bucket        TIMESTAMPTZ NOT NULL,
    slice         TEXT NOT NULL,
    known_before  TIMESTAMPTZ NOT NULL,
    sums          DOUBLE PRECISION[] NOT NULL,
    PRIMARY KEY (model_name, model_version, measure, bucket, slice, known_before)
);
CREATE FUNCTION modalwatch_add(a DOUBLE PRECISION[], b DOUBLE PRECISION[]) RETURNS DOUBLE PRECISION[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT array_agg(x + y ORDER BY i) FROM unnest(a, b) WITH ORDINALITY AS t(x, y, i) $$;
CREATE AGGREGATE modalwatch_sum(DOUBLE PRECISION[]) (SFUNC = modalwatch_add, STYPE = DOUBLE PRECISION[]);
