-- Issue 17: each modality's own answer (label and confidence, JSON), where the event carries
-- output.per_modality: the per-modality evaluation reads it. NULL for events without.
ALTER TABLE events ADD COLUMN per_modality TEXT;
