"""Serve an app with uvicorn while tollway, not uvicorn, owns SIGINT and SIGTERM.

uvicorn re-raises a captured signal once it has stopped, which would kill the process before
the embedded broker is stopped and before `tollway up` can exit 0. Here a signal only asks the
server to exit; uvicorn then stops accepting connections, finishes in-flight requests and runs
the lifespan shutdown (flush, drain), and the caller continues with its own clean-up.

Tuned for the proxy's hot path (measured with benchmarks/proxy_overhead.py, profiled with py-spy):
- uvicorn's httptools parser and no access log (a log line per call costs more than
  uvicorn's own work); uvloop only on request (`run`);
- what a connection's response writes in one turn of the event loop leaves in one write
  (`_CoalescingHttpToolsProtocol`): its status line, headers and body, or the SSE frames
  relayed from one upstream read. A socket write is a system call, and on a loopback
  connection one costs about as much as the rest of uvicorn's work for a small answer;
- once the app has started, everything allocated so far is frozen out of the cyclic garbage
  collector and its young generation collected less often (`tune_gc`): with a full tollway
  process loaded, collections cost up to a sixth of the CPU a call takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import importlib.util
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from tollway.broker import free_port

T = TypeVar("T")

log = logging.getLogger(__name__)

#: allocations between two young-generation collections (CPython's default is 700). What is
#: in flight stays alive, so a collection finds it all still live and traverses it for nothing:
#: - a proxy with 512 calls waiting on a 1,500 ms upstream collected 4 times in 8 s at 20,000
#:   (6 % of its CPU), once at 50,000; a steady load with few calls in flight frees what it
#:   allocates and triggers none either way;
#: - a ledger worker holds up to 20,000 decoded events (seven objects each) until the store has
#:   them: draining a 60,000-event backlog it spent 0.21-0.28 s collecting at 50,000, 0.05-0.10 s
#:   at 200,000 (7-9 % of its time, then 2-3 %)
GC_YOUNG_THRESHOLD = 200_000

#: how long an idle keep-alive connection stays open. Longer than the clients' own idle limit
#: (httpx, so the OpenAI and Anthropic SDKs: 5 s; aiohttp: 15 s), as nginx (75 s) and load
#: balancers do: with uvicorn's default of 5 s, a client reusing a connection idle for just
#: under 5 s races the server closing it, and the call fails with a connection reset (seen
#: in the tests when the event loop stalled that long between two calls on one connection)
KEEP_ALIVE_S = 75


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`; on uvloop with `TOLLWAY_UVLOOP=1` (and uvloop installed).

    uvloop makes a proxy process 10-20 % faster, but on saturation it serves connections
    unfairly: at 512 keep-alive clients the median stayed near 110 ms while p90 rose to 1 s
    and p99 to 3.7 s (asyncio's loop: p99 0.35 s at the same throughput). So asyncio's loop is
    the default; uvloop is for deployments that keep the proxy well below saturation."""
    if os.environ.get("TOLLWAY_UVLOOP", "").strip().lower() not in ("1", "true", "yes", "on"):
        return asyncio.run(main)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def tune_gc() -> None:
    """Freeze what start-up allocated (modules, config, pydantic schemas: it lives as long as
    the process) so collections no longer traverse it, and collect young objects less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


class _CoalescingTransport:
    """A transport that gathers what the app writes during one turn of the event loop and
    sends it in one system call at the end of that turn: a response's status line, headers
    and body, or the SSE frames relayed from one read of the upstream. Nothing waits longer
    than the current turn; a close sends what is gathered first."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _http_protocol() -> type[asyncio.Protocol] | str:
    """uvicorn's httptools protocol with coalesced writes; h11 when httptools is missing."""
    if importlib.util.find_spec("httptools") is None:
        return "h11"
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class _CoalescingHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_CoalescingTransport(transport))  # type: ignore[arg-type]

    return _CoalescingHttpToolsProtocol


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
    sock: socket.socket | None = None,
) -> None:
    """Serve `app` until a signal; on `sock` (already bound and listening, shared by several
    worker processes) when given, else on host:port."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=30,
        access_log=False,
        proxy_headers=False,  # tollway reads no client address (X-Forwarded-For would set it)
        http=_http_protocol(),  # type: ignore[arg-type]
        backlog=4096,
        timeout_keep_alive=KEEP_ALIVE_S,
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
        task = asyncio.create_task(server.serve(sockets=[sock] if sock is not None else None))
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            tune_gc()
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


@contextlib.asynccontextmanager
async def serving(app: FastAPI, *, lifespan: bool = True) -> AsyncIterator[str]:
    """`app` served in the current event loop on a free loopback port; yields its URL (for
    tests and benchmarks). Leaving the block stops it cleanly, running the lifespan shutdown."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on" if lifespan else "off",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    server = uvicorn.Server(config)
    server.capture_signals = _leave_signals_alone  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # re-raise the start-up failure
            raise RuntimeError("the server stopped during start-up")
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def serve_workers(
    make_app: Callable[[int], FastAPI],
    host: str,
    port: int,
    workers: int,
    *,
    log_level: str = "warning",
) -> int:
    """Serve from `workers` processes sharing one listening socket; the exit code.

    The sockets are bound here, then each worker is forked and builds its own app
    (`make_app(index)`: its own event publisher, Kafka clients and caches), so nothing with a
    thread or an event loop crosses a fork. SIGINT or SIGTERM here is passed on to every worker
    once (a worker then stops as a single process does: it drains, flushes its events, exits);
    the workers sit in their own process group, so a Ctrl-C in a terminal is not delivered to
    them twice. A worker that dies on its own stops the others, and the exit code is 1: the
    supervisor (systemd, Kubernetes) restarts the whole, as for a single process.
    """
    sockets = listening_sockets(host, port, workers)
    children: dict[int, int] = {}
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            sock = sockets[index % len(sockets)]
            for other in sockets:
                if other is not sock:
                    other.close()
            os._exit(_worker_main(make_app, index, host, port, sock, log_level))
        children[pid] = index
    for sock in sockets:
        sock.close()

    stopping = False

    def stop(signum: int = signal.SIGTERM, _frame: object = None) -> None:
        nonlocal stopping
        first = not stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                # a second signal here is a second one for them: stop waiting for requests
                os.kill(pid, signal.SIGTERM if first else signal.SIGINT)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, -1)
        exit_code = os.waitstatus_to_exitcode(status)
        if index >= 0 and exit_code != 0:
            code = 1
            if not stopping:
                log.error("worker %d exited with %d: stopping the others", index, exit_code)
                stop()
    return code


