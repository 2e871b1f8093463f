-- 0011: two smaller daily rollups under `calls_daily`, for the cost explorer at 100M calls.
-- `calls_daily` keeps every rollup dimension, and route, key_id and status multiply its rows
-- (every key of a project, every status). Summing is cheap at any size, but merging t-digest
-- states costs microseconds a row, so a 90-day daily series with p95 latency over `calls_daily`
-- takes seconds at 100M calls. Fewer dimensions, far fewer rows:
--   calls_daily_by_task  day × business_line × project × task_type × environment × model ×
--                        provider: the drill-down (business line → project → task type → model)
--   calls_daily_by_line  day × business_line × environment × model × provider: whole-company
--                        views (spend per business line, daily series per model)
-- `analytics.queries` reads the smallest daily rollup that has every dimension a question
-- involves. Same columns and reading rules as `calls_daily` (sum(...) with GROUP BY, quantiles
-- with quantilesTDigestMerge). Backfilled from `calls_daily` (its states merge: cheaper than
-- reading the ledger), then fed by materialized views from `calls`. As for 0002, apply it
-- before writers start (tollway migrates at start-up, before its worker consumes); re-running
-- it after a crash is safe: it drops and rebuilds what it creates.

-- Ordered like `calls_daily`: a drill-down's filters are a prefix of the primary key.
DROP VIEW IF EXISTS {db}.calls_daily_by_task_mv;
DROP TABLE IF EXISTS {db}.calls_daily_by_task;

CREATE TABLE IF NOT EXISTS {db}.calls_daily_by_task
(
    day Date,
    business_line LowCardinality(String),
    project LowCardinality(String),
    task_type LowCardinality(String),
    environment LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
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
ORDER BY (business_line, project, task_type, day, environment, model, provider);

INSERT INTO {db}.calls_daily_by_task
SELECT
    day, business_line, project, task_type, environment, model, provider,
    sum(cost_usd) AS cost_usd,
    sum(calls) AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(errors) AS errors,
    sum(blocked) AS blocked,
    sum(downgraded) AS downgraded,
    sum(total_duration_ms) AS total_duration_ms,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(latency_ms_q) AS latency_ms_q,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(ttft_ms_q) AS ttft_ms_q
FROM {db}.calls_daily
GROUP BY day, business_line, project, task_type, environment, model, provider;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.calls_daily_by_task_mv TO {db}.calls_daily_by_task AS
SELECT
    toDate(ts) AS day,
    business_line, project, task_type, environment, model, provider,
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
GROUP BY day, business_line, project, task_type, environment, model, provider;

-- A few thousand rows at 100M calls (90 days).
DROP VIEW IF EXISTS {db}.calls_daily_by_line_mv;
DROP TABLE IF EXISTS {db}.calls_daily_by_line;

CREATE TABLE IF NOT EXISTS {db}.calls_daily_by_line
(
    day Date,
    business_line LowCardinality(String),
    environment LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
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
ORDER BY (business_line, day, environment, model, provider);

INSERT INTO {db}.calls_daily_by_line
SELECT
    day, business_line, environment, model, provider,
    sum(cost_usd) AS cost_usd,
    sum(calls) AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(errors) AS errors,
    sum(blocked) AS blocked,
    sum(downgraded) AS downgraded,
    sum(total_duration_ms) AS total_duration_ms,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(latency_ms_q) AS latency_ms_q,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(ttft_ms_q) AS ttft_ms_q
FROM {db}.calls_daily
GROUP BY day, business_line, environment, model, provider;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.calls_daily_by_line_mv TO {db}.calls_daily_by_line AS
SELECT
    toDate(ts) AS day,
    business_line, environment, model, provider,
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
GROUP BY day, business_line, environment, model, provider;
