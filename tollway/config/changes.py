"""What changed between two versions of `tollway.yaml`, by name: the audit trail's record of a
reload (tollway/service.py) says which providers, models, routes, keys, budgets, webhooks and
guardrails were added, removed or changed, and which settings sections changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from tollway.config.schema import TollwayConfig

#: the named lists of tollway.yaml, and the field that names their entries
NAMED = {
    "providers": "name",
    "models": "name",
    "routes": "name",
    "keys": "id",
    "budgets": "id",
    "webhooks": "id",
    "guardrails": "id",
}
SECTIONS = ("organisation", "logging", "limits", "cache", "sessions")


def config_changes(before: TollwayConfig, after: TollwayConfig) -> dict[str, Any]:
    """`{"models": {"added": [...], "removed": [...], "changed": [...]}, ..., "sections": [...]}`
    with only what differs; empty when nothing does."""
    changes: dict[str, Any] = {}
    for field, name in NAMED.items():
        diff = _named_diff(getattr(before, field), getattr(after, field), name)
        if diff:
            changes[field] = diff
    sections = [s for s in SECTIONS if getattr(before, s) != getattr(after, s)]
    if sections:
        changes["sections"] = sections
    return changes


def _named_diff(
    before: Sequence[BaseModel], after: Sequence[BaseModel], name: str
) -> dict[str, list[str]]:
    old = {getattr(item, name): item for item in before}
    new = {getattr(item, name): item for item in after}
    diff = {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "changed": sorted(k for k in old.keys() & new.keys() if old[k] != new[k]),
    }
    return {kind: names for kind, names in diff.items() if names}
