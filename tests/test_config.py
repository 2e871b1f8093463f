"""tollway.yaml loading: the demo and base configs are valid and round-trip through YAML; the
fixture files load (the refusals are in test_config_errors.py, the CLI in test_config_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollway.config import ConfigError, TollwayConfig, load_config
from tollway.config.loader import DEMO_CONFIG, dump_config, parse_config

from .config_helpers import BASE, CONFIGS, write


def test_demo_config_loads() -> None:
    cfg = load_config()
    assert isinstance(cfg, TollwayConfig)
    assert [p.type for p in cfg.providers] == ["sim"]
    assert cfg.providers[0].sim.latency_ms == 25
    assert {m.name for m in cfg.models} >= {
        "gpt-4o-mini",
        "gpt-4o",
        "claude-3-5-haiku",
        "claude-sonnet-4",
        "gemini-2.0-flash",
        "text-embedding-3-small",
    }
    assert all(m.priced for m in cfg.models)
    assert len(cfg.model("gpt-4o").price_points()) == 2  # type: ignore[union-attr]
    assert {r.name for r in cfg.routes} == {"auto", "smart"}
    assert sum(len(b.projects) for b in cfg.organisation.business_lines) == 3
    assert cfg.organisation.task_types == ["chat", "summarisation", "classification", "retrieval"]
    assert cfg.keys == [] and cfg.webhooks == []
    assert cfg.logging.content is False
    assert load_config(DEMO_CONFIG) == cfg


def test_base_fixture_is_valid(tmp_path: Path) -> None:
    load_config(write(tmp_path, BASE))


def test_dump_round_trips() -> None:
    cfg = load_config()
    assert parse_config(dump_config(cfg)) == cfg
    assert parse_config(dump_config(cfg, defaults=False)) == cfg


def test_fixture_files() -> None:
    load_config(CONFIGS / "minimal.yaml")
    with pytest.raises(ConfigError, match=r"models\[0\] \(gpt-4o-mini\)\.input_per_mtok"):
        load_config(CONFIGS / "per_1k_prices.yaml")
