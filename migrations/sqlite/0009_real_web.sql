-- Reading the real web: what the recovering parser repaired in a source's
-- last fetch (a warning, not an error), and each story's article text
-- when full-text extraction is on: fetched once, its outcome recorded.
ALTER TABLE sources ADD COLUMN last_warning TEXT;
ALTER TABLE stories ADD COLUMN content TEXT;
ALTER TABLE stories ADD COLUMN content_status TEXT;
