-- Per-source story counts (`tidings sources`) without a full scan.
CREATE INDEX stories_source ON stories (source);
