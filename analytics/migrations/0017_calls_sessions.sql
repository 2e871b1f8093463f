-- 0017: the session a call belongs to (`x-tollway-session-id`, or a coding tool's own session
-- header: an agent's run, a conversation), so what one costs end to end can be summed
-- (GET /v1/analytics/sessions). Rows written before this column existed, and calls that named
-- no session, read ''. No skip index: looking one session up reads this column alone (0.4 bytes
-- a call), which a bloom filter did not make faster at 100M calls (benchmarks/analytics_queries).
ALTER TABLE {db}.calls ADD COLUMN IF NOT EXISTS session_id String CODEC(ZSTD(3)) AFTER tags;
