-- tidings schema, SQLite dialect. Times are RFC 3339 text in UTC, to the second.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE sources (
    name            TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    etag            TEXT,
    last_modified   TEXT,
    last_fetch_at   TEXT,
    last_success_at TEXT,
    last_status     TEXT,
    last_error      TEXT,
    error_count     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE stories (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    story_key    TEXT NOT NULL UNIQUE,
    source       TEXT NOT NULL,
    guid         TEXT,
    title        TEXT NOT NULL,
    link         TEXT NOT NULL,
    summary_html TEXT NOT NULL,
    summary_text TEXT NOT NULL,
    published_at TEXT NOT NULL,
    collected_at TEXT NOT NULL
);
CREATE INDEX stories_published_at ON stories (published_at);
CREATE INDEX stories_link ON stories (link);

CREATE TABLE story_tags (
    story_id INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    tag      TEXT NOT NULL,
    origin   TEXT NOT NULL,
    PRIMARY KEY (story_id, tag)
);

CREATE TABLE subscribers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    email      TEXT NOT NULL UNIQUE,
    name       TEXT,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE subscriptions (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    edition       TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, edition)
);

CREATE TABLE issues (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    edition     TEXT NOT NULL,
    slot_at     TEXT NOT NULL,
    composed_at TEXT NOT NULL,
    subject     TEXT NOT NULL,
    content     TEXT NOT NULL,
    UNIQUE (edition, slot_at)
);

CREATE TABLE issue_stories (
    issue_id INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    story_id INTEGER NOT NULL REFERENCES stories (id),
    score    REAL NOT NULL,
    PRIMARY KEY (issue_id, position)
);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    issue_id        INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    subscriber_id   INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    email           TEXT NOT NULL,
    name            TEXT,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,
    message_id      TEXT NOT NULL,
    last_reply      TEXT,
    sent_at         TEXT,
    UNIQUE (issue_id, subscriber_id)
);
CREATE INDEX deliveries_due ON deliveries (issue_id, status, next_attempt_at);
