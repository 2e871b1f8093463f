-- 0010: compression codecs for the ledger's bulky columns (issue #5: ≤ 40 bytes per call).
-- A codec change is metadata only: new parts are written with it at once, existing parts when
-- they are next merged (OPTIMIZE TABLE {db}.calls FINAL rewrites them now). No data changes,
-- so the statements are safe to re-run. Measured on 10M synthetic calls
-- (benchmarks/analytics_queries.py): 49.7 → 34.0 compressed bytes per call as inserted, 35.1 →
-- 32.5 once every part is merged; per column, merged, before → after:
--   ts 3.1 → 2.3 (Delta: successive times within a business line × project × task type differ
--     by little); duration_ms 2.0 → 1.5, input_tokens 2.1 → 1.5, output_tokens 1.8 → 1.3,
--     ttft_ms 1.8 → 1.4, cost_usd 3.3 → 3.0 (T64 drops the unused high bits of each block);
--   user 2.4 → 2.3, attempts 2.3 → 2.2 (ZSTD); free text (route_reason, tags, content) is empty
--   in the benchmark but ZSTD suits it best when present.
-- event_id keeps LZ4 (15.3 bytes): 74 of a UUIDv7's 128 bits are random; ZSTD(9) saves 0.4 of
-- them, ZSTD(19) 2.2 but is far too slow for merges.

ALTER TABLE {db}.calls MODIFY COLUMN ts CODEC(Delta, ZSTD(3));
ALTER TABLE {db}.calls MODIFY COLUMN duration_ms CODEC(T64, ZSTD(3));
ALTER TABLE {db}.calls MODIFY COLUMN ttft_ms CODEC(T64, ZSTD(3));
ALTER TABLE {db}.calls MODIFY COLUMN input_tokens CODEC(T64, ZSTD(3));
ALTER TABLE {db}.calls MODIFY COLUMN output_tokens CODEC(T64, ZSTD(3));
ALTER TABLE {db}.calls MODIFY COLUMN cached_input_tokens CODEC(T64, ZSTD(3));
ALTER TABLE {db}.calls MODIFY COLUMN reasoning_tokens CODEC(T64, ZSTD(3));
ALTER TABLE {db}.calls MODIFY COLUMN cost_usd CODEC(T64, ZSTD(3));
ALTER TABLE {db}.calls MODIFY COLUMN user CODEC(ZSTD(3));
ALTER TABLE {db}.calls MODIFY COLUMN tags CODEC(ZSTD(3));
ALTER TABLE {db}.calls MODIFY COLUMN route_reason CODEC(ZSTD(3));
ALTER TABLE {db}.calls MODIFY COLUMN attempts CODEC(ZSTD(3));
ALTER TABLE {db}.calls MODIFY COLUMN budget_ids CODEC(ZSTD(3));
ALTER TABLE {db}.calls MODIFY COLUMN request_content CODEC(ZSTD(3));
ALTER TABLE {db}.calls MODIFY COLUMN response_content CODEC(ZSTD(3));
