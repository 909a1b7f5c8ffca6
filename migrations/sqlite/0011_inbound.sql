-- What comes back: bounces, complaints, unsubscribe mails, auto-replies and
-- provider events, each tied to the delivery whose signed token it carried.
-- `message_key` (the channel and a hash of the message, or the provider's
-- event id) is unique: a message handed over twice (a restart before the
-- reply, a mailbox move that failed) is recorded once and acted on once.
CREATE TABLE inbound_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    message_key   TEXT NOT NULL UNIQUE,
    channel       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    delivery_id   INTEGER REFERENCES deliveries (id) ON DELETE SET NULL,
    issue_id      INTEGER REFERENCES issues (id) ON DELETE SET NULL,
    subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    status_code   TEXT,
    detail        TEXT NOT NULL,
    -- The message itself, kept only when nothing could be made of it
    -- (quarantine), for the operator to look at.
    raw           BLOB,
    received_at   TEXT NOT NULL
);
CREATE INDEX inbound_events_subscriber ON inbound_events (subscriber_id, received_at);
CREATE INDEX inbound_events_issue ON inbound_events (issue_id, kind);
CREATE INDEX inbound_events_delivery ON inbound_events (delivery_id);

-- Why a subscriber is no longer mailed, and since when.
ALTER TABLE subscribers ADD COLUMN status_reason TEXT;
ALTER TABLE subscribers ADD COLUMN status_changed_at TEXT;
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id, id);
