-- 0015: every alert on tollway.budget-alerts.v1 as the worker's webhook dispatcher consumed it
-- (a budget's, a proxy's circuit opening, a spend anomaly), whether or not a webhook subscribes:
-- what the dashboard and SQL show of them. One row per alert id: a redelivered alert, or the
-- same alert from several replicas, replaces itself (read with FINAL). `data` is the alert as
-- on the topic, JSON.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id String,
    type LowCardinality(String),
    fired_at DateTime64(3, 'UTC'),
    summary String,
    data String,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(fired_at)
ORDER BY alert_id;
