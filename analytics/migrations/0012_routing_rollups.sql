-- 0012: hourly and daily rollups by route × task_type × model, for routing statistics.
-- `analytics.routing_stats` (the proxy's published stats every minute, the Routing page, the
-- recommendations) asked the raw ledger for calls, success rate, cost, tokens and latency/TTFT
-- quantiles per route × task type × model over a sliding window: 4–5 s over 30 days at 100M
-- calls. The existing rollups keep those dimensions, but also business line, project, key and
-- status, so merging their t-digest states over a month is as slow as the raw rows. These keep
-- only what routing asks about, a few dozen rows per hour or day:
--   calls_hourly_by_route  hour × route × task_type × model: the window's partial days
--   calls_daily_by_route   day × route × task_type × model: the window's whole days
-- A window is answered from whole days of the daily rollup, whole hours of the hourly one at
-- its ends and raw rows for the partial hours at its edges (analytics/routing_windows.py), so
-- the figures stay those of the exact window (the proxy's published stats); the routing API
-- widens its window to whole hours and reads the rollups only. Provider is left out:
-- recommendations compare models per task type, and routing keys are route|task_type|model.
-- Like the other rollups (and `rated_calls` below) they have no TTL: they outlive ledger rows
-- deleted by `logging.ledger_retention_days`.
-- Columns: additive SimpleAggregateFunction(sum) (read with sum(...) and GROUP BY), `ok_calls`
-- for the success rate, and t-digest states as in the other rollups (read with
-- quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_ms_q)[i]).
-- Backfill: from `calls_hourly` and `calls_daily` (their states merge; both hold every call
-- since 0002, so the new rollups start complete, as 0011's did), then fed by materialized
-- views from `calls`. As for 0002 and 0011, apply it before writers start (tollway migrates at
-- start-up, before its worker consumes); re-running it after a crash is safe: it drops and
-- rebuilds what it creates, so the backfill never counts a call twice.

DROP VIEW IF EXISTS {db}.calls_hourly_by_route_mv;
DROP TABLE IF EXISTS {db}.calls_hourly_by_route;

-- Ordered by time first: every read is a time range over all routes.
CREATE TABLE IF NOT EXISTS {db}.calls_hourly_by_route
(
    hour DateTime('UTC'),
    route LowCardinality(String),
    task_type LowCardinality(String),
    model LowCardinality(String),
    calls SimpleAggregateFunction(sum, UInt64),
    ok_calls SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 9)),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    latency_ms_q AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt32),
    ttft_ms_q AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Nullable(UInt32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, route, task_type, model);

INSERT INTO {db}.calls_hourly_by_route
SELECT
    hour, route, task_type, model,
    sum(calls) AS calls,
    sumIf(h.calls, h.status = 'ok') AS ok_calls,
    sum(cost_usd) AS cost_usd,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(latency_ms_q) AS latency_ms_q,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(ttft_ms_q) AS ttft_ms_q
FROM {db}.calls_hourly AS h
GROUP BY hour, route, task_type, model;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.calls_hourly_by_route_mv TO {db}.calls_hourly_by_route AS
SELECT
    toStartOfHour(ts) AS hour,
    route, task_type, model,
    count() AS calls,
    countIf(status = 'ok') AS ok_calls,
    sum(cost_usd) AS cost_usd,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(duration_ms) AS latency_ms_q,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(ttft_ms) AS ttft_ms_q
FROM {db}.calls
GROUP BY hour, route, task_type, model;

DROP VIEW IF EXISTS {db}.calls_daily_by_route_mv;
DROP TABLE IF EXISTS {db}.calls_daily_by_route;

CREATE TABLE IF NOT EXISTS {db}.calls_daily_by_route
(
    day Date,
    route LowCardinality(String),
    task_type LowCardinality(String),
    model LowCardinality(String),
    calls SimpleAggregateFunction(sum, UInt64),
    ok_calls SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 9)),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    latency_ms_q AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt32),
    ttft_ms_q AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Nullable(UInt32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, route, task_type, model);

INSERT INTO {db}.calls_daily_by_route
SELECT
    day, route, task_type, model,
    sum(calls) AS calls,
    sumIf(d.calls, d.status = 'ok') AS ok_calls,
    sum(cost_usd) AS cost_usd,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(latency_ms_q) AS latency_ms_q,
    quantilesTDigestMergeState(0.5, 0.9, 0.95, 0.99)(ttft_ms_q) AS ttft_ms_q
FROM {db}.calls_daily AS d
GROUP BY day, route, task_type, model;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.calls_daily_by_route_mv TO {db}.calls_daily_by_route AS
SELECT
    toDate(ts) AS day,
    route, task_type, model,
    count() AS calls,
    countIf(status = 'ok') AS ok_calls,
    sum(cost_usd) AS cost_usd,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(duration_ms) AS latency_ms_q,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(ttft_ms) AS ttft_ms_q
FROM {db}.calls
GROUP BY day, route, task_type, model;

-- The route, task type and model of every call that has feedback (one row per rated call;
-- ReplacingMergeTree, read with GROUP BY event_id). Quality scores are per call, so routing
-- statistics join `feedback` to the calls it rates; looking those calls up in `calls` by
-- event_id reads every event_id of the window (the ledger is ordered by attribution and time,
-- and with a score on 1% of calls every granule holds a rated one): seconds over a month at
-- 100M calls. `analytics.routing_stats` adds the calls of newly rated events here before each
-- computation (a handful since the last one, found through the ledger's bloom filter on
-- event_id) and joins the window's feedback to this table instead. Filled here from the ledger
-- once; a row never changes (a call's attribution is fixed), so re-adding one is harmless.
DROP TABLE IF EXISTS {db}.rated_calls;

CREATE TABLE IF NOT EXISTS {db}.rated_calls
(
    event_id UUID,
    ts DateTime64(3, 'UTC'),
    route LowCardinality(String),
    task_type LowCardinality(String),
    model LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, event_id);

INSERT INTO {db}.rated_calls
SELECT event_id, ts, route, task_type, model
FROM {db}.calls
WHERE event_id IN (SELECT event_id FROM {db}.feedback);
