-- Issue 4: an evaluation row carries its test's p-value, the Benjamini-Hochberg adjusted p-value
-- over the whole evaluation, an effect size and the decision (1 drift/significant, 0 not, NULL
-- when no claim is made).
ALTER TABLE evaluations ADD COLUMN p_value REAL;
ALTER TABLE evaluations ADD COLUMN p_adjusted REAL;
ALTER TABLE evaluations ADD COLUMN effect REAL;
ALTER TABLE evaluations ADD COLUMN decision INTEGER;
