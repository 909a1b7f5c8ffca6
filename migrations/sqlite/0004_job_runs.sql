-- Each scheduled slot (the collect schedule's or an edition's) is decided
-- once, by whichever process inserts its row first.
CREATE TABLE job_runs (
    job        TEXT NOT NULL,
    slot_at    TEXT NOT NULL,
    started_at TEXT NOT NULL,
    outcome    TEXT,
    PRIMARY KEY (job, slot_at)
);
