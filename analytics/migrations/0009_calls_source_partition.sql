-- 0009: which partition of tollway.calls.v1 each ledger row came from.
-- Budget spend is counted per source partition (each worker owns some partitions), so a worker
-- can rebuild exactly its own share of a budget's spend from the ledger. -1: unknown (rows
-- written before this column existed, or not through the worker).
ALTER TABLE {db}.calls ADD COLUMN IF NOT EXISTS source_partition Int32 DEFAULT -1 AFTER ingested_at;
