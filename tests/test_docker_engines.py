"""The end-to-end scenario on Apache Kafka and a ClickHouse server, through testcontainers.

Runs wherever a Docker engine answers; elsewhere (as on the development machines, which have
the Docker client but no engine) it is skipped with the reason. The assertions are the same
function the Tansu + chDB test runs, so both engine pairs are held to one standard.

A ClickHouse server also allows what chDB cannot (one process owns a chDB directory): two
worker processes in one consumer group, sharing the calls topic's partitions and rebalancing
when one crashes and when it comes back, with the ledger still exact.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.analytics.conftest import make_event
from tests.pipeline import eventually, produce
from tests.processes import Role
from tollway.topics import Topics

from .test_end_to_end import sdk_calls_land_once_each

pytestmark = pytest.mark.integration

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.1"
CLICKHOUSE_IMAGE = "clickhouse/clickhouse-server:24.8"


def _docker_unavailable() -> str | None:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:  # any failure to reach an engine means: skip, and say why
        return f"no Docker engine answers ({type(exc).__name__}: {str(exc)[:120]})"
    return None


@pytest.fixture(scope="module")
def docker_engines() -> Iterator[tuple[str, str]]:
    reason = _docker_unavailable()
    if reason:
        pytest.skip(reason)
    from testcontainers.community.clickhouse import ClickHouseContainer
    from testcontainers.community.kafka import KafkaContainer

    with (
        KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka,
        ClickHouseContainer(CLICKHOUSE_IMAGE) as clickhouse,
    ):
        host = clickhouse.get_container_host_ip()
        port = clickhouse.get_exposed_port(8123)
        url = f"http://{clickhouse.username}:{clickhouse.password}@{host}:{port}"
        yield kafka.get_bootstrap_server(), url


@pytest.fixture
async def server_store(docker_engines: tuple[str, str]) -> AsyncIterator[object]:
    from analytics.store.server_store import ServerStore

    store = ServerStore(docker_engines[1], f"t_{uuid.uuid4().hex[:10]}")
    yield store
    await store.command(f"DROP DATABASE IF EXISTS {store.database}")
    await store.close()


async def test_sdk_calls_land_once_each_on_kafka_and_clickhouse_server(
    docker_engines: tuple[str, str], server_store, namespace: str, tmp_path: Path
) -> None:
    await sdk_calls_land_once_each(docker_engines[0], namespace, server_store, tmp_path)


async def test_two_workers_share_the_partitions_and_keep_the_ledger_exact(
    docker_engines: tuple[str, str], server_store, namespace: str, tmp_path: Path
) -> None:
    bootstrap, clickhouse_url = docker_engines
    env = {
        **os.environ,
        "TOLLWAY_KAFKA_BOOTSTRAP": bootstrap,
        "TOLLWAY_CLICKHOUSE_URL": clickhouse_url,
        "TOLLWAY_CLICKHOUSE_DATABASE": server_store.database,
        "TOLLWAY_TOPIC_NAMESPACE": namespace,
        "TOLLWAY_KAFKA_SESSION_TIMEOUT_S": "6",
        "TOLLWAY_DATA_DIR": str(tmp_path),
    }
    topic = Topics(namespace).calls
    start = datetime.now(UTC) - timedelta(hours=1)

    def wave(n: int, offset: int) -> list:
        # 16 keys, so every partition of the calls topic gets events
        return [
            make_event(ts=start + timedelta(milliseconds=offset + i), key_id=f"k{i % 16}")
            for i in range(n)
        ]

    async def ledger() -> tuple[int, int]:
        result = await server_store.query(
            "SELECT count() AS n, uniqExact(event_id) AS ids FROM calls"
        )
        return int(result.rows[0]["n"]), int(result.rows[0]["ids"])

    first = Role("worker-a", "worker", env, tmp_path)
    second = Role("worker-b", "worker", env, tmp_path)
    try:
        await first.ready()
        await second.ready()
        await produce(bootstrap, topic, wave(2_000, 0))
        await eventually(ledger, (2_000, 2_000), timeout_s=90)

        await produce(bootstrap, topic, wave(2_000, 10_000))
        second.kill()  # a crash mid-stream: its partitions move to the first worker
        await produce(bootstrap, topic, wave(2_000, 20_000))
        assert await eventually(ledger, (6_000, 6_000), timeout_s=120) == (6_000, 6_000)

        second = Role("worker-b2", "worker", env, tmp_path)  # back: a rebalance again
        await second.ready()
        await produce(bootstrap, topic, wave(2_000, 30_000))
        assert await eventually(ledger, (8_000, 8_000), timeout_s=120) == (8_000, 8_000)
    finally:
        first.stop()
        second.stop()
