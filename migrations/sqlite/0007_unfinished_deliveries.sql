-- One partial index over the deliveries still to do (pending, or leased
-- by a sender) replaces deliveries_due and deliveries_claim. Claims walk it
-- in id order; the daemon and `send` look for what is due in it. A row
-- that is sent or failed leaves it, so it stays as small as the work left
-- rather than growing with every issue ever sent, and recording "sent" no
-- longer writes an entry into two indexes that nothing reads. Queries that
-- should use it repeat its condition literally (SQLite's rule for partial
-- indexes).
DROP INDEX deliveries_due;
DROP INDEX deliveries_claim;
CREATE INDEX deliveries_unfinished ON deliveries (issue_id, status, id) WHERE status IN ('pending', 'sending');
