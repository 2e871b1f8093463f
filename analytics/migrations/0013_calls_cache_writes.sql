-- 0013: prompt tokens written to a provider's prompt cache (Anthropic's
-- `cache_creation_input_tokens`), part of `input_tokens` as the cache reads are, and billed at
-- the model's `cache_write_per_mtok`: with it, a row's cost follows from its own columns.
-- Rows written before this column existed read 0. Not in the rollups (yet).
ALTER TABLE {db}.calls ADD COLUMN IF NOT EXISTS cache_write_tokens UInt32 DEFAULT 0 CODEC(T64, ZSTD(3)) AFTER cached_input_tokens;
