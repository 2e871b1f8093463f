"""Serve an app with uvicorn while tollway, not uvicorn, owns SIGINT and SIGTERM.

uvicorn re-raises a captured signal once it has stopped, which would kill the process before
the embedded broker is stopped and before `tollway up` can exit 0. Here a signal only asks the
server to exit; uvicorn then stops accepting connections, finishes in-flight requests and runs
the lifespan shutdown (flush, drain), and the caller continues with its own clean-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from fastapi import FastAPI


@contextlib.contextmanager
def _leave_signals_alone() -> Iterator[None]:
    yield


async def serve(
    app: FastAPI,
    host: str,
    port: int,
    *,
    on_started: Callable[[], Awaitable[None] | None] | None = None,
    log_level: str = "warning",
) -> None:
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan="on", timeout_graceful_shutdown=30
    )
    server = uvicorn.Server(config)
    server.capture_signals = _leave_signals_alone  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()

    def request_exit() -> None:
        if server.should_exit:  # a second signal: stop waiting for in-flight requests
            server.force_exit = True
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_exit)
    try:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started and on_started is not None:
            result = on_started()
            if result is not None:
                await result
        await task
        if not server.started:
            raise SystemExit(1)  # start-up failed; uvicorn has logged why
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
