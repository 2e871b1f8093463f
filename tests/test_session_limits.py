"""A session's spend limit as an agent meets it: once a session's calls have cost
`sessions.limit_usd`, its next call is refused on every proxy replica (they share what each
session cost them through Kafka) with a 429 the official SDKs do not retry, in the caller's
protocol, while other sessions go on; every refusal is a `blocked` row in the ledger, and the
operators hear of the stopped session once, signed (`session.limit_reached`). Past
`sessions.downgrade_usd` a session is served by cheaper models instead. Real Tansu broker,
worker and chDB ledger; the OpenAI and Anthropic SDKs."""

from __future__ import annotations

import asyncio
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.ingest.receiver import SECRET_ENV, signed_receiver
from tests.pipeline import eventually, role_runtime
from tollway.config import load_config
from tollway.config.schema import SessionPolicy, WebhookConfig
from tollway.server import serving
from tollway.service import Runtime, build_app

pytestmark = pytest.mark.integration

ADMIN = "tw-test-admin-sessions"
HELLO = [{"role": "user", "content": "Say hello."}]
#: below what any call costs: a session's first call is served, every later one refused
LIMIT = Decimal("0.000001")


def _runtime(
    bootstrap: str,
    namespace: str,
    data_dir: Path,
    roles: set[str],
    webhook_url: str,
    store: object = None,
) -> Runtime:
    hook = WebhookConfig(
        id="ops", url=webhook_url, secret_env=SECRET_ENV, events=["session.limit_reached"]
    )
    config = load_config(None).model_copy(
        update={"sessions": SessionPolicy(limit_usd=LIMIT), "webhooks": [hook]}
    )
    return role_runtime(
        bootstrap, namespace, data_dir, roles, config=config, store=store, admin_key=ADMIN
    )


def _openai(base_url: str, secret: str, session: str) -> openai.AsyncOpenAI:
    """An agent's client: its session on every call, and the SDK's default retries on."""
    headers = {"x-tollway-session-id": session}
    return openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=secret, default_headers=headers)


async def test_a_sessions_limit_holds_across_replicas(
    kafka_bootstrap: str,
    namespace: str,
    store: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    roles = {"proxy", "worker", "analytics"}
    async with signed_receiver(monkeypatch) as ops:
        everything = _runtime(kafka_bootstrap, namespace, tmp_path / "a", roles, ops.url, store)
        replica = build_app(
            _runtime(kafka_bootstrap, namespace, tmp_path / "b", {"proxy"}, ops.url)
        )
        async with (
            serving(build_app(everything)) as a,
            serving(replica) as b,
            httpx.AsyncClient() as http,
        ):
            created = await http.post(
                f"{a}/v1/admin/keys",
                headers={"authorization": f"Bearer {ADMIN}"},
                json={"business_line": "support"},
            )
            secret, key_id = created.json()["key"], created.json()["record"]["id"]

            # the session's first call is served on A and costs more than the limit
            served = await _openai(a, secret, "run-1").chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=HELLO
            )
            spent = Decimal(served.headers["x-tollway-cost-usd"])
            assert spent > LIMIT

            # A refuses the session's next call at once, in OpenAI's error shape
            with pytest.raises(openai.RateLimitError) as on_a:
                await _openai(a, secret, "run-1").chat.completions.create(
                    model="gpt-4o-mini", messages=HELLO
                )
            error = on_a.value.body
            assert isinstance(error, dict)
            assert (error["type"], error["code"]) == ("budget_exceeded", "session_budget_exceeded")
            assert error["session_id"] == "run-1" and Decimal(error["limit_usd"]) == LIMIT
            assert Decimal(error["spent_usd"]) == spent
            assert on_a.value.response.headers["x-should-retry"] == "false"

            # B has served nothing in the session: it refuses on what A spent, once that arrived
            async def heard_on_b() -> Decimal:
                return replica.state.gateway.sessions.spent("run-1")

            assert await eventually(heard_on_b, spent) == spent
            with pytest.raises(openai.RateLimitError):
                await _openai(b, secret, "run-1").chat.completions.create(
                    model="gpt-4o-mini", messages=HELLO
                )

            # the Anthropic protocol gets its own error shape; another session goes on
            claude = anthropic.AsyncAnthropic(
                base_url=b, api_key=secret, default_headers={"x-tollway-session-id": "run-1"}
            )
            with pytest.raises(anthropic.RateLimitError) as on_b:
                await claude.messages.create(model="gpt-4o-mini", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
            assert on_b.value.body["error"]["type"] == "budget_exceeded"  # type: ignore[index]
            other = await _openai(b, secret, "run-2").chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=HELLO
            )
            assert other.parse().choices[0].message.content

            # one blocked row a refused call (the SDKs' retries stayed off), counted once B's
            # last call is in the ledger: B's events reach it in order
            async def ledger(condition: str) -> int:
                answer = await store.query(f"SELECT count() AS n FROM calls WHERE {condition}")
                return int(answer.rows[0]["n"])

            last = other.headers["x-tollway-event-id"]
            assert await eventually(lambda: ledger(f"toString(event_id) = '{last}'"), 1) == 1
            refused = "session_id = 'run-1' AND error_code = 'session_budget_exceeded'"
            assert await eventually(lambda: ledger(f"{refused} AND status = 'blocked'"), 3) == 3
            assert await ledger("session_id = 'run-1' AND status = 'ok'") == 1

            # the sessions endpoint and `tollway sessions show` say it was stopped
            listed = await http.get(
                f"{a}/v1/analytics/sessions",
                params={"session_id": "run-1"},
                headers={"authorization": f"Bearer {ADMIN}"},
            )
            [session] = listed.json()["sessions"]
            assert (session["calls"], session["limited"]) == (4, 3)
            shown = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tollway.cli.main", "sessions", "show", "run-1",
                "--url", a, "--key", ADMIN, env={**os.environ, "COLUMNS": "250"},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            output = (await shown.communicate())[0].decode()
            assert "3 refused at its limit (sessions.limit_usd)" in output, output

            # three refusals on two replicas: the operators hear of the session once
            await ops.wait_for(1)
            await asyncio.sleep(1.0)  # time for more deliveries, were any made
    [delivery] = ops.received
    assert delivery.headers["webhook-id"] == "session-limit:run-1"
    assert delivery.payload is not None, delivery.error
    assert delivery.payload["data"]["summary"] == (
        f"Session run-1 of key {key_id} (support) reached its limit of $0.000001 "
        f"(sessions.limit_usd) at ${spent:.6f}: its further calls are refused"
    )


