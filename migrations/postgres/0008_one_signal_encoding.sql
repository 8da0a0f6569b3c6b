-- Issue 13: one encoding of signals. Before this file runs, the store packs the signals of the
-- events stored before 0007 (connectors/sql/store.py, DATA_STEPS[8]), so that every event holds
-- packed values; the JSON column and the index of unpacked rows are then dropped. Findings are
-- read per window.
DROP INDEX IF EXISTS events_unpacked;
ALTER TABLE events DROP COLUMN signals;
CREATE INDEX findings_model_ts ON findings (model_name, model_version, ts);
