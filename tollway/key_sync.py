"""Keep the key registry of every process that checks keys — each proxy replica and each
analytics server — in step with the compacted `tollway.keys.v1` topic.

A key created, rotated or revoked through any replica's admin API is known to all of them
within the consumer's poll interval (tollway/record_sync.py does the following and the snapshot). Records
hold hashes and metadata only, never a secret.

A record leaves out its unset fields, so a replica of an older version, which refuses fields it
does not know, still reads every key that uses none of the newer ones — above all a revocation.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from tollway.auth import KeyRegistry
from tollway.config.schema import KeyConfig
from tollway.record_sync import RecordSync


class KeySync(RecordSync[KeyConfig]):
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        registry: KeyRegistry,
        snapshot: Path | None = None,
        poll_ms: int = 200,
    ) -> None:
        # the snapshot holds the topic's records only: the file's keys come from the file, so
        # a key deleted from it is not brought back by a restart
        super().__init__(
            bootstrap,
            topic,
            KeyConfig,
            key_of=lambda key: key.id,
            apply=registry.apply,
            held=registry.topic_records,
            snapshot=snapshot,
            poll_ms=poll_ms,
        )
        self.registry = registry

    def encode(self, record: KeyConfig) -> bytes:
        return key_record(record)


def key_record(key: KeyConfig) -> bytes:
    """A key as the topic holds it: its unset (None) fields left out."""
    return orjson.dumps(key.model_dump(mode="json", exclude_none=True))
