"""Every SQL block of docs/finops.md runs through the read-only guard and returns rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics.ledger import Ledger
from analytics.migrate import split_statements
from analytics.sql_guard import vet_readonly_sql
from analytics.store import ChdbStore
from tests.analytics.seed import seeded_events

DOC = Path(__file__).resolve().parents[2] / "docs" / "finops.md"
BLOCKS = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_the_doc_has_sql_examples() -> None:
    assert len(BLOCKS) >= 10


@pytest.fixture
async def recent_ledger(ledger_store: ChdbStore) -> ChdbStore:
    """The seeded calls moved to the last minute (so "this month" and "last day" hold them)."""
    now = datetime.now(UTC)
    events = [
        e.model_copy(update={"ts": now - timedelta(seconds=1 + i)})
        for i, e in enumerate(seeded_events())
    ]
    await Ledger(ledger_store).write(events)
    await ledger_store.insert_rows(
        "feedback",
        [
            {
                "event_id": str(e.event_id),
                "score": 0.5 + (i % 5) / 10,
                "label": "",
                "ts": now.strftime("%Y-%m-%d %H:%M:%S"),
                "key_id": e.key_id,
            }
            for i, e in enumerate(events[:10])
        ],
    )
    return ledger_store


@pytest.mark.parametrize("block", BLOCKS, ids=[b.splitlines()[0][3:40] for b in BLOCKS])
async def test_doc_sql_returns_rows(recent_ledger: ChdbStore, block: str) -> None:
    for statement in split_statements(block):
        vetted = await vet_readonly_sql(recent_ledger, statement)
        result = await recent_ledger.query(vetted, readonly=True)
        assert result.rows, statement
