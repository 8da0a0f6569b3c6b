-- Issue 17: the latest window of one metric per series (GET /v1/trust, and the trust gauge on
-- every /metrics scrape) is read by metric and window start, not by scanning every row.
CREATE INDEX evaluations_metric_window ON evaluations (metric, window_start);
