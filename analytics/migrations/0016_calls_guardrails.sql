-- 0016: the guardrails that matched a call's prompt (tollway.yaml `guardrails`), by id,
-- whatever they did: a `block` also makes the row `blocked` with error_code
-- 'guardrail_blocked'; a `redact` or `flag` leaves the call as served. Rows written before
-- this column existed read [].
ALTER TABLE {db}.calls ADD COLUMN IF NOT EXISTS guardrails Array(LowCardinality(String)) CODEC(ZSTD(3)) AFTER budget_ids;
