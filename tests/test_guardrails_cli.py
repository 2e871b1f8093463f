"""`tollway guardrails list|test` as an operator tuning a pattern meets it: the table of
guardrails, and what they would do to a text — offline, with the attribution given."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner, Result

from tollway.cli.main import app
from tollway.config import load_config

GUARDRAILS = [
    {"id": "no-secrets", "detect": ["secrets"], "action": "block"},
    {"id": "pii", "detect": ["email"], "action": "redact", "scope": {"business_line": "support"}},
]


def _config_file(tmp_path: Path) -> str:
    config = load_config(None).model_dump(mode="json", exclude_none=True)
    path = tmp_path / "tollway.yaml"
    path.write_text(yaml.safe_dump({**config, "guardrails": GUARDRAILS}))
    return str(path)


def _tollway(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["guardrails", *args, "--config", _config_file(tmp_path)])


def test_a_text_is_screened_as_a_proxy_would(tmp_path: Path) -> None:
    redacted = _tollway(tmp_path, "test", "mail ann@example.com", "--business-line", "support")
    assert redacted.exit_code == 0, redacted.output
    assert "pii (redact): an email address" in redacted.output
    assert "sent: mail [REDACTED:email]" in redacted.output

    elsewhere = _tollway(tmp_path, "test", "mail ann@example.com", "--business-line", "marketing")
    assert "no guardrail matched" in elsewhere.output  # out of the redaction's scope

    refused = _tollway(tmp_path, "test", "key AKIAIOSFODNN7EXAMPLE")
    assert refused.exit_code == 2
    assert "refused, 400 guardrail_blocked" in refused.output
    assert "AKIAIOSFODNN7EXAMPLE" not in refused.output.split("refused")[1]


def test_the_list_says_what_each_does(tmp_path: Path) -> None:
    path = _config_file(tmp_path)
    listed = CliRunner().invoke(app, ["guardrails", "list", path], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "no-secrets" in listed.output and "every call" in listed.output
    assert "business_line=support" in listed.output
