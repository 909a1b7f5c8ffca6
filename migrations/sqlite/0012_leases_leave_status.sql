-- A claim no longer changes a delivery's status: it sets lease_until (and
-- counts the attempt), and the row stays 'pending' until its outcome. A
-- row is being sent while its lease runs. The claim then writes no index
-- entry (PostgreSQL: a HOT update), where changing status rewrote the row
-- in every index. Rows marked 'sending' by an earlier version are still
-- read as leased until their lease runs out, then taken over.
--
-- The index keeps its name and its condition; its key is (issue_id, id),
-- so a claim walks one issue's unfinished rows in id order whatever their
-- status.
DROP INDEX deliveries_unfinished;
CREATE INDEX deliveries_unfinished ON deliveries (issue_id, id) WHERE status IN ('pending', 'sending');
