-- Issue 5: evaluation speed. Each event's signals also as packed little-endian float64 values in
-- the order of a layout (the sorted signal names, stored once in signal_layouts under a 64-bit
-- hash of the names), so an evaluation reads a window's signals as arrays instead of parsing
-- JSON. The JSON column stays the event's record; rows stored before this migration have no
-- packed values and are read from their JSON.
CREATE TABLE signal_layouts (
    id    INTEGER PRIMARY KEY,
    names TEXT NOT NULL
);
ALTER TABLE events ADD COLUMN signal_layout INTEGER;
ALTER TABLE events ADD COLUMN signal_values BLOB;
