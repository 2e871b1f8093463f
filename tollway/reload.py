"""Hot reload of `tollway.yaml`: edit the file, and every role running from it follows.

`ConfigWatcher` polls the file (its modification time, then its bytes, so an editor that
rewrites the same content changes nothing), validates a changed file exactly as start-up does,
and hands a valid config to the roles' `reload` callbacks. An invalid file is logged with the
loader's file:line message and ignored: the running config stays in force, so a typo never takes
the gateway down. Both outcomes go to the audit trail (tollway/reload_audit.py). What follows a reload: budgets (a new or changed budget counts spend since its
period start from the ledger), routes and prices, providers, keys declared in the file (one
deleted from it is refused from then on), alerts and webhook endpoints. The settings
(TOLLWAY_*) still need a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from prometheus_client import Counter

from tollway.config import ConfigError, load_config
from tollway.config.schema import TollwayConfig

log = logging.getLogger(__name__)

RELOADS = Counter("tollway_config_reloads_total", "tollway.yaml reloads", ["outcome"])

OnReload = Callable[[TollwayConfig], Awaitable[None]]
OnRejected = Callable[[ConfigError], Awaitable[None]]


class ConfigWatcher:
    def __init__(
        self,
        path: Path,
        on_reload: OnReload,
        interval_s: float = 2.0,
        on_rejected: OnRejected | None = None,
    ) -> None:
        self.path = path
        self.on_reload = on_reload
        self.on_rejected = on_rejected
        self.interval_s = interval_s
        self._stamp = self._mtime()
        self._digest = self._read_digest()
        self._task: asyncio.Task[None] | None = None

    def _mtime(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def _read_digest(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    async def check(self) -> bool:
        """Reload if the file changed; True when a new config was applied."""
        stamp = self._mtime()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        digest = self._read_digest()
        if digest is None or digest == self._digest:
            return False
        self._digest = digest
        try:
            config = load_config(self.path)
        except ConfigError as exc:
            RELOADS.labels("invalid").inc()
            log.error(
                "%s changed but is not valid; keeping the running config:\n%s", self.path, exc
            )
            if self.on_rejected is not None:
                await self.on_rejected(exc)
            return False
        await self.on_reload(config)
        RELOADS.labels("applied").inc()
        log.info("reloaded %s", self.path)
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except Exception:  # a failed reload must not stop the watching
                RELOADS.labels("failed").inc()
                log.exception("applying the changed %s failed", self.path)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="tollway-config-watcher")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
