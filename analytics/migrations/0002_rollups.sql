-- 0002: hourly and daily rollups with latency and TTFT quantile states.
-- Replaces 0001's `calls_hourly` (sums only, no environment/route, no blocked/downgraded counts)
-- and rebuilds both rollups from the ledger, so applying it on top of 0001 loses nothing.
-- Apply it before writers start (tollway applies migrations at start-up, before its worker
-- consumes): rows inserted into `calls` while this file runs may miss the rollups.
-- Re-running it after a crash is safe: it drops and rebuilds what it creates.

-- Raw time-range scans (edges, budgets, call lists) skip granules by ts, whatever the order key.
ALTER TABLE {db}.calls ADD INDEX IF NOT EXISTS idx_ts ts TYPE minmax GRANULARITY 1;

DROP VIEW IF EXISTS {db}.calls_hourly_mv;
DROP VIEW IF EXISTS {db}.calls_daily_mv;
DROP TABLE IF EXISTS {db}.calls_hourly;
DROP TABLE IF EXISTS {db}.calls_daily;

-- One row per hour × business_line × project × task_type × environment × model × provider ×
-- route × key_id × status (after merges). Additive columns are SimpleAggregateFunction(sum):
-- read them with sum(...) and GROUP BY, exactly as from the raw rows. Latency and TTFT are
-- t-digest states: read with quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_ms_q)[i].
-- Ordered like `calls` (drill-down by business line, project, task type uses the primary key);
-- a minmax index on the time column skips granules for short ranges inside a month partition.
CREATE TABLE IF NOT EXISTS {db}.calls_hourly
(
    hour DateTime('UTC'),
    business_line LowCardinality(String),
    project LowCardinality(String),
    task_type LowCardinality(String),
    environment LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
    route LowCardinality(String),
    key_id LowCardinality(String),
    status LowCardinality(String),
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 9)),
    calls SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    cached_input_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    blocked SimpleAggregateFunction(sum, UInt64),
    downgraded SimpleAggregateFunction(sum, UInt64),
    total_duration_ms SimpleAggregateFunction(sum, UInt64),
    latency_ms_q AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt32),
    ttft_ms_q AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Nullable(UInt32)),
    INDEX idx_hour hour TYPE minmax GRANULARITY 1
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (business_line, project, task_type, hour, environment, model, provider, route, key_id, status);

-- The same by UTC day (`day`), for month-scale ranges: ~24x fewer rows than hourly.
CREATE TABLE IF NOT EXISTS {db}.calls_daily
(
    day Date,
    business_line LowCardinality(String),
    project LowCardinality(String),
    task_type LowCardinality(String),
    environment LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
    route LowCardinality(String),
    key_id LowCardinality(String),
    status LowCardinality(String),
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 9)),
    calls SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    cached_input_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    blocked SimpleAggregateFunction(sum, UInt64),
    downgraded SimpleAggregateFunction(sum, UInt64),
    total_duration_ms SimpleAggregateFunction(sum, UInt64),
    latency_ms_q AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt32),
    ttft_ms_q AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Nullable(UInt32)),
    INDEX idx_day day TYPE minmax GRANULARITY 1
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (business_line, project, task_type, day, environment, model, provider, route, key_id, status);

-- Backfill from the ledger (empty on a new database), then keep both rollups current.
INSERT INTO {db}.calls_hourly
SELECT
    toStartOfHour(ts) AS hour,
    business_line, project, task_type, environment, model, provider, route, key_id, status,
    sum(cost_usd) AS cost_usd,
    count() AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    countIf(status = 'error') AS errors,
    countIf(status = 'blocked') AS blocked,
    countIf(budget_action = 'downgraded') AS downgraded,
    sum(duration_ms) AS total_duration_ms,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(duration_ms) AS latency_ms_q,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(ttft_ms) AS ttft_ms_q
FROM {db}.calls
GROUP BY hour, business_line, project, task_type, environment, model, provider, route, key_id, status;

INSERT INTO {db}.calls_daily
SELECT
    toDate(ts) AS day,
    business_line, project, task_type, environment, model, provider, route, key_id, status,
    sum(cost_usd) AS cost_usd,
    count() AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    countIf(status = 'error') AS errors,
    countIf(status = 'blocked') AS blocked,
    countIf(budget_action = 'downgraded') AS downgraded,
    sum(duration_ms) AS total_duration_ms,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(duration_ms) AS latency_ms_q,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(ttft_ms) AS ttft_ms_q
FROM {db}.calls
GROUP BY day, business_line, project, task_type, environment, model, provider, route, key_id, status;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.calls_hourly_mv TO {db}.calls_hourly AS
SELECT
    toStartOfHour(ts) AS hour,
    business_line, project, task_type, environment, model, provider, route, key_id, status,
    sum(cost_usd) AS cost_usd,
    count() AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    countIf(status = 'error') AS errors,
    countIf(status = 'blocked') AS blocked,
    countIf(budget_action = 'downgraded') AS downgraded,
    sum(duration_ms) AS total_duration_ms,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(duration_ms) AS latency_ms_q,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(ttft_ms) AS ttft_ms_q
FROM {db}.calls
GROUP BY hour, business_line, project, task_type, environment, model, provider, route, key_id, status;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.calls_daily_mv TO {db}.calls_daily AS
SELECT
    toDate(ts) AS day,
    business_line, project, task_type, environment, model, provider, route, key_id, status,
    sum(cost_usd) AS cost_usd,
    count() AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    countIf(status = 'error') AS errors,
    countIf(status = 'blocked') AS blocked,
    countIf(budget_action = 'downgraded') AS downgraded,
    sum(duration_ms) AS total_duration_ms,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(duration_ms) AS latency_ms_q,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(ttft_ms) AS ttft_ms_q
FROM {db}.calls
GROUP BY day, business_line, project, task_type, environment, model, provider, route, key_id, status;