async def test_a_session_past_its_downgrade_threshold_is_served_by_cheaper_models(
    kafka_bootstrap: str, namespace: str, store: Any, tmp_path: Path
) -> None:
    policy = SessionPolicy(downgrade_usd=LIMIT, downgrade_to="gpt-4o-mini")
    config = load_config(None).model_copy(update={"sessions": policy})
    roles = {"proxy", "worker", "analytics"}
    runtime = role_runtime(
        kafka_bootstrap, namespace, tmp_path, roles, config=config, store=store, admin_key=ADMIN
    )
    async with serving(build_app(runtime)) as base, httpx.AsyncClient() as http:
        created = await http.post(
            f"{base}/v1/admin/keys",
            headers={"authorization": f"Bearer {ADMIN}"},
            json={"business_line": "support"},
        )
        secret = created.json()["key"]

        async def call(session: str, model: str) -> tuple[str, str]:
            """The model that answered, and the event id."""
            answer = await _openai(base, secret, session).chat.completions.with_raw_response.create(
                model=model, messages=HELLO
            )
            return answer.headers["x-tollway-model"], answer.headers["x-tollway-event-id"]

        assert (await call("run-1", "claude-sonnet-4"))[0] == "claude-sonnet-4"  # under it
        # past it: a model asked for by name goes to downgrade_to, a route to its economy tier
        assert (await call("run-1", "claude-sonnet-4"))[0] == "gpt-4o-mini"
        model, event_id = await call("run-1", "auto")
        economy = load_config(None).route("auto")
        assert economy is not None and model in economy.economy
        assert (await call("run-2", "claude-sonnet-4"))[0] == "claude-sonnet-4"  # other sessions

        async def reason() -> str:
            rows = (
                await store.query(
                    f"SELECT route_reason FROM calls WHERE toString(event_id) = '{event_id}'"
                )
            ).rows
            return rows[0]["route_reason"] if rows else ""

        why = await eventually(reason, None, until=bool)
        assert why.startswith("session run-1 past sessions.downgrade_usd: "), why
