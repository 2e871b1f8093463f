"""`GET /v1/analytics/keys`: every known key with its spend, calls and last hour of use from the
hourly rollup; keys the ledger names but the registry no longer knows are listed as `unknown`;
admins only; no hash in any answer."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from analytics.ledger import Ledger
from analytics.store import ChdbStore
from tests.analytics.conftest import make_event
from tests.analytics.seed import ADMIN_KEY, FINOPS_KEY, analytics_app


def _client(store: ChdbStore) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=analytics_app(store)),
        base_url="http://tollway.test",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )


async def test_each_key_with_its_spend_and_the_keys_nobody_knows_any_more(
    ledger_store: ChdbStore,
) -> None:
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    spent = [
        make_event(ts=now - timedelta(hours=2), key_id="k_dev", cost_usd=Decimal("0.25")),
        make_event(ts=now - timedelta(hours=5), key_id="k_dev", cost_usd=Decimal("0.5")),
        make_event(
            ts=now - timedelta(days=2),
            key_id="k_gone",
            business_line="support",
            project="helpdesk",
            cost_usd=Decimal("1.5"),
        ),
        make_event(ts=now - timedelta(days=40), key_id="k_finops", cost_usd=Decimal("9")),
    ]
    await Ledger(ledger_store).write(spent)
    async with _client(ledger_store) as client:
        answer = await client.get("/v1/analytics/keys")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        by_id = {k["id"]: k for k in body["keys"]}
        assert [k["id"] for k in body["keys"]] == ["k_gone", "k_dev", "k_finops", "k_viewer"]
        assert (by_id["k_dev"]["spend_usd"], by_id["k_dev"]["calls"]) == ("0.75", 2)
        last = (now - timedelta(hours=2)).replace(minute=0)
        assert by_id["k_dev"]["last_active"] == last.isoformat().replace("+00:00", "Z")
        assert by_id["k_dev"]["state"] == "active" and by_id["k_dev"]["role"] == "developer"
        gone = by_id["k_gone"]
        assert (gone["state"], gone["business_line"], gone["project"]) == (
            "unknown", "support", "helpdesk",
        )  # fmt: skip
        # older than the window: no spend, no last use
        assert (by_id["k_finops"]["spend_usd"], by_id["k_finops"]["last_active"]) == ("0", None)
        assert "hash" not in answer.text and "sha256" not in answer.text

        wider = (await client.get("/v1/analytics/keys", params={"days": 60})).json()
        assert {k["id"]: k["spend_usd"] for k in wider["keys"]}["k_finops"] == "9"

        table = await client.get("/v1/analytics/keys", headers={"accept": "text/csv"})
        rows = list(csv.DictReader(io.StringIO(table.text)))
        assert [(r["id"], r["spend_usd"]) for r in rows][:2] == [
            ("k_gone", "1.5"),
            ("k_dev", "0.75"),
        ]

        assert (await client.get("/v1/analytics/keys", params={"days": 0})).status_code == 400
        assert (await client.get("/v1/analytics/keys", params={"day": 3})).status_code == 400
        finops = {"Authorization": f"Bearer {FINOPS_KEY}"}
        assert (await client.get("/v1/analytics/keys", headers=finops)).status_code == 403
