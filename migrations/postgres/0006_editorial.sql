-- An editor's choices for the next issue of an edition: pinned and excluded
-- stories, and an intro note. They are frozen into that issue when it is
-- composed, and removed then.
CREATE TABLE editorial_picks (
    edition    TEXT NOT NULL,
    story_id   BIGINT NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    action     TEXT NOT NULL CHECK (action IN ('pin', 'exclude')),
    position   BIGINT,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (edition, story_id)
);

CREATE TABLE editorial_notes (
    edition    TEXT PRIMARY KEY,
    note       TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
