"""Does cost-aware routing with the feedback loop save money without losing answers? (issue #7)

The same seeded workload goes three times through the real stack — an embedded Tansu broker,
`tollway serve --role all` (proxy, worker and analytics in one process, chDB in a temporary data
dir, routing statistics recomputed every `interval_s`) — to simulated providers
(benchmarks/quality_upstream.py, one OpenAI-compatible upstream serving the five catalogue
models, configured as an `openai_compatible` provider):

- **always strongest**: every call asks for the model with the best acceptable rate in the matrix
  (claude-sonnet-4) by name — the baseline;
- **always cheapest**: every call asks for the cheapest model in the catalogue (gemini-2.0-flash);
- **cost_aware**: every call asks for the route `auto` (strategy `cost_aware`, all five models as
  candidates, a quality floor per task type, exploration 0.05, min_scores 10, routing statistics
  every 1 s), starting with no statistics at all: it has to learn the matrix from the feedback.

Each arm has its own virtual key; the workload sends the task type in `x-tollway-task-type`.
The client grades every answer itself (the question is arithmetic with a known result) and posts
`POST /v1/feedback {"event_id", "score": 1 | 0}` for it — in every arm, as an application would.
Feedback goes to Kafka, the worker writes it to ClickHouse, the analytics role joins it with the
ledger into `tollway.routing-stats.v1`, and the proxy routes on it.

Workload (seed 7): `calls` questions, task types drawn with these shares; prompt sizes vary
uniformly ±30 % around the mean, output lengths ±20 % (drawn by the upstream per model and
question); catalogue prices from tollway/config/demo.yaml (USD per 1M input / output tokens).

| task type | share | prompt tokens | output tokens | max_tokens | floor, loose | floor, strict |
|---|---|---|---|---|---|---|
| classification | 30 % | 250 | 5 | 16 | 0.95 | 0.975 |
| chat | 25 % | 150 | 120 | 400 | 0.94 | 0.965 |
| summarisation | 20 % | 1,500 | 150 | 400 | 0.94 | 0.965 |
| code | 15 % | 300 | 350 | 1,024 | 0.935 | 0.955 |
| long_context | 10 % | 24,000 | 150 | 400 | 0.90 | 0.945 |

Quality matrix — the probability that a model answers a task type acceptably (fixed before the
first run and never changed; the floors are the operator's knobs, the matrix is the world):

| model ($ in / out) | classification | chat | summarisation | code | long_context |
|---|---|---|---|---|---|
| gemini-2.0-flash (0.10 / 0.40) | 0.97 | 0.86 | 0.80 | 0.55 | 0.95 |
| gpt-4o-mini (0.15 / 0.60) | 0.97 | 0.96 | 0.88 | 0.70 | 0.82 |
| claude-3-5-haiku (0.80 / 4.00) | 0.98 | 0.96 | 0.96 | 0.85 | 0.90 |
| gpt-4o (2.50 / 10.00) | 0.99 | 0.97 | 0.97 | 0.95 | 0.93 |
| claude-sonnet-4 (3.00 / 15.00) | 0.99 | 0.98 | 0.98 | 0.97 | 0.96 |

The floors are the operator's knob, the matrix is the world. *Strict* floors say "at most
1.5 points below the best model on each task type" (as an operator would measure in a pilot),
set halfway between two models' rates so the loop has a clear answer; *loose* ones accept about
two points less. The *oracle* of a task type is the cheapest model whose matrix rate meets its
floor. Strict: claude-3-5-haiku for classification, gpt-4o for chat and summarisation,
claude-sonnet-4 for code, gemini-2.0-flash for long_context — served by their oracles the
workload would be 0.991x as acceptable as with claude-sonnet-4 at 0.26x its cost. Loose:
gemini-2.0-flash, gpt-4o-mini, claude-3-5-haiku, gpt-4o, gemini-2.0-flash — 0.981x at 0.12x,
which leaves no room for the answers lost while learning. `python -m benchmarks
routing_simulation` runs the strict floors; `run(knobs=routing_world.LOOSE)` the loose ones.

Latency: time to first token + prompt prefill + output at the model's speed, times a log-normal
jitter (sigma 0.25), all scaled to a tenth of these typical figures to keep the run short:

| model | first token ms | prefill ms / 1k prompt tokens | output tokens/s |
|---|---|---|---|
| gemini-2.0-flash | 400 | 15 | 200 |
| gpt-4o-mini | 500 | 20 | 80 |
| claude-3-5-haiku | 700 | 25 | 60 |
| gpt-4o | 600 | 25 | 90 |
| claude-sonnet-4 | 1,300 | 35 | 55 |

Reported per arm: total cost (the ledger in ClickHouse read through `/v1/analytics/sql`,
checked to equal the sum of the `x-tollway-cost-usd` headers), the acceptable-answer rate as
graded by the client, p95 latency as the client saw it, the ratios to the strongest baseline of
the same run, and for cost_aware the convergence: per task type, the number of its calls after
which every rolling window of 200 of its calls sends ≥ 90 % to one model — the model it settled
on, reported next to the oracle (a model the feedback wrongly ruled out early leaves the task
type on a stronger, dearer one); the loop has converged once every task type has (counted in
calls of the whole workload). Then the same
figures for the calls after convergence only, on the same questions in every arm.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import yaml

from benchmarks.processes import Processes, wait_ready
from benchmarks.routing_report import Arm, Call, report
from benchmarks.routing_world import (
    ADMIN_KEY,
    DEMO,
    MODELS,
    SEED,
    STRICT,
    TASKS,
    Knobs,
    Question,
    _prices,
    cheapest,
    strongest,
    workload,
)
from tollway.broker import EmbeddedBroker, free_port
from tollway.ids import hash_key, new_key_secret


def _config(upstream_port: int, keys: dict[str, str], knobs: Knobs) -> dict[str, object]:
    demo = yaml.safe_load(DEMO.read_text())
    models = [{**m, "provider": "lab"} for m in demo["models"] if m["name"] in MODELS]
    return {
        "providers": [
            {
                "name": "lab",
                "type": "openai_compatible",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                "timeout_s": 30,
            }
        ],
        "models": models,
        "routes": [
            {
                "name": "auto",
                "strategy": "cost_aware",
                "candidates": MODELS,
                "exploration": knobs.exploration,
                "min_scores": knobs.min_scores,
                "tasks": [
                    {"task_types": [task], "quality_floor": floor}
                    for task, floor in knobs.floors.items()
                ],
            }
        ],
        "organisation": {
            "business_lines": [{"name": "lab", "projects": ["routing"]}],
            "task_types": list(TASKS),
        },
        "keys": [
            {"id": kid, "hash": hash_key(secret), "business_line": "lab", "project": "routing"}
            for kid, secret in keys.items()
        ],
        "budgets": [],
        "webhooks": [],
    }


# --- one arm ------------------------------------------------------------------------------


ANSWER = re.compile(r"Answer: (-?\d+)")


async def _drive(
    http: httpx.AsyncClient, base: str, arm: Arm, questions: list[Question], concurrency: int
) -> None:
    """`concurrency` clients take the questions in order; each call, graded, then its feedback."""
    pending = iter(questions)
    headers = {"authorization": f"Bearer {arm.secret}"}

    async def client() -> None:
        for question in pending:
            body = {
                "model": arm.model,
                "messages": [{"role": "user", "content": question.prompt()}],
                "max_tokens": TASKS[question.task].max_tokens,
            }
            for attempt in range(6):
                try:
                    t0 = time.perf_counter()
                    response = await http.post(
                        f"{base}/v1/chat/completions",
                        json=body,
                        headers={**headers, "x-tollway-task-type": question.task},
                    )
                    latency_ms = (time.perf_counter() - t0) * 1000
                    break
                except httpx.TransportError:  # a kept-alive connection closed under us
                    if attempt == 5:
                        raise
                    await asyncio.sleep(0.05)
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"] or ""
            match = ANSWER.search(content)
            correct = match is not None and int(match.group(1)) == question.answer
            event_id = response.headers["x-tollway-event-id"]
            arm.calls.append(
                Call(
                    question,
                    response.headers["x-tollway-model"],
                    correct,
                    Decimal(response.headers.get("x-tollway-cost-usd") or "0"),
                    latency_ms,
                    event_id,
                )
            )
            feedback = await http.post(
                f"{base}/v1/feedback",
                json={"event_id": event_id, "score": 1.0 if correct else 0.0},
                headers=headers,
            )
            feedback.raise_for_status()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    arm.seconds = time.perf_counter() - start


async def _read_ledger(http: httpx.AsyncClient, base: str, arms: list[Arm]) -> None:
    """Wait until the ledger holds every call of every arm, then read each arm's cost."""
    query = (
        "SELECT key_id, count() AS n, toString(sum(cost_usd)) AS usd,"
        " countIf(route_reason LIKE '%explore (thompson%') AS explored"
        " FROM calls WHERE status = 'ok' GROUP BY key_id"
    )
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    rows: dict[str, dict[str, object]] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = await http.post(
            f"{base}/v1/analytics/sql", json={"query": query}, headers=headers
        )
        response.raise_for_status()
        rows = {str(r["key_id"]): r for r in response.json()["data"]}
        if all(int(str(rows.get(a.key_id, {}).get("n", 0))) >= len(a.calls) for a in arms):
            break
        await asyncio.sleep(0.5)
    for arm in arms:
        row = rows.get(arm.key_id, {})
        arm.ledger_calls = int(str(row.get("n", 0)))
        arm.ledger_usd = Decimal(str(row.get("usd", "0")))
        arm.explored = int(str(row.get("explored", 0)))
    aware = arms[-1]
    response = await http.post(
        f"{base}/v1/analytics/sql",
        json={
            "query": "SELECT toString(event_id) AS id, route_reason,"
            " toUnixTimestamp64Milli(ts) AS at_ms FROM calls"
            f" WHERE key_id = '{aware.key_id}'"
        },
        headers=headers,
    )
    response.raise_for_status()
    rows_by_id = {str(r["id"]): r for r in response.json()["data"]}
    for call in aware.calls:
        row = rows_by_id.get(call.event_id, {})
        call.reason = str(row.get("route_reason", ""))
        call.at_ms = int(str(row.get("at_ms", 0)))


