-- Issue 24: the online detectors are fed in event-time order behind a frontier (monitor/online.py).
-- A store whose detectors were fed in batch order goes on from its watermark, not from the
-- beginning (which would feed every stored pair a second time).
INSERT INTO detector_state (key, state, updated_at)
SELECT 'online:frontier',
       jsonb_build_object('ts', to_char(w AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')),
       now()
FROM (
    SELECT max(t) AS w FROM (
        SELECT max(last_ts) AS t FROM model_versions UNION ALL SELECT max(ts) FROM labels
    ) m
) x
WHERE w IS NOT NULL AND EXISTS (SELECT 1 FROM detector_state WHERE key LIKE 'adwin:%');
