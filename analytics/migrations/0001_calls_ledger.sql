-- 0001: the ledger (`calls`), its hourly rollup and the parking lot for poison messages.
-- Statements end with `;` at the end of a line; `{db}` is the tollway database.
-- Every statement is idempotent (IF NOT EXISTS), so a re-run after a crash is harmless.

-- One row per CallEvent, columns named as the CallEvent fields (schema_version 1).
-- `attempts` is an array of named tuples: ARRAY JOIN it to analyse fallbacks per provider.
-- ReplacingMergeTree is a backstop only: the ledger writer already inserts each event_id once
-- (the hourly rollup counts what is inserted, so it relies on that check, not on merges).
CREATE TABLE IF NOT EXISTS {db}.calls
(
    schema_version UInt8 DEFAULT 1,
    event_id UUID,
    ts DateTime64(3, 'UTC'),
    duration_ms UInt32,
    ttft_ms Nullable(UInt32),
    business_line LowCardinality(String),
    project LowCardinality(String),
    task_type LowCardinality(String),
    user String,
    key_id LowCardinality(String),
    environment LowCardinality(String),
    tags Map(String, String),
    endpoint LowCardinality(String),
    requested_model LowCardinality(String),
    stream Bool,
    provider LowCardinality(String),
    model LowCardinality(String),
    route LowCardinality(String),
    route_reason String,
    attempts Array(Tuple(
        provider LowCardinality(String),
        model LowCardinality(String),
        status LowCardinality(String),
        error String,
        http_status UInt16,
        duration_ms UInt32)),
    fallback_used Bool,
    cache_hit Bool,
    input_tokens UInt32,
    output_tokens UInt32,
    cached_input_tokens UInt32,
    reasoning_tokens UInt32,
    usage_estimated Bool,
    cost_usd Decimal(18, 9),
    price_version LowCardinality(String),
    status LowCardinality(String),
    http_status UInt16,
    error_code LowCardinality(String),
    budget_action LowCardinality(String),
    budget_ids Array(String),
    request_content Nullable(String),
    response_content Nullable(String),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_event_id event_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (business_line, project, task_type, ts, event_id);

-- Hourly rollup. SummingMergeTree adds rows with the same key on merge, so always read it
-- with sum(...) and GROUP BY: `SELECT sum(cost_usd) FROM calls_hourly` equals the raw sum.
CREATE TABLE IF NOT EXISTS {db}.calls_hourly
(
    hour DateTime('UTC'),
    business_line LowCardinality(String),
    project LowCardinality(String),
    task_type LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
    key_id LowCardinality(String),
    status LowCardinality(String),
    cost_usd Decimal(38, 9),
    calls UInt64,
    input_tokens UInt64,
    output_tokens UInt64,
    cached_input_tokens UInt64,
    reasoning_tokens UInt64,
    errors UInt64,
    duration_ms UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, business_line, project, task_type, model, provider, key_id, status);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.calls_hourly_mv TO {db}.calls_hourly AS
SELECT
    toStartOfHour(ts) AS hour,
    business_line,
    project,
    task_type,
    model,
    provider,
    key_id,
    status,
    sum(cost_usd) AS cost_usd,
    count() AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    countIf(status = 'error') AS errors,
    sum(duration_ms) AS duration_ms
FROM {db}.calls
GROUP BY hour, business_line, project, task_type, model, provider, key_id, status;

-- Messages from tollway.calls.v1 that are not a CallEvent, kept verbatim with the reason.
CREATE TABLE IF NOT EXISTS {db}.rejected_events
(
    raw String,
    reason String,
    topic LowCardinality(String),
    `partition` Int32,
    `offset` Int64,
    received_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (topic, received_at);
