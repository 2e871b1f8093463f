-- 0014: the audit trail (via tollway.audit.v1): every change made through the admin API and
-- every refused attempt at it, one row per event. A redelivered event has the same id and time,
-- so ReplacingMergeTree keeps one (read with FINAL). `details` is the change as JSON, never a
-- secret or a key's hash.
CREATE TABLE IF NOT EXISTS {db}.audit_log
(
    id UUID,
    ts DateTime64(3, 'UTC'),
    actor LowCardinality(String),
    actor_role LowCardinality(String),
    action LowCardinality(String),
    target String,
    details String,
    client String,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, id);
