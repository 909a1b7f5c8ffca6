-- The compose writes an issue and its deliveries in one transaction, and
-- the foreign key to issues checked every delivery against that issue
-- row: a lookup and a row lock per reader, nearly a third of a large
-- compose's time (BENCHMARKS.md, "Send"). Nothing else writes a delivery,
-- and the issue is not visible to anyone else until the compose commits,
-- so the check could never fail.
--
-- What the key did otherwise is kept: an issue deleted (by hand; tidings
-- never deletes one) takes its deliveries with it, as ON DELETE CASCADE did.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_issue_id_fkey;

CREATE FUNCTION deliveries_leave_with_their_issue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM deliveries WHERE issue_id = OLD.id;
    RETURN OLD;
END
$$;

CREATE TRIGGER issues_take_their_deliveries
    AFTER DELETE ON issues
    FOR EACH ROW EXECUTE FUNCTION deliveries_leave_with_their_issue();
