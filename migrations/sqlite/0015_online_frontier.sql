-- Issue 24: the online detectors are fed in event-time order behind a frontier (monitor/online.py).
-- A store whose detectors were fed in batch order goes on from its watermark, not from the
-- beginning (which would feed every stored pair a second time).
INSERT INTO detector_state (key, state, updated_at)
SELECT 'online:frontier', json_object('ts', w), w
FROM (
    SELECT max(t) AS w FROM (
        SELECT max(last_ts) AS t FROM model_versions UNION ALL SELECT max(ts) FROM labels
    )
)
WHERE w IS NOT NULL AND EXISTS (SELECT 1 FROM detector_state WHERE key LIKE 'adwin:%');
