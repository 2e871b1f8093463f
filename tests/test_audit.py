"""The audit trail: every change through the admin API, and every refused attempt at it, lands
in `audit_log` exactly once and reads back through the API, SQL and `tollway audit`; no secret
or hash in it. Real Tansu broker, worker and chDB ledger."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.audit_sink import write_audit
from tests.pipeline import role_runtime
from tollway.audit_events import AuditEvent
from tollway.config import load_config
from tollway.config.schema import KeyConfig
from tollway.ids import hash_key, new_key_secret
from tollway.server import serving
from tollway.service import Runtime, build_app
from tollway.settings import Settings

pytestmark = pytest.mark.integration

ADMIN = "tw-test-admin-audit"
AS_ADMIN = {"authorization": f"Bearer {ADMIN}"}


async def _trail(
    http: httpx.AsyncClient, base: str, count: int, **params: Any
) -> list[dict[str, Any]]:
    """The audit entries once `count` of them have arrived (the worker writes in batches)."""
    deadline = time.monotonic() + 20
    while True:
        answer = await http.get(f"{base}/v1/analytics/audit", headers=AS_ADMIN, params=params)
        assert answer.status_code == 200, answer.text
        entries: list[dict[str, Any]] = answer.json()["entries"]
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        await asyncio.sleep(0.2)


async def test_admin_changes_and_refusals_are_audited_once(
    kafka_bootstrap: str, namespace: str, store: object, tmp_path: Path
) -> None:
    dev_secret = new_key_secret()
    dev = KeyConfig(id="k_dev", hash=hash_key(dev_secret), business_line="support")
    settings = Settings(
        topic_namespace=namespace, data_dir=tmp_path, kafka_session_timeout_s=3.0,
        sink_batch_seconds=0.1,
    )  # fmt: skip
    runtime = Runtime(
        settings=settings, config=load_config(None), bootstrap=kafka_bootstrap, admin_key=ADMIN,
        extra_keys=[dev], store=store,
    )  # fmt: skip
    async with serving(build_app(runtime)) as base, httpx.AsyncClient() as http:
        created = await http.post(
            f"{base}/v1/admin/keys", headers=AS_ADMIN,
            json={"id": "k_bot", "business_line": "support", "project": "helpdesk"},
        )  # fmt: skip
        secret = created.json()["key"]
        limits = {"limits": {"requests_per_minute": 60}}
        await http.patch(f"{base}/v1/admin/keys/k_bot", headers=AS_ADMIN, json=limits)
        logged = {"log_content": True}
        await http.patch(f"{base}/v1/admin/keys/k_bot", headers=AS_ADMIN, json=logged)
        empty = await http.patch(f"{base}/v1/admin/keys/k_bot", headers=AS_ADMIN, json={})
        assert empty.status_code == 400 and "nothing to change" in empty.text
        await http.delete(f"{base}/v1/admin/keys/k_bot", headers=AS_ADMIN)
        budget = {"scope": {"project": "seo"}, "limit_usd": 10}
        await http.put(f"{base}/v1/admin/budgets/seo", headers=AS_ADMIN, json=budget)
        raised = {**budget, "limit_usd": 20}
        await http.put(f"{base}/v1/admin/budgets/seo", headers=AS_ADMIN, json=raised)
        await http.delete(f"{base}/v1/admin/budgets/seo", headers=AS_ADMIN)
        refused = await http.get(
            f"{base}/v1/admin/keys", headers={"authorization": f"Bearer {dev_secret}"}
        )
        assert refused.status_code == 403
        # no key at all is refused but not audited: anyone could fill the trail
        assert (await http.get(f"{base}/v1/admin/keys")).status_code == 401

        entries = await _trail(http, base, 8)
        assert [(e["action"], e["target"], e["actor"]) for e in entries] == [
            ("admin.denied", "GET /v1/admin/keys", "k_dev"),
            ("budget.delete", "seo", "admin"),
            ("budget.set", "seo", "admin"),
            ("budget.set", "seo", "admin"),
            ("key.revoke", "k_bot", "admin"),
            ("key.update", "k_bot", "admin"),
            ("key.update", "k_bot", "admin"),
            ("key.create", "k_bot", "admin"),
        ]
        assert entries[-3]["details"] == {"log_content": True, "log_content_before": None}
        assert entries[-2]["details"] == {
            "limits": {
                "requests_per_minute": 60,
                "tokens_per_minute": None,
                "max_parallel_requests": None,
            },
            "before": None,
        }
        assert entries[-1]["details"]["business_line"] == "support"
        assert entries[2]["details"]["before"]["limit_usd"] == "10"
        assert entries[2]["details"]["budget"]["limit_usd"] == "20"
        assert entries[0]["actor_role"] == "developer"
        assert entries[0]["client"] == "127.0.0.1"
        text = json.dumps(entries)
        assert secret not in text and hash_key(secret) not in text and dev_secret not in text

        # filters
        sets = await _trail(http, base, 2, action="budget.set")
        assert [e["action"] for e in sets] == ["budget.set", "budget.set"]
        both = await _trail(http, base, 2, action=["key.create", "key.revoke"])
        assert {e["action"] for e in both} == {"key.create", "key.revoke"}
        assert [e["action"] for e in await _trail(http, base, 1, actor="k_dev")] == ["admin.denied"]
        assert await _trail(http, base, 0, since="2199-01-01") == []
        bad = await http.get(
            f"{base}/v1/analytics/audit", headers=AS_ADMIN, params={"action": "key.steal"}
        )
        assert bad.status_code == 400 and "key.steal" in bad.text
        csv = await http.get(
            f"{base}/v1/analytics/audit", headers={**AS_ADMIN, "accept": "text/csv"}
        )
        assert csv.text.splitlines()[0] == "id,ts,actor,actor_role,action,target,details,client"

        # the trail is readable through SQL too, one row per event
        sql = await http.post(
            f"{base}/v1/analytics/sql", headers=AS_ADMIN,
            json={"query": "SELECT count() AS n, uniqExact(id) AS ids FROM audit_log FINAL"},
        )  # fmt: skip
        row = sql.json()["data"][0]
        assert int(row["n"]) == int(row["ids"]) == 8
        changes = await http.post(  # the README's example
            f"{base}/v1/analytics/sql", headers=AS_ADMIN,
            json={"query": (
                "SELECT ts, actor, target, JSONExtractString(details, 'before', 'limit_usd') AS before,"
                " JSONExtractString(details, 'budget', 'limit_usd') AS after FROM audit_log FINAL"
                " WHERE action = 'budget.set' AND ts >= toStartOfQuarter(now()) ORDER BY ts"
            )},
        )  # fmt: skip
        assert [(r["before"], r["after"]) for r in changes.json()["data"]] == [
            ("", "10"),
            ("10", "20"),
        ]

        # and through `tollway audit`
        from typer.testing import CliRunner

        from tollway.cli.main import app as cli

        args = ["audit", "--action", "key.create", "--url", base, "--key", ADMIN]
        listed = await asyncio.to_thread(CliRunner().invoke, cli, [*args, "--json"])
        assert [e["target"] for e in json.loads(listed.output)] == ["k_bot"]
        table = await asyncio.to_thread(CliRunner().invoke, cli, args)
        assert table.exit_code == 0 and "key.create" in table.output


async def test_reloads_of_the_file_are_audited_with_what_changed(
    kafka_bootstrap: str, namespace: str, store: object, tmp_path: Path
) -> None:
    """A file edit has no API caller: the record names the process that applied it, the file's
    version and what changed by name; an invalid edit is recorded as refused, and the running
    config stays in force."""
    from tollway.config.loader import dump_config
    from tollway.config.schema import BudgetConfig, BudgetScope

    path = tmp_path / "tollway.yaml"
    config = load_config(None)
    path.write_text(dump_config(config, defaults=False))
    runtime = role_runtime(
        kafka_bootstrap, namespace, tmp_path, {"proxy", "worker", "analytics"},
        config_file=path, store=store, admin_key=ADMIN,
    )  # fmt: skip
    async with serving(build_app(runtime)) as base, httpx.AsyncClient() as http:
        cheaper = [
            m.model_copy(update={"input_per_mtok": m.input_per_mtok / 2})
            if m.name == "gpt-4o" and m.input_per_mtok else m
            for m in config.models
        ]  # fmt: skip
        edited = config.model_copy(
            update={
                "models": cheaper,
                "routes": [r for r in config.routes if r.name != "smart"],
                "budgets": [
                    *config.budgets,
                    BudgetConfig(id="seo-cap", scope=BudgetScope(project="seo"), limit_usd=5),
                ],
            }
        )
        path.write_text(dump_config(edited, defaults=False))
        [reload] = await _trail(http, base, 1, action="config.reload")
        assert (reload["actor"], reload["actor_role"], reload["target"]) == (
            "tollway.yaml", "system", str(path),
        )  # fmt: skip
        assert reload["details"]["changes"] == {
            "models": {"changed": ["gpt-4o"]},
            "routes": {"removed": ["smart"]},
            "budgets": {"added": ["seo-cap"]},
        }
        assert len(reload["details"]["version"]) == 12
        assert "pid" in reload["client"] and "proxy" in reload["client"]

        path.write_text(path.read_text() + "\nmodels: oops\n")
        [rejected] = await _trail(http, base, 1, action="config.rejected")
        assert f"{path}:" in rejected["details"]["error"]
        assert rejected["details"]["version"] != reload["details"]["version"]
        assert {r.name for r in runtime.config.routes} == {"auto"}  # the last valid file holds


async def test_a_redelivered_audit_event_is_one_row(store: Any) -> None:
    from analytics.migrate import migrate

    await migrate(store)
    event = AuditEvent(actor="admin", actor_role="admin", action="key.revoke", target="k_x")
    await write_audit(store, [event.encode(), b"not json", event.encode()])
    await write_audit(store, [event.encode()])  # a batch redelivered after a crash
    rows = (await store.query("SELECT id, target FROM audit_log FINAL")).rows
    assert [(str(r["id"]), r["target"]) for r in rows] == [(str(event.id), "k_x")]
