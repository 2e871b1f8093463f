"""Every bad tollway.yaml is refused with a message naming the file, the field path and what
was expected; all problems are reported at once, and secret-looking values are never echoed."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tollway.config import ConfigError, TollwayConfig, load_config

from .config_helpers import edit, write

# (id, config, expected field path, expected explanation)
INVALID: list[tuple[str, Any, str, str]] = [
    (
        "unknown provider type",
        edit(lambda d: d["providers"][0].update(type="openia")),
        "providers[0] (openai).type",
        "Input should be 'openai', 'anthropic'",
    ),
    (
        "a credential in a provider's headers",
        edit(lambda d: d["providers"][0].update(headers={"Authorization": "Bearer sk-x"})),
        "providers[0] (openai).headers",
        "headers may not set Authorization: credentials come from api_key_env",
    ),
    (
        "a provider header that is no header name",
        edit(lambda d: d["providers"][0].update(headers={"OpenAI Organization": "org-1"})),
        "providers[0] (openai).headers",
        "not a header name: OpenAI Organization",
    ),
    (
        "a provider header value with a line break",
        edit(lambda d: d["providers"][0].update(headers={"OpenAI-Organization": "org-1\nX: y"})),
        "providers[0] (openai).headers",
        "a header value may not contain a line break: OpenAI-Organization",
    ),
    (
        "a base_url without a scheme",
        edit(lambda d: d["providers"][0].update(base_url="localhost:8000/v1")),
        "providers[0] (openai).base_url",
        "base_url must be an http:// or https:// URL naming a host",
    ),
    (
        "model with unknown provider",
        edit(lambda d: d["models"][1].update(provider="anthropic")),
        "models[1] (claude-3-5-haiku).provider",
        "unknown provider 'anthropic'",
    ),
    (
        "route with unknown candidate",
        edit(lambda d: d["routes"][0]["candidates"].append("gpt-5")),
        "routes[0] (auto).candidates[2]",
        "unknown model 'gpt-5'",
    ),
    (
        "duplicate model names",
        edit(lambda d: d["models"].append(copy.deepcopy(d["models"][0]))),
        "models[3] (gpt-4o-mini)",
        "duplicate name 'gpt-4o-mini'",
    ),
    (
        "negative price",
        edit(lambda d: d["models"][2].update(input_per_mtok=-2.5)),
        "models[2] (gpt-4o).input_per_mtok",
        "greater than or equal to 0 (got -2.5)",
    ),
    (
        "only the input price",
        edit(lambda d: d["models"][2].pop("output_per_mtok")),
        "models[2] (gpt-4o)",
        "give both input_per_mtok and output_per_mtok",
    ),
    (
        "per-1K price",
        edit(lambda d: d["models"][2].update(input_per_mtok=0.0025, output_per_mtok=0.01)),
        "models[2] (gpt-4o).input_per_mtok",
        "looks like a per-1K-token price: tollway prices are USD per 1M tokens",
    ),
    (
        "price far above the family range",
        edit(lambda d: d["models"][0].update(output_per_mtok=60)),
        "models[0] (gpt-4o-mini).output_per_mtok",
        "far above the plausible range for the gpt-4o-mini family",
    ),
    (
        "catch-all bound",
        edit(
            lambda d: d["models"].append(
                {"name": "mystery", "provider": "sim", "input_per_mtok": 900, "output_per_mtok": 1}
            )
        ),
        "models[3] (mystery).input_per_mtok",
        "plausible range for any model (0..500",
    ),
    (
        "budget scoping an unpriced model",
        edit(
            lambda d: (
                d["models"].append({"name": "llama-local", "provider": "sim"}),
                d["budgets"].append(
                    {"id": "llama", "scope": {"model": "llama-local"}, "limit_usd": 10}
                ),
                d["budgets"].pop(0),
            )
        ),
        "budgets[0] (llama).scope.model",
        "limits spend on model 'llama-local', which has no price",
    ),
    (
        "unscoped budget with an unpriced model",
        edit(lambda d: d["models"].append({"name": "llama-local", "provider": "sim"})),
        "models[3] (llama-local).input_per_mtok",
        "budget 'marketing-monthly' (budgets[0]) counts every model's spend",
    ),
    (
        "budget scoping an unknown model",
        edit(lambda d: d["budgets"][0]["scope"].update(model="gpt-5")),
        "budgets[0] (marketing-monthly).scope.model",
        "unknown model 'gpt-5'",
    ),
    (
        "guardrail with an unknown detector",
        edit(lambda d: d.update(guardrails=[{"id": "pii", "detect": ["passport"]}])),
        "guardrails[0] (pii).detect[0]",
        "Input should be 'secrets', 'email', 'phone', 'credit_card' or 'iban'",
    ),
    (
        "guardrail pattern that is no regular expression",
        edit(lambda d: d.update(guardrails=[{"id": "words", "patterns": ["ok", "(unclosed"]}])),
        "guardrails[0] (words).patterns",
        "pattern 2 is not a regular expression: missing ), unterminated subpattern",
    ),
    (
        "guardrail looking for nothing",
        edit(lambda d: d.update(guardrails=[{"id": "idle", "action": "flag"}])),
        "guardrails[0] (idle)",
        "a guardrail needs `detect` or `patterns`",
    ),
    (
        "guardrail blocking answers",
        edit(
            lambda d: d.update(
                guardrails=[{"id": "out", "detect": ["email"], "applies_to": ["prompt", "answer"]}]
            )
        ),
        "guardrails[0] (out)",
        "an answer can be redacted or flagged, not blocked: it has been paid for",
    ),
    (
        "guardrail scoped to an unknown route",
        edit(
            lambda d: d.update(
                guardrails=[{"id": "g", "detect": ["email"], "scope": {"model": "autopilot"}}]
            )
        ),
        "guardrails[0] (g).scope.model",
        "unknown model or route 'autopilot'",
    ),
    (
        "bad time zone",
        edit(lambda d: d["budgets"][0].update(timezone="Paris")),
        "budgets[0] (marketing-monthly).timezone",
        "unknown time zone 'Paris' (use an IANA name",
    ),
    (
        "downgrade without downgrade_to",
        edit(lambda d: d["budgets"][0].update(action="downgrade")),
        "budgets[0] (marketing-monthly)",
        "action 'downgrade' needs downgrade_to",
    ),
    (
        "downgrade to an unknown model",
        edit(lambda d: d["budgets"][0].update(action="downgrade", downgrade_to="gpt-3")),
        "budgets[0] (marketing-monthly).downgrade_to",
        "unknown model or route 'gpt-3'",
    ),
    (
        "unknown top-level key",
        edit(lambda d: d.update(budgtes=[])),
        "budgtes",
        "unknown field 'budgtes': did you mean 'budgets'?",
    ),
    (
        "unknown nested key",
        edit(lambda d: d["models"][0].update(input_per_1k=0.1)),
        "models[0] (gpt-4o-mini).input_per_1k",
        "unknown field 'input_per_1k'",
    ),
    (
        "YAML syntax error",
        "providers:\n  - name: sim\n    type: [sim\nmodels: []\n",
        "",
        "YAML syntax error at line 4, column 7",
    ),
    (
        "key hash not sha256",
        edit(lambda d: d["keys"][0].update(hash="md5:abc")),
        "keys[0] (k_marketing).hash",
        "String should match pattern '^sha256:",
    ),
    (
        "webhook without secret_env",
        edit(lambda d: d["webhooks"][0].pop("secret_env")),
        "webhooks[0].secret_env",
        "required field 'secret_env' is missing",
    ),
    (
        "key in an unknown business line",
        edit(lambda d: d["keys"][0].update(business_line="sales")),
        "keys[0] (k_marketing).business_line",
        "unknown business line 'sales' (declared: marketing)",
    ),
    (
        "budget on an unknown project",
        edit(lambda d: d["budgets"][0]["scope"].update(project="seo")),
        "budgets[0] (marketing-monthly).scope.project",
        "unknown project 'seo' in business line 'marketing'",
    ),
    (
        "price history with two points on one date",
        edit(
            lambda d: d["models"][2].update(
                price_effective_from="2024-08-06",
                price_history=[
                    {"effective_from": "2024-08-06", "input_per_mtok": 5, "output_per_mtok": 15}
                ],
            )
        ),
        "models[2] (gpt-4o).price_effective_from",
        "two prices of 'gpt-4o' take effect on 2024-08-06",
    ),
    (
        "top level is a list",
        "- providers\n- models\n",
        "",
        "the top level must be a mapping of sections",
    ),
    (
        "duplicate section",
        "budgets: []\nmodels: []\nbudgets: []\n",
        "budgets",
        "duplicate key",
    ),
]


@pytest.mark.parametrize(
    ("config", "path", "expected"),
    [pytest.param(c, p, e, id=i) for i, c, p, e in INVALID],
)
def test_invalid_config_is_refused(tmp_path: Path, config: Any, path: str, expected: str) -> None:
    file = write(tmp_path, config)
    with pytest.raises(ConfigError) as info:
        load_config(file)
    text = str(info.value)
    assert str(file) in text
    matching = [line for line in text.splitlines() if expected in line]
    assert matching, f"{expected!r} not in:\n{text}"
    assert any(f": {path}: " in line or not path for line in matching), text
    assert all(line.startswith(str(file)) for line in text.splitlines())
    assert all(issue.message for issue in info.value.issues)


def test_all_errors_are_collected(tmp_path: Path) -> None:
    data = edit(
        lambda d: (
            d["models"][0].update(provider="nope"),
            d["models"][1].update(provider="nada"),
            d["routes"][0].update(fallbacks=["gpt-9"]),
        )
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data))
    paths = [issue.path for issue in info.value.issues]
    assert paths == [
        "models[0] (gpt-4o-mini).provider",
        "models[1] (claude-3-5-haiku).provider",
        "routes[0] (auto).fallbacks[0]",
    ]
    assert len(str(info.value).splitlines()) == 3


def test_error_lines_point_into_the_file(tmp_path: Path) -> None:
    text = (
        "providers:\n"
        "  - name: sim\n"
        "    type: sim\n"
        "models:\n"
        "  - name: gpt-4o\n"
        "    provider: sim\n"
        "    input_per_mtok: 0.0025\n"
        "    output_per_mtok: 0.01\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert [(i.path, i.line) for i in info.value.issues] == [
        ("models[0] (gpt-4o).input_per_mtok", 7),
        ("models[0] (gpt-4o).output_per_mtok", 8),
    ]


def test_secret_looking_values_are_never_echoed(tmp_path: Path) -> None:
    leaked = "sk-proj-THISISASECRET"
    data = edit(
        lambda d: (
            d["providers"][0].update(api_key_env=leaked),
            d["providers"][0].update(api_key=leaked),
            d["providers"][0].update(headers={"Authorization": f"Bearer {leaked}"}),
            d["webhooks"][0].update(secret_env=leaked),
        )
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data))
    text = str(info.value)
    assert "providers[0] (openai).api_key_env" in text
    assert "providers[0] (openai).api_key: unknown field" in text
    assert "webhooks[0].secret_env" in text
    assert "providers[0] (openai).headers: headers may not set Authorization" in text
    assert leaked not in text


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: tmp / "absent.yaml", "file not found"),
        (lambda tmp: tmp, "is a directory"),
    ],
    ids=["missing", "directory"],
)
def test_unreadable_files(tmp_path: Path, make: Callable[[Path], Path], expected: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ConfigError, match=expected) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_empty_file_is_an_empty_config(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == TollwayConfig()


def test_zero_and_explicit_custom_family_are_allowed(tmp_path: Path) -> None:
    data = edit(
        lambda d: d["models"].extend(
            [
                {
                    "name": "gpt-4o-selfhosted",
                    "provider": "sim",
                    "input_per_mtok": 0,
                    "output_per_mtok": 0,
                },
                {
                    "name": "gpt-4o-premium",
                    "provider": "sim",
                    "family": "custom",
                    "input_per_mtok": 100,
                    "output_per_mtok": 400,
                },
            ]
        )
    )
    cfg = load_config(write(tmp_path, data))
    assert len(cfg.models) == 5
