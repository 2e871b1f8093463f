"""`tollway routes list` and `tollway routes explain`, on the demo config."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from typer.testing import CliRunner, Result

from tollway.broker import free_port
from tollway.cli.main import app
from tollway.config.loader import DEMO_CONFIG
from tollway.server import serving

#: wide enough that no table cell wraps; no config or key from the environment
ENV = {"COLUMNS": "250", "TOLLWAY_CONFIG": None, "TOLLWAY_ADMIN_KEY": None}


def routes(*args: str) -> Result:
    return CliRunner().invoke(app, ["routes", *args], env=ENV)


def explain(*args: str) -> Result:
    return routes("explain", *args)


def row(output: str, model: str) -> str:
    """The table line of `model`."""
    return next(line for line in output.splitlines() if line.startswith(f"│ {model} "))


def test_classification_chooses_the_cheapest_of_its_rule() -> None:
    result = explain("--task-type", "classification", "--prompt-tokens", "1000", "--offline")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "route auto (cost_aware)" in out  # the first cost_aware route by default
    assert "no statistics (--offline): catalogue priors only" in out
    assert "chosen: gemini-2.0-flash" in out
    assert "candidates: task rule for classification" in out
    assert "order to try: gemini-2.0-flash → gpt-4o-mini → claude-3-5-haiku → gpt-4o" in out
    assert "reason: task classification: cost_aware: gemini-2.0-flash at $0.000305" in out
    # 1000 prompt tokens at $0.10/M + 512 assumed output tokens at $0.40/M: as the reason says
    assert "$0.000305" in row(out, "gemini-2.0-flash")
    assert "chosen" in row(out, "gemini-2.0-flash")
    assert "1,048,576" in row(out, "gemini-2.0-flash")
    assert "eligible #2" in row(out, "gpt-4o-mini")
    assert "fallback #4" in row(out, "gpt-4o")
    assert "claude-sonnet-4" not in out  # not a candidate of the classification rule
    assert "exploration 5%" in out and "exploit decision" in out


def test_explain_is_deterministic() -> None:
    args = ("-t", "chat", "-p", "2000", "--offline")
    assert explain(*args).output == explain(*args).output


def test_vision_excludes_the_model_without_it() -> None:
    result = explain(
        "auto", "-t", "classification", "-p", "1000", "--capability", "vision", "--offline"
    )
    assert result.exit_code == 0, result.output
    assert "capabilities: vision" in result.output
    assert "excluded: lacks vision" in row(result.output, "claude-3-5-haiku")
    assert "skipped claude-3-5-haiku (lacks vision)" in result.output
    assert "chosen: gemini-2.0-flash" in result.output


def test_a_long_prompt_excludes_the_128k_models() -> None:
    result = explain("-t", "chat", "--prompt-tokens", "150000", "--max-tokens", "1000", "--offline")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "1000 output tokens (--max-tokens)" in out
    for model in ("gpt-4o-mini", "gpt-4o"):
        assert "excluded: context 128000 < 151000" in row(out, model)
    assert "eligible #2" in row(out, "claude-3-5-haiku")
    assert "order to try: gemini-2.0-flash → claude-3-5-haiku → claude-sonnet-4" in out


def test_summarisation_uses_its_rules_floor() -> None:
    result = explain("-t", "summarisation", "-p", "1000", "--offline")
    assert result.exit_code == 0, result.output
    assert "quality floor 0.90 (task rule)" in result.output
    assert "reason: task summarisation: cost_aware:" in result.output
    chat = explain("-t", "chat", "-p", "1000", "--offline")
    assert "quality floor 0.80 (route)" in chat.output
    assert "reason: cost_aware:" in chat.output


def test_economy_tier_and_a_model_requested_directly() -> None:
    economy = explain("-t", "chat", "-p", "1000", "--economy", "--offline")
    assert "candidates: economy tier (gemini-2.0-flash, gpt-4o-mini)" in economy.output
    assert "reason: economy tier: cost_aware:" in economy.output
    direct = explain("claude-3-5-haiku", "-p", "1000", "-c", "vision", "--offline")
    assert direct.exit_code == 0, direct.output
    assert "reason: model requested directly" in direct.output
    assert "chosen (requested directly)" in row(direct.output, "claude-3-5-haiku")
    assert "claude-3-5-haiku cannot serve this request: lacks vision" in direct.output


def test_an_economy_tier_unable_to_serve_leaves_the_standard_plan(tmp_path: Path) -> None:
    demo = DEMO_CONFIG.read_text()
    economy = "economy: [gemini-2.0-flash, gpt-4o-mini]"
    assert economy in demo
    config = tmp_path / "tollway.yaml"
    config.write_text(demo.replace(economy, "economy: [gpt-4o-mini]"))
    result = explain(
        "-t", "chat", "-p", "150000", "--economy", "--offline", "--config", str(config)
    )
    assert result.exit_code == 0, result.output
    assert "the economy tier cannot serve this request (no model of route 'auto'" in result.output
    assert "candidates: route candidates" in result.output
    assert "chosen: gemini-2.0-flash" in result.output


def test_no_model_able_to_serve_shows_why_and_exits_1() -> None:
    result = explain("-p", "2000000", "--offline")
    assert result.exit_code == 1
    assert "excluded: context 1048576 < 2000512" in row(result.output, "gemini-2.0-flash")
    assert "no model of route 'auto' can serve this request" in result.output


def test_unknown_route_is_a_clear_error() -> None:
    result = explain("nope", "-p", "100", "--offline")
    assert result.exit_code == 1
    assert "unknown route 'nope'" in result.output
    assert "routes are auto, smart" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


def test_routes_list() -> None:
    result = routes("list")
    assert result.exit_code == 0, result.output
    out = result.output
    auto = row(out, "auto")
    assert "cost_aware" in auto
    assert "gemini-2.0-flash, gpt-4o-mini, claude-3-5-haiku, gpt-4o, claude-sonnet-4" in auto
    assert "classification: gemini-2.0-flash, gpt-4o-mini, claude-3-5-haiku" in auto
    assert "gpt-4o" in auto.rstrip("│ ").rsplit("│", 1)[1]  # fallbacks
    assert "summarisation: quality floor 0.90" in out
    assert "exploration 5%" in out
    assert "priority" in row(out, "smart")


def test_unreachable_server_falls_back_to_priors() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = explain("-t", "chat", "-p", "2000", "--url", url, "--key", "k")
    assert result.exit_code == 0, result.output
    assert f"no statistics (server not reachable at {url}): catalogue priors only" in result.output
    assert "chosen: gemini-2.0-flash" in result.output


def _stat(model: str, task_type: str, **figures: Any) -> dict[str, Any]:
    """A row of GET /v1/analytics/routing/stats (analytics/routes_routing.py STATS_COLUMNS)."""
    return {
        "route": "auto",
        "task_type": task_type,
        "model": model,
        "calls": 60,
        "success_rate": 1.0,
        "p50_latency_ms": 300.0,
        "p95_latency_ms": 800.0,
        "p50_ttft_ms": 120.0,
        "mean_cost_usd": "0.0004",
        "mean_score": None,
        "score_count": 0,
        **figures,
    }


def stats_app() -> FastAPI:
    api = FastAPI()

    @api.get("/v1/analytics/routing/stats")
    async def stats(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != "Bearer finops-key":
            error = {"type": "authentication_error", "message": "invalid key"}
            return JSONResponse({"error": error}, status_code=401)
        days = int(request.query_params.get("days", "7"))
        rows = [
            _stat("gemini-2.0-flash", "chat", mean_score=0.3, score_count=50),
            _stat("gemini-2.0-flash", "classification", mean_score=0.95, score_count=50),
            _stat("gpt-4o-mini", "chat", calls=40, p95_latency_ms=950.0, mean_score=0.9,
                  score_count=20),
        ]  # fmt: skip
        return JSONResponse({"days": days, "stats": rows})

    return api


async def test_statistics_exclude_a_model_below_the_quality_floor() -> None:
    async with serving(stats_app()) as url:
        args = ["-t", "chat", "-p", "2000", "--url", url]
        result = await asyncio.to_thread(explain, *args, "--key", "finops-key")
        refused = await asyncio.to_thread(explain, *args, "--key", "wrong")
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"statistics: 3 rows over the last 7 days from {url}" in out
    assert "chosen: gemini-2.0-flash" not in out
    assert "chosen: gpt-4o-mini" in out
    assert "order to try: gpt-4o-mini → claude-3-5-haiku → gpt-4o → claude-sonnet-4" in out
    quality = "quality 0.30 (n=50) < 0.80 on chat"
    assert f"skipped gemini-2.0-flash ({quality})" in out
    gemini = row(out, "gemini-2.0-flash")
    assert f"excluded: {quality}" in gemini
    assert "60 calls, p95 800 ms, score 0.30 (n=50)" in gemini
    mini = row(out, "gpt-4o-mini")
    assert "chosen" in mini and "40 calls, p95 950 ms, score 0.90 (n=20)" in mini
    assert "│ -" in row(out, "claude-3-5-haiku")  # no record
    assert "the statistics carry no output token counts" in out

    assert refused.exit_code == 0, refused.output
    assert f"no statistics ({url} answered HTTP 401: invalid key)" in refused.output
    assert "chosen: gemini-2.0-flash" in refused.output
