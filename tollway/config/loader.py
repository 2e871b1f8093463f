"""Load and validate tollway.yaml (placeholder: replaced by the config work)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tollway.config.schema import TollwayConfig

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")


class ConfigError(ValueError):
    pass


def load_config(path: Path | None = None) -> TollwayConfig:
    source = path or DEMO_CONFIG
    return TollwayConfig.model_validate(yaml.safe_load(source.read_text()) or {})
