-- A sign-up waiting for its confirmation link: the name and editions asked
-- for travel with it, so the confirmed one wins, and it is used once.
CREATE TABLE signups (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    name          TEXT,
    editions      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    confirmed_at  TEXT
);
CREATE INDEX signups_subscriber ON signups (subscriber_id);
CREATE INDEX signups_created_at ON signups (created_at);

-- The editor's login sessions: the cookie names a row and carries a secret
-- whose hash is kept here; logout deletes the row, and a changed editor
-- token (token_hash) ends every session.
CREATE TABLE editor_sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_hash TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
