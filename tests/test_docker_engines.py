"""The end-to-end scenario on Apache Kafka and a ClickHouse server, through testcontainers.

Runs wherever a Docker engine answers; elsewhere (as on the development machines, which have
the Docker client but no engine) it is skipped with the reason. The assertions are the same
function the Tansu + chDB test runs, so both engine pairs are held to one standard.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

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
