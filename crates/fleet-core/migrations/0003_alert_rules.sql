-- The alert feed's rule filter lists the rules that raised alerts; the index keeps that a
-- scan of rule names instead of the whole alerts table.
CREATE INDEX alerts_rule ON alerts (rule);