def listening_sockets(host: str, port: int, workers: int) -> list[socket.socket]:
    """One listening socket per worker with SO_REUSEPORT on Linux, where the kernel spreads
    new connections evenly over them (a single shared socket goes to whichever worker
    accepts first: 300 against 212 of 512 connections in a benchmark run); elsewhere one
    socket shared by all.

    Created as IPPROTO_TCP, not the default protocol 0: accepted connections inherit it, and
    asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets that say they are TCP.
    With it on, a streamed answer's next frame waited for the client to acknowledge the one
    before, which a client delays by up to 40 ms (uvicorn's own `--workers` has the same bug:
    Kludex/uvicorn#3149)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    count = workers if sys.platform.startswith("linux") else 1
    sockets = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if count > 1:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        port = sock.getsockname()[1]  # port 0: the others join the port the first one got
        sock.listen(4096)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


def _worker_main(
    make_app: Callable[[int], FastAPI],
    index: int,
    host: str,
    port: int,
    sock: socket.socket,
    log_level: str,
) -> int:
    os.setpgid(0, 0)  # out of the terminal's process group: signals come from the parent
    _die_with_parent()
    try:
        run(serve(make_app(index), host, port, log_level=log_level, sock=sock))
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("worker %d failed", index)
        return 1


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker if the parent dies (killed with SIGKILL, say), so no worker
    is left holding the port."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
