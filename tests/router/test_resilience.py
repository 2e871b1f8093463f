"""Retries, timeouts, fallbacks and circuit breaking against a fault-injecting upstream.

Each test uses its own models, so the breaker state one test leaves behind (per provider x
model, per process) cannot leak into another. Every call's event is read back from the ledger
(real Kafka + chDB) to check that each try is listed in `attempts`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.router import faults
from tests.router.conftest import Stack, run_stack
from tollway.config.schema import TollwayConfig

PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}
FLAKY = {
    "max_retries": 2,
    "backoff_base_s": 0.05,
    "attempt_timeout_s": 0.5,
    "retry_after_max_s": 5.0,
    "breaker_failures": 3,
    "breaker_cooldown_s": 1.0,
}
FLAKY_MODELS = ["rl", "e500", "slow", "brk", "dead", "srl", "longwait"]
STEADY_MODELS = ["steady-a", "steady-b", "steady-c", "steady-d"]


def _config(urls: dict[str, str]) -> TollwayConfig:
    upstream = {"type": "openai", "base_url": urls["faults"] + "/v1", "api_key_env": "WRONG_KEY"}
    return TollwayConfig.model_validate(
        {
            "providers": [
                {"name": "flaky", **upstream, **FLAKY},
                {"name": "steady", **upstream},
            ],
            "models": [
                *({"name": m, "provider": "flaky", **PRICE} for m in FLAKY_MODELS),
                *({"name": m, "provider": "steady", **PRICE} for m in STEADY_MODELS),
            ],
            "routes": [
                {"name": "r500", "candidates": ["e500"], "fallbacks": ["steady-a"]},
                {"name": "rslow", "candidates": ["slow"], "fallbacks": ["steady-b"]},
                {
                    "name": "rbreak",
                    "candidates": ["brk"],
                    "fallbacks": ["steady-c"],
                    "max_retries": 0,
                },
                {"name": "rlong", "candidates": ["longwait"], "fallbacks": ["steady-d"]},
            ],
        }
    )


@pytest.fixture(scope="module")
async def fault_stack(
    kafka_bootstrap: str, chdb_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    apps = {"faults": faults.faulty_app()}
    async with run_stack(
        kafka_bootstrap, chdb_path, tmp_path_factory.mktemp("faults"), apps, _config
    ) as running:
        yield running


def _upstream(stack: Stack) -> Any:
    return stack.fakes["faults"].state


async def _chat(stack: Stack, model: str, **extra: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        return await http.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {stack.key}"},
            json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra},
        )


def _attempts(row: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    """(provider, model, status, http_status) of each attempt in a ledger row."""
    names = ("provider", "model", "status", "error", "http_status", "duration_ms")
    out = []
    for item in row["attempts"]:
        entry = item if isinstance(item, dict) else dict(zip(names, item, strict=True))
        out.append((entry["provider"], entry["model"], entry["status"], int(entry["http_status"])))
    return out


async def _metric(stack: Stack, name: str, **labels: str) -> float | None:
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        text = (await http.get("/metrics")).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_429_with_retry_after_is_retried(fault_stack: Stack) -> None:
    _upstream(fault_stack).script["rl"] = ["429:1"]
    started = time.monotonic()
    response = await _chat(fault_stack, "rl")
    assert response.status_code == 200, response.text
    assert time.monotonic() - started >= 1.0  # waited as the upstream asked
    assert _upstream(fault_stack).hits["rl"] == 2
    row = await fault_stack.row(response.headers["x-tollway-event-id"])
    assert _attempts(row) == [("flaky", "rl", "error", 429), ("flaky", "rl", "ok", 0)]
    assert row["status"] == "ok" and not bool(row["fallback_used"])


async def test_retry_after_beyond_the_cap_falls_back_at_once(fault_stack: Stack) -> None:
    _upstream(fault_stack).script["longwait"] = ["429:60"]
    started = time.monotonic()
    response = await _chat(fault_stack, "rlong")
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 5
    assert response.headers["x-tollway-model"] == "steady-d"
    row = await fault_stack.row(response.headers["x-tollway-event-id"])
    assert _attempts(row) == [("flaky", "longwait", "error", 429), ("steady", "steady-d", "ok", 0)]


async def test_500s_exhaust_retries_then_fall_back(fault_stack: Stack) -> None:
    _upstream(fault_stack).script["e500"] = ["500", "500", "500"]
    response = await _chat(fault_stack, "r500")
    assert response.status_code == 200, response.text
    assert response.headers["x-tollway-model"] == "steady-a"
    assert _upstream(fault_stack).hits["e500"] == 3  # max_retries 2: three tries
    row = await fault_stack.row(response.headers["x-tollway-event-id"])
    assert _attempts(row) == [
        ("flaky", "e500", "error", 500),
        ("flaky", "e500", "error", 500),
        ("flaky", "e500", "error", 500),
        ("steady", "steady-a", "ok", 0),
    ]
    assert bool(row["fallback_used"]) and row["model"] == "steady-a"


async def test_attempt_timeout_then_fallback(fault_stack: Stack) -> None:
    _upstream(fault_stack).script["slow"] = ["hang:10", "hang:10", "hang:10"]
    started = time.monotonic()
    response = await _chat(fault_stack, "rslow")
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.headers["x-tollway-model"] == "steady-b"
    assert elapsed < 4  # three 0.5 s tries and two short backoffs, not 10 s hangs
    row = await fault_stack.row(response.headers["x-tollway-event-id"])
    attempts = _attempts(row)
    assert attempts[-1] == ("steady", "steady-b", "ok", 0)
    assert attempts[:-1] == [("flaky", "slow", "error", 504)] * 3
    assert "no answer within 0.5s" in str(row["attempts"][0])


async def test_stream_retried_before_the_first_byte(fault_stack: Stack) -> None:
    _upstream(fault_stack).script["srl"] = ["503"]
    response = await _chat(fault_stack, "srl", stream=True)
    assert response.status_code == 200
    assert "resilient" in response.text and response.text.rstrip().endswith("data: [DONE]")
    row = await fault_stack.row(response.headers["x-tollway-event-id"])
    assert _attempts(row) == [("flaky", "srl", "error", 503), ("flaky", "srl", "ok", 0)]
    assert int(row["output_tokens"]) == len(faults.WORDS)


async def test_circuit_opens_skips_the_model_and_closes_after_a_probe(fault_stack: Stack) -> None:
    upstream = _upstream(fault_stack)
    upstream.script["brk"] = ["500"] * 3
    for _ in range(3):  # breaker_failures: 3 (the route allows no retries)
        response = await _chat(fault_stack, "rbreak")
        assert response.headers["x-tollway-model"] == "steady-c"
    assert upstream.hits["brk"] == 3
    assert await _metric(fault_stack, "tollway_circuit_state", model="brk", provider="flaky") == 2

    skipped = await _chat(fault_stack, "rbreak")  # open: not even tried
    assert skipped.status_code == 200 and skipped.headers["x-tollway-model"] == "steady-c"
    assert upstream.hits["brk"] == 3
    row = await fault_stack.row(skipped.headers["x-tollway-event-id"])
    assert _attempts(row) == [("steady", "steady-c", "ok", 0)]
    assert "circuit open" in row["route_reason"] and bool(row["fallback_used"])

    await asyncio.sleep(1.2)  # the cool-down: the next call is the half-open probe
    probe = await _chat(fault_stack, "rbreak")
    assert probe.headers["x-tollway-model"] == "brk"
    assert upstream.hits["brk"] == 4
    assert await _metric(fault_stack, "tollway_circuit_state", model="brk", provider="flaky") == 0
    opened = await _metric(
        fault_stack,
        "tollway_circuit_transitions_total",
        model="brk",
        provider="flaky",
        state="open",
    )
    assert opened == 1
    row = await fault_stack.row(probe.headers["x-tollway-event-id"])
    assert _attempts(row) == [("flaky", "brk", "ok", 0)]


async def test_all_circuits_open_is_a_fast_503(fault_stack: Stack) -> None:
    upstream = _upstream(fault_stack)
    upstream.script["dead"] = ["500"] * 10
    first = await _chat(fault_stack, "dead")  # three failures open the circuit
    assert first.status_code == 502
    assert first.json()["error"]["type"] == "upstream_error"
    assert upstream.hits["dead"] == 3
    second = await _chat(fault_stack, "dead")
    assert second.status_code == 503
    assert second.json()["error"]["type"] == "upstream_unavailable"
    assert int(second.headers["retry-after"]) >= 1
    assert upstream.hits["dead"] == 3
    rows = await fault_stack.rows_where("requested_model = 'dead'", expected=2)
    by_status = sorted((int(r["http_status"]), len(r["attempts"])) for r in rows)
    assert by_status == [(502, 3), (503, 0)]
