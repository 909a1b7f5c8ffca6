-- A claim no longer changes a delivery's status: it sets lease_until (and
-- counts the attempt), and the row stays 'pending' until its outcome. A
-- row is being sent while its lease runs. The claim then writes no index
-- entry — a HOT update, in place on its page — where changing status
-- wrote a new entry into each of the table's four indexes (BENCHMARKS.md,
-- "Send"). Rows marked 'sending' by an earlier version are still read as
-- leased until their lease runs out, then taken over.
--
-- The index keeps its name and its condition; its key is (issue_id, id),
-- so a claim walks one issue's unfinished rows in id order whatever their
-- status.
DROP INDEX deliveries_unfinished;
CREATE INDEX deliveries_unfinished ON deliveries (issue_id, id) WHERE status IN ('pending', 'sending');
-- Room on each page for the claim's new row version, so the update stays
-- HOT. New pages only; a table that is mostly sent rows loses nothing.
ALTER TABLE deliveries SET (fillfactor = 50);
