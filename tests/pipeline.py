"""Helpers for tests that drive the worker through the real broker and store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI

from tollway.config import load_config
from tollway.config.schema import TollwayConfig
from tollway.events import CallEvent
from tollway.kafka import new_producer
from tollway.service import Runtime, build_app
from tollway.settings import Settings

T = TypeVar("T")


async def produce(bootstrap: str, topic: str, events: list[CallEvent]) -> None:
    """Publish events as the proxy does: keyed by key id, acknowledged by the broker."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for event in events:
            await producer.send(topic, event.encode(), key=event.partition_key)
        await producer.flush()
    finally:
        await producer.stop()


def role_runtime(
    bootstrap: str,
    namespace: str,
    data_dir: Path,
    roles: set[str],
    *,
    config: TollwayConfig | None = None,
    config_file: Path | None = None,
    store: Any = None,
    **runtime: Any,
) -> Runtime:
    """Some roles of one tollway process on the test's broker namespace (and store), with a
    short sink batch and consumer session so the tests wait less; `runtime`: other `Runtime`
    fields (admin_key, extra_keys, snapshot_dir). The demo config unless `config`, or
    `config_file`: that file, watched for changes every 0.1 s."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        topic_namespace=namespace,
        data_dir=data_dir,
        kafka_session_timeout_s=3.0,
        sink_batch_seconds=0.1,
        config=config_file,
        config_reload_s=0.1,
    )
    if config_file is not None:
        config = load_config(config_file)
    return Runtime(
        settings=settings,
        config=config or load_config(None),
        bootstrap=bootstrap,
        roles=frozenset(roles),
        store=store,
        **runtime,
    )


def worker_app(
    bootstrap: str, namespace: str, store: Any, tmp_path: Path, config: TollwayConfig
) -> FastAPI:
    """The worker and analytics roles on the test's broker namespace and store."""
    return build_app(
        role_runtime(
            bootstrap, namespace, tmp_path, {"worker", "analytics"}, config=config, store=store
        )
    )


async def eventually(
    check: Callable[[], Awaitable[T]],
    expected: T,
    timeout_s: float = 30.0,
    until: Callable[[T], bool] | None = None,
) -> T:
    """Poll `check` until it returns `expected` (or a value `until` accepts) or the time is
    up; the last value either way."""
    deadline = time.monotonic() + timeout_s
    done = until or (lambda value: value == expected)
    while True:
        value = await check()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


async def chat_status(
    base_url: str, secret: str, model: str = "gpt-4o-mini", **request: Any
) -> int:
    """The HTTP status of one chat call with the OpenAI SDK (200 when it was answered) — what a
    replica's keys, budgets and rate limits make of `secret` right now."""
    import openai

    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=secret, max_retries=0)
    messages = request.pop("messages", [{"role": "user", "content": "Say hello."}])
    try:
        await client.chat.completions.create(model=model, messages=messages, **request)
        return 200
    except openai.APIStatusError as exc:
        return exc.status_code


async def listed_alerts(base_url: str, admin_key: str, alert_type: str) -> list[dict[str, Any]]:
    """`GET /v1/analytics/alerts?type=…` as an admin: the alerts of that type, newest first."""
    import httpx

    async with httpx.AsyncClient() as http:
        answer = await http.get(
            f"{base_url}/v1/analytics/alerts", params={"type": alert_type},
            headers={"authorization": f"Bearer {admin_key}"},
        )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()["alerts"]  # type: ignore[no-any-return]
