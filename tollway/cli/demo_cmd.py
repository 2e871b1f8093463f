"""`tollway demo traffic`: a synthetic, seeded workload against a running tollway.

Calls go through the real API with demo keys (the marketing key `tollway up` prints, and a
support key this command creates once through the admin API), spread over models, routes,
projects and task types, so the ledger, budgets and dashboards have something to show.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import typer
from rich.console import Console

from tollway import keystore
from tollway.cli.api_client import fail
from tollway.settings import Settings

app = typer.Typer(no_args_is_help=True)
out = Console()

SUPPORT_KEY_FILE = "demo-support-key"
MODELS = [
    "gpt-4o-mini",
    "gpt-4o",
    "claude-3-5-haiku",
    "claude-sonnet-4",
    "gemini-2.0-flash",
    "auto",
]
TASKS = {"chat": 60, "summarisation": 600, "classification": 25, "retrieval": 40}  # → words
#: retrieval calls embed a few passages instead of chatting
EMBEDDING_MODEL = "text-embedding-3-small"
PROJECTS = {"marketing": ["campaigns", "seo"], "support": ["helpdesk"]}


@dataclass
class Tally:
    calls: int = 0
    errors: int = 0
    blocked: int = 0
    cost: Decimal = Decimal(0)
    models: dict[str, int] = field(default_factory=dict)


def _support_key(base: str, admin: str | None, data_dir: Path) -> str | None:
    """The demo support key, created through the admin API on first use."""
    path = data_dir / SUPPORT_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    if not admin:
        return None
    body = {"id": "k_demo_support", "business_line": "support", "project": "helpdesk",
            "task_type": "summarisation", "name": "demo traffic"}  # fmt: skip
    response = httpx.post(
        f"{base}/v1/admin/keys", json=body, headers={"authorization": f"Bearer {admin}"}
    )
    if response.status_code != 201:
        return None
    secret = str(response.json()["key"])
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret


async def _one(
    http: httpx.AsyncClient, rng: random.Random, keys: dict[str, str], tally: Tally
) -> None:
    line = rng.choice(sorted(keys))
    task = rng.choice(list(TASKS))
    words = " ".join(
        rng.choice(["cost", "budget", "ticket", "launch", "report"]) for _ in range(TASKS[task])
    )
    if task == "retrieval":
        path = "/v1/embeddings"
        body: dict[str, object] = {"model": EMBEDDING_MODEL, "input": [words] * rng.randint(1, 8)}
    else:
        path = "/v1/chat/completions"
        body = {"model": rng.choice(MODELS), "messages": [{"role": "user", "content": words}],
                "max_tokens": 200}  # fmt: skip
    user = f"user{rng.randint(1, 20)}"
    headers = {
        "authorization": f"Bearer {keys[line]}",
        "x-tollway-project": rng.choice(PROJECTS[line]),
        "x-tollway-task-type": task,
        "x-tollway-user": user,
    }
    if task != "retrieval":  # each user works through a few sessions of a task
        headers["x-tollway-session-id"] = f"{task}-{user}-{rng.randint(1, 3)}"
    response = await http.post(path, headers=headers, json=body)
    tally.calls += 1
    if response.status_code == 429:
        tally.blocked += 1
    elif response.status_code != 200:
        tally.errors += 1
    else:
        tally.cost += Decimal(response.headers.get("x-tollway-cost-usd", "0"))
        model = response.headers.get("x-tollway-model", "?")
        tally.models[model] = tally.models.get(model, 0) + 1


async def _run(base: str, keys: dict[str, str], rps: float, duration: float, seed: int) -> Tally:
    rng, tally = random.Random(seed), Tally()
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        tasks: set[asyncio.Task[None]] = set()
        start, sent = time.monotonic(), 0
        while (elapsed := time.monotonic() - start) < duration:
            due = int(elapsed * rps) + 1
            while sent < due:
                task = asyncio.create_task(_one(http, rng, keys, tally))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(min(0.05, 1 / rps))
        await asyncio.gather(*tasks, return_exceptions=True)
    return tally


@app.command()
def traffic(
    rps: float = typer.Option(5.0, "--rps", min=0.1, help="Calls per second."),
    duration: float = typer.Option(30.0, "--duration", min=1, help="Seconds to run."),
    seed: int = typer.Option(7, "--seed", help="Same seed, same workload."),
    url: str | None = typer.Option(None, "--url", help="Base URL of tollway."),
    key: str | None = typer.Option(None, "--key", help="A virtual key (default: the demo key)."),
) -> None:
    """Send a synthetic workload (several models, projects and task types) to tollway."""
    settings = Settings()
    base = (url or f"http://{settings.host}:{settings.port}").rstrip("/")
    demo = key or _read(settings.data_dir / keystore.DEMO_KEY_FILE)
    if not demo:
        raise fail("no key: pass --key, or run `tollway up` with the demo config first")
    keys = {"marketing": demo}
    admin = settings.admin_key.get_secret_value() if settings.admin_key else None
    admin = admin or keystore.read_admin_key(settings.data_dir)
    support = _support_key(base, admin, settings.data_dir) if key is None else None
    if support and key is None:
        keys["support"] = support
    try:
        tally = asyncio.run(_run(base, keys, rps, duration, seed))
    except httpx.ConnectError:
        raise fail(f"cannot reach tollway at {base}: is `tollway up` running?") from None
    out.print(
        f"{tally.calls} calls: {tally.calls - tally.errors - tally.blocked} ok, "
        f"{tally.blocked} blocked by budgets, {tally.errors} errors; spent ${tally.cost:.4f}"
    )
    for model, count in sorted(tally.models.items(), key=lambda item: -item[1]):
        out.print(f"  {model:24} {count}")


def _read(path: Path) -> str | None:
    return path.read_text().strip() if path.exists() else None
