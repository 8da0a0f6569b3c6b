-- Issue 5: evaluation speed. An event's signals are stored as packed little-endian float64 values
-- in the order of a layout (the sorted signal names, stored once in signal_layouts under a 64-bit
-- hash of the names), so an evaluation reads a window's signals as arrays instead of parsing
-- JSON, and rows are narrower. The JSON column signals keeps the signals of rows stored before
-- this migration (which have no packed values); later rows hold an empty object there.
CREATE TABLE signal_layouts (
    id    BIGINT PRIMARY KEY,
    names TEXT NOT NULL
);
ALTER TABLE events ADD COLUMN signal_layout BIGINT;
ALTER TABLE events ADD COLUMN signal_values BYTEA;
-- Rows without packed values (those stored before this migration; no later row enters it), for
-- the evaluation to find without scanning.
CREATE INDEX events_unpacked ON events (model_name, model_version, ts) WHERE signal_values IS NULL;
