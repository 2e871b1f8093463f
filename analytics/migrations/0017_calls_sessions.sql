-- 0017: the session a call belongs to (`x-tollway-session-id`: an agent's run, a conversation),
-- so what one costs end to end can be summed (GET /v1/analytics/sessions). Rows written
-- before this column existed, and calls sent without the header, read ''. A bloom filter
-- lets a lookup of one session skip the granules that cannot hold it.
ALTER TABLE {db}.calls ADD COLUMN IF NOT EXISTS session_id String CODEC(ZSTD(3)) AFTER tags;
ALTER TABLE {db}.calls ADD INDEX IF NOT EXISTS calls_session session_id TYPE bloom_filter(0.01) GRANULARITY 4;
