"""The audit trail's record of tollway.yaml reloads.

A file edit has no API caller to name, so the record says what the file changed and who applied
it: each process that reloads the file (each proxy and worker replica: the ones with an audit
producer) publishes one `config.reload` — the file's path, its version (the first 12 hex digits
of its SHA-256), the providers, models, routes, keys, budgets and webhooks added, removed or
changed, and the settings sections that changed — or one `config.rejected` when the changed
file is invalid and the running config stays in force, with the loader's file:line message
(which names fields, never their values). Auditing never fails a reload: a broker that cannot
take the event is logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from tollway.audit import AuditLog
from tollway.audit_events import AuditAction, AuditEvent
from tollway.config.changes import config_changes
from tollway.config.schema import TollwayConfig

log = logging.getLogger(__name__)

ACTOR = "tollway.yaml"
#: how long publishing the record may take before it is given up (and logged)
SEND_TIMEOUT_S = 10.0


async def audit_reload(
    app: FastAPI,
    path: Path,
    before: TollwayConfig,
    after: TollwayConfig,
    roles: Iterable[str],
) -> None:
    """Record an applied reload, with what it changed."""
    details = {"version": file_version(path), "changes": config_changes(before, after)}
    await _publish(app, "config.reload", path, details, roles)


async def audit_rejected(app: FastAPI, path: Path, error: str, roles: Iterable[str]) -> None:
    """Record a changed file that was refused as invalid."""
    details = {"version": file_version(path), "error": error[:2000]}
    await _publish(app, "config.rejected", path, details, roles)


def file_version(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return ""


def process_name(roles: Iterable[str]) -> str:
    return f"{socket.gethostname()} pid {os.getpid()} ({'+'.join(sorted(roles))})"


async def _publish(
    app: FastAPI, action: AuditAction, path: Path, details: dict[str, Any], roles: Iterable[str]
) -> None:
    trail: AuditLog | None = getattr(app.state, "audit", None)
    if trail is None:
        return
    event = AuditEvent(
        actor=ACTOR,
        actor_role="system",
        action=action,
        target=str(path),
        details=details,
        client=process_name(roles),
    )
    try:
        async with asyncio.timeout(SEND_TIMEOUT_S):
            await trail.publish(event)
    except Exception as exc:  # the reload stands; only its record is missing
        log.warning("could not record %s of %s in the audit trail: %s", action, path, exc)
