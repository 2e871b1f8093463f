"""POST /v1/analytics/sql: read-only SQL for finops and admin keys, JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from analytics.api import router
from analytics.ledger import Ledger
from analytics.store import ChdbStore
from tests.analytics.conftest import make_events
from tests.analytics.seed import finops_client
from tollway.auth import AuthError, KeyRegistry, PermissionDenied
from tollway.config.schema import KeyConfig
from tollway.ids import hash_key

ADMIN_KEY = "tw-admin-test"
FINOPS_KEY = "tw-finops-test"
DEV_KEY = "tw-dev-test"


def _app(store: ChdbStore) -> FastAPI:
    app = FastAPI()
    app.state.store = store
    app.state.keys = KeyRegistry(
        keys=[
            KeyConfig(id="k_finops", hash=hash_key(FINOPS_KEY), role="finops"),
            KeyConfig(id="k_dev", hash=hash_key(DEV_KEY), role="developer"),
        ],
        admin_key=ADMIN_KEY,
    )

    @app.exception_handler(AuthError)
    async def _unauthorized(request: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse({"error": {"type": exc.code, "message": str(exc)}}, status_code=401)

    @app.exception_handler(PermissionDenied)
    async def _forbidden(request: Request, exc: PermissionDenied) -> JSONResponse:
        return JSONResponse({"error": {"type": exc.code, "message": str(exc)}}, status_code=403)

    app.include_router(router)
    return app


@pytest.fixture
async def client(ledger_store: ChdbStore) -> AsyncIterator[httpx.AsyncClient]:
    await Ledger(ledger_store).write(make_events(12))
    async with finops_client(_app(ledger_store)) as client:
        yield client


async def _sql(client: httpx.AsyncClient, query: str, **extra: object) -> httpx.Response:
    return await client.post("/v1/analytics/sql", json={"query": query, **extra})


async def test_json_answer(client: httpx.AsyncClient) -> None:
    response = await _sql(
        client,
        "SELECT business_line, count() AS calls, sum(cost_usd) AS cost FROM calls"
        " GROUP BY business_line ORDER BY business_line -- trailing comment",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["columns"] == ["business_line", "calls", "cost"]
    assert body["types"][1] == "UInt64"
    assert body["rows"] == 3
    assert body["data"][0] == {"business_line": "marketing", "calls": 4, "cost": "0.002716054"}


async def test_csv_answer(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/analytics/sql",
        json={
            "query": "SELECT model, tags, count() AS n FROM calls GROUP BY model, tags"
            " ORDER BY model;"
        },
        headers={"Accept": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [
        ["model", "tags", "n"],
        ["gpt-4o", '{"team":"growth"}', "6"],
        ["gpt-4o-mini", '{"team":"growth"}', "6"],
    ]


async def test_admin_may_query_and_describe(client: httpx.AsyncClient) -> None:
    client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
    response = await _sql(client, "DESCRIBE TABLE calls")
    assert response.status_code == 200, response.text
    columns = {row["name"]: row["type"] for row in response.json()["data"]}
    assert columns["cost_usd"] == "Decimal(18, 9)"
    response = await _sql(client, "WITH c AS (SELECT * FROM calls) SELECT count() AS n FROM c")
    assert response.json()["data"] == [{"n": 12}]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("SELEC 1", "Syntax error"),
        ("SELECT nope FROM calls", "nope"),
        (
            "SELECT 2 ORDER BY a",
            "Unknown expression identifier `a`. In scope SELECT 2 ORDER BY a ASC:",
        ),
        ("SELECT 1; SELECT 2", "one statement per request"),
        ("SELECT 1;\nDROP TABLE calls", "one statement per request"),
        ("INSERT INTO calls (event_id) VALUES (generateUUIDv4())", "only SELECT"),
        ("DROP TABLE calls", "only SELECT"),
        ("SELECT count() FROM system.tables", "only tables of the"),
        ("SELECT 1 WHERE 1 IN (SELECT dummy FROM system.one)", "only tables of the"),
        ("SELECT 1 FROM calls WHERE 0 IN system.numbers", "only tables of the"),
        ("SELECT count() FROM INFORMATION_SCHEMA.TABLES", "only tables of the"),
        ("DESCRIBE TABLE system.tables", "only tables of the"),
        ("SELECT file('/etc/hostname')", "file() is not allowed"),
        ("SELECT * FROM file('/etc/hostname', 'LineAsString')", "file() is not allowed"),
        ("SELECT * FROM merge('system', '^one$')", "merge() is not allowed"),
        ("SELECT 1 INTO OUTFILE '/tmp/tollway-leak.txt'", "INTO OUTFILE"),
        ("SELECT 1 FORMAT CSV", "FORMAT"),
        ("SELECT 1 SETTINGS readonly = 0", "SETTINGS"),
        ("SELECT sum(cost_usd) FROM calls SETTINGS max_result_rows = 0", "SETTINGS"),
    ],
)
async def test_refused_with_a_clear_400(
    client: httpx.AsyncClient, query: str, fragment: str
) -> None:
    response = await _sql(client, query)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_query"
    assert fragment in error["message"]
    assert "\n" not in error["message"] and "Stack trace" not in error["message"]
    assert "formatQuery" not in error["message"]


@pytest.mark.parametrize(
    ("query", "data"),
    [
        ("SELECT sum(number) AS s FROM numbers(10)", [{"s": 45}]),
        ("SELECT a FROM (SELECT 1 AS a UNION ALL SELECT 2) ORDER BY a", [{"a": 1}, {"a": 2}]),
        ("SELECT 'table_name: system.tables' AS s", [{"s": "table_name: system.tables"}]),
        ("SELECT count() AS n FROM calls AS c JOIN calls AS d USING event_id", [{"n": 12}]),
        (
            "SELECT arrayJoin(attempts).provider AS p, count() AS n FROM calls GROUP BY p",
            [{"p": "openai", "n": 12}],
        ),
        (f"SELECT count() AS n FROM {'{db}'}.calls", [{"n": 12}]),
    ],
)
async def test_allowed_selects(
    client: httpx.AsyncClient, ledger_store: ChdbStore, query: str, data: list[object]
) -> None:
    response = await _sql(client, query.replace("{db}", ledger_store.database))
    assert response.status_code == 200, response.text
    assert response.json()["data"] == data


async def test_row_limit_fails_rather_than_truncates(client: httpx.AsyncClient) -> None:
    response = await _sql(client, "SELECT event_id FROM calls", max_rows=5)
    assert response.status_code == 400
    assert "Limit for result exceeded" in response.json()["error"]["message"]
    assert (await _sql(client, "SELECT 1", max_rows=100_001)).status_code == 422


async def test_unauthenticated_and_forbidden(client: httpx.AsyncClient) -> None:
    del client.headers["Authorization"]
    assert (await _sql(client, "SELECT 1")).status_code == 401
    client.headers["Authorization"] = "Bearer tw-unknown"
    assert (await _sql(client, "SELECT 1")).status_code == 401
    client.headers["Authorization"] = f"Bearer {DEV_KEY}"
    assert (await _sql(client, "SELECT 1")).status_code == 403
