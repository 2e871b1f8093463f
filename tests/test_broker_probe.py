"""`/readyz`'s broker check on a real Tansu broker: one admin client serves probe after probe,
a stopped broker reads as unreachable within the probe's timeout, and a broker that comes back
is found again by the next probe."""

from __future__ import annotations

import time

import pytest

from tollway.broker import EmbeddedBroker
from tollway.health import BrokerProbe

pytestmark = pytest.mark.integration


async def test_the_probe_keeps_its_client_and_follows_the_broker() -> None:
    broker = EmbeddedBroker()
    await broker.start()
    probe = BrokerProbe(broker.bootstrap, timeout_s=2.0)
    try:
        assert await probe.reachable()
        client = probe._client
        assert await probe.reachable() and probe._client is client  # no new client per probe

        await broker.stop()
        started = time.monotonic()
        assert not await probe.reachable()
        assert time.monotonic() - started < 5  # within the timeout, not a hang
        assert probe._client is None

        broker = EmbeddedBroker(port=broker.port)
        await broker.start()
        assert await probe.reachable()
    finally:
        await probe.close()
        await broker.stop()
