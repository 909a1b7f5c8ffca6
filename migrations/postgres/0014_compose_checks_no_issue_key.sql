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

-- One function for both owners of a delivery, its argument the column
-- that points at the deleted row; migration 0013's trigger for readers
-- moves to it.
CREATE FUNCTION deliveries_leave_with_their_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DELETE FROM deliveries WHERE %I = $1', TG_ARGV[0]) USING OLD.id;
    RETURN OLD;
END
$$;

CREATE TRIGGER issues_take_their_deliveries
    AFTER DELETE ON issues
    FOR EACH ROW EXECUTE FUNCTION deliveries_leave_with_their_owner('issue_id');

DROP TRIGGER subscribers_take_their_deliveries ON subscribers;
DROP FUNCTION deliveries_leave_with_their_reader();
CREATE TRIGGER subscribers_take_their_deliveries
    AFTER DELETE ON subscribers
    FOR EACH ROW EXECUTE FUNCTION deliveries_leave_with_their_owner('subscriber_id');