# --- figures ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def stack(keys: dict[str, str], knobs: Knobs, seed: int) -> AsyncIterator[str]:
    """Broker, upstream and `tollway serve --role all`; yields the proxy's base URL."""
    async with EmbeddedBroker() as broker:
        with tempfile.TemporaryDirectory() as tmp:
            upstream_port, port = free_port(), free_port()
            config_path = Path(tmp) / "tollway.yaml"
            config_path.write_text(yaml.safe_dump(_config(upstream_port, keys, knobs)))
            env = {
                **os.environ,
                "TOLLWAY_KAFKA_BOOTSTRAP": broker.bootstrap,
                "TOLLWAY_CONFIG": str(config_path),
                "TOLLWAY_PORT": str(port),
                "TOLLWAY_DATA_DIR": str(Path(tmp) / "data"),
                "TOLLWAY_TOPIC_NAMESPACE": "bench.",
                "TOLLWAY_ADMIN_KEY": ADMIN_KEY,
                "TOLLWAY_KAFKA_SESSION_TIMEOUT_S": "3",
                "TOLLWAY_ROUTING_STATS_INTERVAL_S": str(knobs.interval_s),
            }
            with Processes(Path(tmp) / "tollway.log") as processes:
                upstream = processes.start(
                    "-m", "benchmarks.quality_upstream", str(upstream_port), str(seed)
                )
                tollway = processes.start(
                    "-m", "tollway.cli.main", "serve", "--role", "all", "--log-level", "warning",
                    env=env,
                )  # fmt: skip
                base = f"http://127.0.0.1:{port}"
                await wait_ready(f"http://127.0.0.1:{upstream_port}/v1/chat/completions", upstream)
                await wait_ready(f"{base}/readyz", tollway)
                yield base


def client(concurrency: int) -> httpx.AsyncClient:
    # uvicorn drops a connection idle for 5 s: expire ours first
    limits = httpx.Limits(
        max_connections=2 * concurrency,
        max_keepalive_connections=2 * concurrency,
        keepalive_expiry=2.0,
    )
    return httpx.AsyncClient(limits=limits, timeout=60)


async def run(
    calls: int = 4000, concurrency: int = 32, knobs: Knobs = STRICT, seed: int = SEED
) -> list[str]:
    started = time.monotonic()
    prices = _prices()
    questions = workload(seed, calls)
    arms = [
        Arm("always strongest", strongest(), "k_strongest", new_key_secret()),
        Arm("always cheapest", cheapest(prices), "k_cheapest", new_key_secret()),
        Arm("cost_aware", "auto", "k_cost_aware", new_key_secret()),
    ]
    keys = {a.key_id: a.secret for a in arms}
    async with stack(keys, knobs, seed) as base, client(concurrency) as http:
        for arm in arms:
            await _drive(http, base, arm, questions, concurrency)
        await _read_ledger(http, base, arms)
    return report(arms, questions, concurrency, knobs, time.monotonic() - started)


if __name__ == "__main__":
    print("\n".join(asyncio.run(run())))
