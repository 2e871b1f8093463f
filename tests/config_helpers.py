"""A valid base tollway.yaml for the config tests, and helpers to write and vary it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

CONFIGS = Path(__file__).with_name("configs")

BASE: dict[str, Any] = {
    "providers": [
        {"name": "openai", "type": "openai", "api_key_env": "OPENAI_API_KEY"},
        {"name": "sim", "type": "sim"},
    ],
    "models": [
        {
            "name": "gpt-4o-mini",
            "provider": "openai",
            "input_per_mtok": 0.15,
            "output_per_mtok": 0.60,
            "cached_input_per_mtok": 0.075,
        },
        {
            "name": "claude-3-5-haiku",
            "provider": "sim",
            "input_per_mtok": 0.80,
            "output_per_mtok": 4.00,
        },
        {"name": "gpt-4o", "provider": "openai", "input_per_mtok": 2.50, "output_per_mtok": 10.00},
    ],
    "routes": [
        {
            "name": "auto",
            "strategy": "cost_aware",
            "candidates": ["gpt-4o-mini", "claude-3-5-haiku"],
            "fallbacks": ["gpt-4o"],
        }
    ],
    "organisation": {
        "business_lines": [{"name": "marketing", "projects": ["campaigns"]}],
        "task_types": ["chat"],
    },
    "keys": [
        {
            "id": "k_marketing",
            "hash": "sha256:" + "ab" * 32,
            "business_line": "marketing",
            "project": "campaigns",
        }
    ],
    "budgets": [
        {
            "id": "marketing-monthly",
            "scope": {"business_line": "marketing"},
            "limit_usd": 500,
            "action": "block",
        },
    ],
    "webhooks": [
        {
            "url": "https://hooks.example.com/t",
            "secret_env": "HOOK_SECRET",
            "events": ["budget.exceeded"],
        }
    ],
}


def write(tmp_path: Path, data: Any, name: str = "tollway.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def edit(fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    fn(data)
    return data
