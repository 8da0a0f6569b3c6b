-- Issue 6: review routing. Events keep the URIs their media came from (never the media), so a
-- review task can point at them; review items know their stratum (for the per-stratum daily
-- budget) and expire.
ALTER TABLE events ADD COLUMN media_uris JSONB;
ALTER TABLE review_items ADD COLUMN stratum TEXT NOT NULL DEFAULT '';
CREATE INDEX review_items_stratum ON review_items (stratum, created_at);
CREATE INDEX review_items_state ON review_items (state, created_at);
