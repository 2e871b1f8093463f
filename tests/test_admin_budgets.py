"""Budgets set and deleted through `/v1/admin/budgets`: enforced by every replica, counted
from the start of their period, kept apart from the file's, and surviving an embedded
broker's restart. Real Tansu broker and chDB ledger."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pipeline import chat_status, eventually, role_runtime
from tollway.budget_overlay import BudgetOverlay, BudgetRecord
from tollway.config import load_config
from tollway.config.schema import BudgetConfig, BudgetScope, KeyConfig, TollwayConfig
from tollway.ids import hash_key, new_key_secret
from tollway.server import serving
from tollway.service import Runtime, build_app

ADMIN = "tw-test-admin-budgets"
AS_ADMIN = {"authorization": f"Bearer {ADMIN}"}
FILE_BUDGET = BudgetConfig(
    id="support-monthly", scope=BudgetScope(business_line="support"), limit_usd=Decimal(500)
)
PROMPT = [{"role": "user", "content": "Summarise the quarterly numbers for the board."}]


def _record(budget: BudgetConfig | None, budget_id: str = "") -> BudgetRecord:
    return BudgetRecord(
        id=budget.id if budget else budget_id,
        budget=budget,
        updated_at=datetime.now(UTC),
        updated_by="admin",
    )


def _file() -> TollwayConfig:
    return load_config(None).model_copy(update={"budgets": [FILE_BUDGET]})


# --- the overlay's rules (pure) ---------------------------------------------------------------


def test_the_apis_budgets_join_the_files_and_win_where_both_name_one() -> None:
    overlay = BudgetOverlay()
    file = _file()
    assert overlay.merged(file) is file

    team = BudgetConfig(id="team-a", scope=BudgetScope(project="seo"), limit_usd=Decimal(20))
    overlay.apply(_record(team))
    assert [b.id for b in overlay.merged(file).budgets] == ["support-monthly", "team-a"]

    raised = FILE_BUDGET.model_copy(update={"limit_usd": Decimal(900)})
    overlay.apply(_record(raised))
    merged = {b.id: b for b in overlay.merged(file).budgets}
    assert merged["support-monthly"].limit_usd == Decimal(900)

    overlay.apply(_record(None, "team-a"))
    overlay.apply(_record(None, "support-monthly"))  # the file's own comes back
    assert overlay.merged(file).budgets == [FILE_BUDGET]


def test_an_api_budget_that_no_longer_fits_the_file_is_left_out() -> None:
    overlay = BudgetOverlay()
    overlay.apply(
        _record(BudgetConfig(id="b", scope=BudgetScope(model="gpt-4o"), limit_usd=Decimal(1)))
    )
    file = _file()
    assert [b.id for b in overlay.merged(file).budgets] == ["support-monthly", "b"]
    without_gpt4o = file.model_copy(
        update={
            "models": [m for m in file.models if m.name != "gpt-4o"],
            "routes": [],
            "keys": [],
        }
    )
    assert [b.id for b in overlay.merged(without_gpt4o).budgets] == ["support-monthly"]


# --- through the API, across replicas ---------------------------------------------------------


def _runtime(
    bootstrap: str,
    namespace: str,
    data_dir: Path,
    roles: set[str],
    keys: list[KeyConfig],
    store: object | None = None,
    snapshot: bool = False,
) -> Runtime:
    return role_runtime(
        bootstrap, namespace, data_dir, roles, config=_file(), store=store, admin_key=ADMIN,
        extra_keys=keys, snapshot_dir=data_dir if snapshot else None,
    )  # fmt: skip


async def _status(base: str, secret: str) -> int:
    return await chat_status(base, secret, "gpt-4o", messages=PROMPT)


@pytest.mark.integration
async def test_a_budget_set_through_the_api_blocks_on_every_replica_until_deleted(
    kafka_bootstrap: str, namespace: str, store: object, tmp_path: Path
) -> None:
    secret = new_key_secret()
    key = KeyConfig(id="k_team", hash=hash_key(secret), business_line="support", project="helpdesk")
    everything = _runtime(
        kafka_bootstrap, namespace, tmp_path / "a", {"proxy", "worker", "analytics"}, [key], store
    )
    proxy_only = _runtime(kafka_bootstrap, namespace, tmp_path / "b", {"proxy"}, [key])
    async with (
        serving(build_app(everything)) as a,
        serving(build_app(proxy_only)) as b,
        httpx.AsyncClient() as http,
    ):
        # spend before any budget: a budget set mid-period counts it
        for _ in range(3):
            assert await _status(b, secret) == 200

        budget = {"scope": {"key_id": "k_team"}, "limit_usd": "0.0001", "action": "block"}
        created = await http.put(f"{a}/v1/admin/budgets/team-cap", headers=AS_ADMIN, json=budget)
        assert created.status_code == 201, created.text
        assert created.json()["source"] == "api"
        assert created.json()["updated_by"] == "admin"

        # the worker counts the spend since the period's start; both proxies block the key
        assert await eventually(lambda: _status(b, secret), 429) == 429
        assert await eventually(lambda: _status(a, secret), 429) == 429

        listed = (await http.get(f"{b}/v1/admin/budgets", headers=AS_ADMIN)).json()["budgets"]
        assert {(v["id"], v["source"]) for v in listed} == {
            ("support-monthly", "file"),
            ("team-cap", "api"),
        }
        status = (await http.get(f"{a}/v1/analytics/budgets", headers=AS_ADMIN)).json()
        team = next(s for s in status["budgets"] if s["id"] == "team-cap")
        assert {s["id"]: s["source"] for s in status["budgets"]} == {
            "support-monthly": "file",
            "team-cap": "api",
        }
        assert Decimal(str(team["spend_usd"])) > Decimal("0.0001")

        raised = {**budget, "limit_usd": "1000"}
        replaced = await http.put(f"{b}/v1/admin/budgets/team-cap", headers=AS_ADMIN, json=raised)
        assert replaced.status_code == 200
        assert await eventually(lambda: _status(a, secret), 200) == 200

        await http.put(f"{a}/v1/admin/budgets/team-cap", headers=AS_ADMIN, json=budget)
        assert await eventually(lambda: _status(b, secret), 429) == 429
        deleted = await http.delete(f"{a}/v1/admin/budgets/team-cap", headers=AS_ADMIN)
        assert deleted.status_code == 200 and deleted.json()["id"] == "team-cap"
        assert await eventually(lambda: _status(b, secret), 200) == 200
        assert (
            await http.get(f"{b}/v1/admin/budgets/team-cap", headers=AS_ADMIN)
        ).status_code == 404


@pytest.mark.integration
async def test_bad_budget_changes_are_clear_4xx(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    secret = new_key_secret()
    key = KeyConfig(id="k_dev", hash=hash_key(secret), business_line="support")
    async with (
        serving(build_app(_runtime(kafka_bootstrap, namespace, tmp_path, {"proxy"}, [key]))) as a,
        httpx.AsyncClient() as http,
    ):
        url = f"{a}/v1/admin/budgets"
        ok = {"scope": {"business_line": "support"}, "limit_usd": 10}
        cases: list[tuple[str, str, dict[str, Any] | None, dict[str, str], int, str]] = [
            ("PUT", "/support-monthly", ok, AS_ADMIN, 409, "tollway.yaml"),
            ("DELETE", "/support-monthly", None, AS_ADMIN, 409, "tollway.yaml"),
            ("DELETE", "/nobody", None, AS_ADMIN, 404, "nobody"),
            ("GET", "/nobody", None, AS_ADMIN, 404, "nobody"),
            ("PUT", "/x", {**ok, "scope": {"business_line": "nope"}}, AS_ADMIN, 400, "nope"),
            ("PUT", "/x", {**ok, "downgrade_to": "gpt-9"}, AS_ADMIN, 400, "gpt-9"),
            ("PUT", "/x", {**ok, "limit_usd": -1}, AS_ADMIN, 400, "limit_usd"),
            ("PUT", "/x", {**ok, "id": "y"}, AS_ADMIN, 400, "id"),
            ("PUT", "/x", {**ok, "timezone": "Mars/Base"}, AS_ADMIN, 400, "Mars/Base"),
            ("PUT", "/x", ok, {"authorization": f"Bearer {secret}"}, 403, "admin"),
            ("GET", "", None, {}, 401, ""),
        ]
        for method, path, body, headers, status, says in cases:
            answer = await http.request(method, url + path, json=body, headers=headers)
            assert (answer.status_code, says in answer.text) == (status, True), (path, body)
            assert "Traceback" not in answer.text
        assert [b["id"] for b in (await http.get(url, headers=AS_ADMIN)).json()["budgets"]] == [
            "support-monthly"
        ]


@pytest.mark.integration
async def test_api_budgets_survive_an_embedded_broker_restart(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """The embedded broker keeps topics in memory; the data dir's snapshot puts the records
    back on the fresh topic (a new namespace stands for the restarted broker)."""
    put = {"scope": {"project": "seo"}, "limit_usd": 25, "alerts": [0.9]}
    first = _runtime(kafka_bootstrap, namespace, tmp_path, {"proxy"}, [], snapshot=True)
    async with serving(build_app(first)) as a, httpx.AsyncClient() as http:
        answer = await http.put(f"{a}/v1/admin/budgets/seo", headers=AS_ADMIN, json=put)
        assert answer.status_code == 201
    restarted = _runtime(kafka_bootstrap, f"r{namespace}", tmp_path, {"proxy"}, [], snapshot=True)
    async with serving(build_app(restarted)) as a, httpx.AsyncClient() as http:
        seo = (await http.get(f"{a}/v1/admin/budgets/seo", headers=AS_ADMIN)).json()
        assert (seo["source"], Decimal(str(seo["limit_usd"])), seo["alerts"]) == ("api", 25, [0.9])


@pytest.mark.integration
async def test_the_cli_sets_lists_and_deletes_budgets(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from tollway.cli.main import app as cli

    async with serving(
        build_app(_runtime(kafka_bootstrap, namespace, tmp_path, {"proxy"}, []))
    ) as a:

        async def tollway(*args: str) -> str:
            result = await asyncio.to_thread(
                CliRunner().invoke, cli, [*args, "--url", a, "--key", ADMIN]
            )
            assert result.exit_code == 0, result.output
            return result.output

        said = await tollway(
            "budgets", "set", "seo-weekly", "--limit", "12.5", "--period", "weekly",
            "-b", "marketing", "-p", "seo", "--alert", "0.5", "--alert", "0.9", "--action", "block",
        )  # fmt: skip
        assert "created seo-weekly" in said
        listed = json.loads(await tollway("budgets", "list", "--json"))
        seo = next(b for b in listed if b["id"] == "seo-weekly")
        assert seo["scope"] == {
            "business_line": "marketing", "project": "seo", "task_type": None, "key_id": None,
            "user": None, "model": None, "tag": None,
        }  # fmt: skip
        assert (Decimal(str(seo["limit_usd"])), seo["alerts"], seo["action"]) == (
            Decimal("12.5"), [0.5, 0.9], "block",
        )  # fmt: skip
        assert "seo-weekly" in await tollway("budgets", "list")
        assert "deleted seo-weekly" in await tollway("budgets", "delete", "seo-weekly")
        assert [b["id"] for b in json.loads(await tollway("budgets", "list", "--json"))] == [
            "support-monthly"
        ]


@pytest.mark.integration
async def test_schemathesis_finds_no_server_errors_in_the_admin_api(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """Fuzz every `/v1/admin/` endpoint (keys and budgets) as the admin: no answer is a 5xx."""
    from tests.router.test_bad_input import _schemathesis

    st = _schemathesis()
    if st is None:
        pytest.skip("schemathesis is not installed (dev extra)")
    async with serving(
        build_app(_runtime(kafka_bootstrap, namespace, tmp_path, {"proxy"}, []))
    ) as a:
        process = await asyncio.create_subprocess_exec(
            st, "--no-color", "run", f"{a}/openapi.json", "--checks", "not_a_server_error",
            "--include-path-regex", "^/v1/admin/", "--header", f"Authorization: Bearer {ADMIN}",
            "--max-examples", "60", "--workers", "1", "--phases", "examples,coverage,fuzzing",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    assert "Tested: 9" in text, text[-3000:]  # keys (5) and budgets (4)
