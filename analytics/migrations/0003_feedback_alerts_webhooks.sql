-- 0003: quality feedback, budget alerts that fired, and webhook delivery attempts.

-- POST /v1/feedback (via tollway.feedback.v1): one quality score per call and key; a later score
-- from the same key replaces the earlier one (ReplacingMergeTree by ts: read with argMax or FINAL).
CREATE TABLE IF NOT EXISTS {db}.feedback
(
    event_id UUID,
    score Float32,
    label LowCardinality(String),
    comment String,
    ts DateTime64(3, 'UTC'),
    key_id LowCardinality(String),
    user String,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    CONSTRAINT score_in_unit_interval CHECK score >= 0 AND score <= 1
)
ENGINE = ReplacingMergeTree(ts)
PARTITION BY toYYYYMM(ts)
ORDER BY (event_id, key_id);

-- A budget threshold that fired: at most one row per budget, period and threshold (the worker
-- fires each once; ReplacingMergeTree is the backstop for a redelivered alert).
CREATE TABLE IF NOT EXISTS {db}.budget_alerts
(
    alert_id String,
    budget_id LowCardinality(String),
    period_start DateTime('UTC'),
    period_end Nullable(DateTime('UTC')),
    threshold Float32,
    kind LowCardinality(String),
    spend_usd Decimal(38, 9),
    limit_usd Decimal(38, 9),
    action LowCardinality(String),
    scope Map(String, String),
    fired_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(fired_at)
PARTITION BY toYYYYMM(period_start)
ORDER BY (budget_id, period_start, threshold);

-- Every attempt to deliver a webhook (Standard Webhooks `webhook-id` = webhook_id), including
-- the final dead-letter record (`outcome = 'dead'`).
CREATE TABLE IF NOT EXISTS {db}.webhook_deliveries
(
    webhook_id String,
    url String,
    event_type LowCardinality(String),
    attempt UInt16,
    outcome LowCardinality(String),
    http_status UInt16,
    error String,
    duration_ms UInt32,
    payload String,
    ts DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (webhook_id, attempt, ts)
TTL toDateTime(ts) + INTERVAL 90 DAY;
