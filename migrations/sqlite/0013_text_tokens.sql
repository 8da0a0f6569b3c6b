-- Issue 17: the words of an event's raw text as hashed vocabulary buckets (packed uint32, in
-- order; never the words: detectors/text.py says what they can and cannot reveal). The
-- vocabulary check reads them. NULL for events without raw text.
ALTER TABLE events ADD COLUMN text_tokens BLOB;
