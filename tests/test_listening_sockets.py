"""The sockets `tollway serve --workers N` listens on: every accepted connection sends without
Nagle's algorithm, as a single-process server's does (else a streamed answer's frames wait
for the client's delayed acknowledgements, up to 40 ms each)."""

from __future__ import annotations

import asyncio
import socket

from tollway.server import listening_sockets


async def test_connections_accepted_on_worker_sockets_have_nodelay() -> None:
    sockets = listening_sockets("127.0.0.1", 0, 2)
    loop = asyncio.get_running_loop()
    nodelay: asyncio.Future[int] = loop.create_future()

    class Report(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            nodelay.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    # the kernel hands the connection to either worker's socket: both accept
    servers = [await loop.create_server(Report, sock=sock) for sock in sockets]
    try:
        _, writer = await asyncio.open_connection(*sockets[0].getsockname()[:2])
        assert await asyncio.wait_for(nodelay, 5) != 0
        writer.close()
    finally:
        for server in servers:
            server.close()
