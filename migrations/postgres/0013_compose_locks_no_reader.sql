-- The compose wrote one delivery per reader, and the foreign key to
-- subscribers checked each one by locking the reader's row: a write to
-- every subscriber page, a WAL record per reader (15 MB of 117 MB for a
-- 100,000-reader send), and a sixth of a loopback send's time spent
-- before the first message (BENCHMARKS.md, "Send").
--
-- What the key did, done otherwise: a reader deleted takes their
-- deliveries with them (this trigger, as ON DELETE CASCADE did), and an
-- erasure never runs beside a compose (the store takes an advisory lock:
-- shared in the compose, exclusive in the erasure), so a compose cannot
-- write a delivery for a reader an erasure has just deleted.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_subscriber_id_fkey;

CREATE FUNCTION deliveries_leave_with_their_reader() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM deliveries WHERE subscriber_id = OLD.id;
    RETURN OLD;
END
$$;

CREATE TRIGGER subscribers_take_their_deliveries
    AFTER DELETE ON subscribers
    FOR EACH ROW EXECUTE FUNCTION deliveries_leave_with_their_reader();
