"""Both upstream HTTP/1.1 clients send a request in the turn of the loop that makes it, not
after every other callback already due (aiohttp writes the body in a task of its own on
Python 3.11, so under a burst each upstream request waited for all the other handlers;
router/providers/http_via_proxy.py starts that writing at once)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from router.providers.http1 import Http1Client
from router.providers.http_via_proxy import ProxiedClient

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


def _serve(listener: socket.socket, arrived: list[float], requests: int) -> None:
    """A blocking server in a thread: it notes when each whole request has arrived on its
    keep-alive connection, even while the test's event loop is busy."""
    conn, _ = listener.accept()
    with conn:
        data = b""
        for _ in range(requests):
            while b"}" not in data:
                data += conn.recv(65536)
            arrived.append(time.monotonic())
            data = data[data.index(b"}") + 1 :]
            conn.sendall(ANSWER)


@pytest.mark.parametrize("client_class", [Http1Client, ProxiedClient])
async def test_a_request_leaves_before_the_callbacks_already_due_run(
    client_class: type[Http1Client] | type[ProxiedClient],
) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    arrived: list[float] = []
    server = threading.Thread(target=_serve, args=(listener, arrived, 2), daemon=True)
    server.start()
    client = client_class(f"http://127.0.0.1:{listener.getsockname()[1]}", {}, timeout_s=10)
    busy_until: list[float] = []

    def another_handler() -> None:  # another call's work, due in this very turn
        time.sleep(0.5)
        busy_until.append(time.monotonic())

    try:
        assert (
            await client.post("/v1/chat/completions", {"n": 1})
        ).status_code == 200  # pooled now
        asyncio.get_running_loop().call_soon(another_handler)
        assert (await client.post("/v1/chat/completions", {"n": 2})).status_code == 200
        # the request was on the wire while the other handler still held the loop
        assert len(arrived) == 2 and busy_until and arrived[1] < busy_until[0]
    finally:
        await client.aclose()
        listener.close()
        server.join(timeout=5)
