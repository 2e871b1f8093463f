"""`tollway serve --role proxy --workers 2` as an operator runs it: several processes on one
port, plain and streamed calls through them, a graceful SIGTERM, and every call's event on
Kafka exactly once (one record per event id, one event per call).

The upstream is `benchmarks/upstream.py` (OpenAI's wire format, plain and SSE), so this also
runs the pooled upstream client and the coalesced response writes of tollway/server.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from tollway.broker import free_port
from tollway.ids import hash_key, new_key_secret
from tollway.topics import Topics

pytestmark = pytest.mark.integration

CALLS, STREAMS = 40, 10


@pytest.fixture
def upstream() -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.upstream", str(port)])
    try:
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _config(upstream_port: int, key_hash: str) -> dict[str, object]:
    return {
        "providers": [
            {
                "name": "upstream",
                "type": "openai_compatible",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
            }
        ],
        "models": [
            {
                "name": "bench-model",
                "provider": "upstream",
                "family": "custom",
                "input_per_mtok": 0.15,
                "output_per_mtok": 0.60,
            }
        ],
        "keys": [{"id": "k_w", "hash": key_hash, "business_line": "bl", "project": "p"}],
    }


async def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            assert process.poll() is None, "tollway serve exited during start-up"
            try:
                await http.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


async def _events(bootstrap: str, topic: str) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        events: list[dict[str, object]] = []
        for tp, end in ends.items():
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                events += [orjson.loads(r.value or b"{}") for r in batch.get(tp, [])]
        return events
    finally:
        await consumer.stop()


async def test_workers_serve_and_publish_every_event_once(
    kafka_bootstrap: str, namespace: str, upstream: int, tmp_path: Path
) -> None:
    secret = new_key_secret()
    config = tmp_path / "tollway.yaml"
    config.write_text(yaml.safe_dump(_config(upstream, hash_key(secret))))
    port = free_port()
    env = {
        **os.environ,
        "TOLLWAY_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "TOLLWAY_CONFIG": str(config),
        "TOLLWAY_PORT": str(port),
        "TOLLWAY_DATA_DIR": str(tmp_path / "data"),
        "TOLLWAY_TOPIC_NAMESPACE": namespace,
    }
    command = [sys.executable, "-m", "tollway.cli.main", "serve", "--role", "proxy"]
    proxy = subprocess.Popen([*command, "--workers", "2", "--log-level", "warning"], env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        await _wait(f"{base}/healthz", proxy)
        headers = {"authorization": f"Bearer {secret}"}
        body = {"model": "bench-model", "messages": [{"role": "user", "content": "hi"}]}
        ids: set[str] = set()

        async def plain() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:  # own connection
                answer = await http.post("/v1/chat/completions", json=body, headers=headers)
            assert answer.status_code == 200, answer.text
            assert answer.json()["usage"]["total_tokens"] == 160
            ids.add(answer.headers["x-tollway-event-id"])

        async def streamed() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                answer = await http.post(
                    "/v1/chat/completions", json={**body, "stream": True}, headers=headers
                )
            assert answer.status_code == 200, answer.text
            frames = [f for f in answer.text.split("\n\n") if f]
            assert frames[-1] == "data: [DONE]" and len(frames) >= 10
            ids.add(answer.headers["x-tollway-event-id"])

        await asyncio.gather(
            *(plain() for _ in range(CALLS)), *(streamed() for _ in range(STREAMS))
        )
        assert len(ids) == CALLS + STREAMS
    finally:
        proxy.send_signal(signal.SIGTERM)
        code = proxy.wait(60)
    assert code == 0  # both workers stopped cleanly, having flushed their events

    events = await _events(kafka_bootstrap, Topics(namespace).calls)
    assert sorted(str(e["event_id"]) for e in events) == sorted(ids)  # each call, once
    assert sum(bool(e["stream"]) for e in events) == STREAMS
    assert {e["status"] for e in events} == {"ok"}


def test_workers_need_the_proxy_role(tmp_path: Path) -> None:
    env = {**os.environ, "TOLLWAY_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    command = [sys.executable, "-m", "tollway.cli.main", "serve", "--role", "all"]
    result = subprocess.run(
        [*command, "--workers", "2"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "--role proxy" in result.stdout
