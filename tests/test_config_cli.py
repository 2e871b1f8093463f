"""`tollway config check` and `tollway config show`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tollway.cli.config_cmd import app
from tollway.config import load_config
from tollway.config.loader import parse_config

from .config_helpers import CONFIGS


def test_cli_check_good_file() -> None:
    result = CliRunner().invoke(app, ["check", str(CONFIGS / "minimal.yaml")])
    assert result.exit_code == 0, result.output
    assert "✓" in result.output
    assert (
        "minimal.yaml: 1 providers, 1 models, 0 routes, 0 keys, 1 budgets, 0 guardrails"
        in result.output
    )


def test_cli_check_defaults_to_env_then_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOLLWAY_CONFIG", raising=False)
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert (
        "demo.yaml: 1 providers, 6 models, 2 routes, 0 keys, 2 budgets, 0 guardrails"
        in result.output
    )
    monkeypatch.setenv("TOLLWAY_CONFIG", str(CONFIGS / "minimal.yaml"))
    result = CliRunner().invoke(app, ["check"])
    assert "minimal.yaml" in result.output


def test_cli_check_bad_file() -> None:
    bad = CONFIGS / "per_1k_prices.yaml"
    result = CliRunner().invoke(app, ["check", str(bad)])
    assert result.exit_code == 1
    assert "2 problems" in result.output
    assert f"{bad}:" in result.output
    assert "looks like a per-1K-token price" in result.output


def test_cli_show_and_help() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["show", "--no-defaults"])
    assert result.exit_code == 0, result.output
    assert parse_config(result.output) == load_config()
    for args in (["--help"], ["check", "--help"], ["show", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0
        assert "Usage" in result.output
