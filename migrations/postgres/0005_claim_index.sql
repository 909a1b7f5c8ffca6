-- Claims walk pending rows in id order; with this index a claim costs the
-- same at the end of a 100,000-subscriber issue as at its start.
CREATE INDEX deliveries_claim ON deliveries (issue_id, status, id);
