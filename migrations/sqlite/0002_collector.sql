-- Collector state: where a source is fetched from after permanent
-- redirects, when it is next due, whether it is disabled; story clusters.
ALTER TABLE sources ADD COLUMN config_url TEXT;
ALTER TABLE sources ADD COLUMN next_fetch_at TEXT;
ALTER TABLE sources ADD COLUMN disabled_reason TEXT;
ALTER TABLE stories ADD COLUMN cluster_id INTEGER;
CREATE INDEX stories_cluster ON stories (cluster_id);
