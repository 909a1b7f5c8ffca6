-- Story cards drafted by a model, cached by what the model was sent (the
-- hash of the prompt), the model and the prompt's version: a second run
-- over the same stories sends nothing. A rejected answer is kept too (no
-- card, its reason), so garbage is not asked for again every run.
CREATE TABLE briefings (
    input_hash     TEXT NOT NULL,
    model          TEXT NOT NULL,
    prompt_version INTEGER NOT NULL,
    story_id       INTEGER REFERENCES stories (id) ON DELETE SET NULL,
    card           TEXT,
    rejection      TEXT,
    tokens_in      INTEGER NOT NULL DEFAULT 0,
    tokens_out     INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (input_hash, model, prompt_version)
);

-- An editor's text for a card field of a story in an edition: it wins over
-- every draft, and a later draft never overwrites it.
CREATE TABLE briefing_edits (
    edition    TEXT NOT NULL,
    story_id   INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    field      TEXT NOT NULL,
    text       TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (edition, story_id, field)
);

-- The intro a model drafted for an edition's next issue (from the hash of
-- what it was sent), and whether the editor accepted it.
CREATE TABLE briefing_intros (
    edition    TEXT PRIMARY KEY,
    draft      TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    accepted   INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
