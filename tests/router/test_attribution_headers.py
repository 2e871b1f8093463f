"""Attribution and sessions as an application sends them: `x-tollway-*` headers set once on an
SDK client reach every call's ledger row, and the calls that named one session are summed by
`GET /v1/analytics/sessions` and `tollway sessions`. Real Tansu broker, worker and chDB; the
OpenAI and Anthropic SDKs."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from decimal import Decimal

import anthropic
import httpx
import openai
import pytest

from tests.router.conftest import Stack

pytestmark = pytest.mark.integration

HEADERS = {
    "x-tollway-project": "agents",
    "x-tollway-task-type": "code",
    "x-tollway-user": "ada",
    "x-tollway-tag-ticket": "T-42",
    "x-tollway-session-id": "agent-run-1",
}


async def test_headers_reach_the_ledger_and_a_session_is_summed(stack: Stack) -> None:
    client = openai.AsyncOpenAI(
        base_url=f"{stack.base_url}/v1", api_key=stack.key, default_headers=HEADERS
    )
    plain = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Plan the change."}]
    )
    row = await stack.row(plain.headers["x-tollway-event-id"])
    assert (row["business_line"], row["project"], row["task_type"], row["user"]) == (
        "eng",  # the key's: a header never moves spend to another business line
        "agents",
        "code",
        "ada",
    )
    assert row["tags"] == {"ticket": "T-42"} and row["session_id"] == "agent-run-1"

    claude = anthropic.AsyncAnthropic(
        base_url=stack.base_url, api_key=stack.key, default_headers=HEADERS
    )
    async with claude.messages.stream(
        model="claude-sonnet-4",
        max_tokens=64,
        messages=[{"role": "user", "content": "Write the change."}],
    ) as stream:
        await stream.get_final_message()
        event_id = stream.response.headers["x-tollway-event-id"]
    streamed = await stack.row(event_id)
    assert streamed["session_id"] == "agent-run-1" and streamed["stream"]

    async with httpx.AsyncClient(
        base_url=stack.base_url, headers={"authorization": "Bearer tw-router-admin"}
    ) as admin:
        answer = await admin.get("/v1/analytics/sessions", params={"session_id": "agent-run-1"})
    [session] = answer.json()["sessions"]
    assert session["calls"] == 2
    assert Decimal(session["cost_usd"]) == Decimal(row["cost"]) + Decimal(streamed["cost"]) > 0
    assert session["models"] == sorted({row["model"], streamed["model"]})


async def test_a_call_without_a_session_names_none(stack: Stack) -> None:
    client = openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key)
    answer = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello."}]
    )
    assert (await stack.row(answer.headers["x-tollway-event-id"]))["session_id"] == ""


async def test_claude_codes_own_session_header_names_the_session(stack: Stack) -> None:
    """Claude Code (v2.1.86 on) sends `X-Claude-Code-Session-Id` with every request: its
    sessions are summed with no configuration."""
    claude = anthropic.AsyncAnthropic(
        base_url=stack.base_url,
        api_key=stack.key,
        default_headers={"X-Claude-Code-Session-Id": "54c1eb09-bc4c-4d2f-98eb-6d2ab2d5e2fe"},
    )
    answer = await claude.messages.with_raw_response.create(
        model="claude-sonnet-4", max_tokens=64, messages=[{"role": "user", "content": "Fix it."}]
    )
    row = await stack.row(answer.headers["x-tollway-event-id"])
    assert row["session_id"] == "claude-code:54c1eb09-bc4c-4d2f-98eb-6d2ab2d5e2fe"

    # the same session also packed in metadata.user_id, with the account: the user is the
    # account, not the packed text (older Claude Code sends only this)
    packed = '{"device_id":"d3v1ce","account_uuid":"acc-42","session_id":"older-run"}'
    plain = anthropic.AsyncAnthropic(base_url=stack.base_url, api_key=stack.key)
    answer = await plain.messages.with_raw_response.create(
        model="claude-sonnet-4",
        max_tokens=64,
        messages=[{"role": "user", "content": "Fix it."}],
        metadata={"user_id": packed},
    )
    row = await stack.row(answer.headers["x-tollway-event-id"])
    assert (row["user"], row["session_id"]) == ("acc-42", "claude-code:older-run")


async def test_the_cli_lists_sessions_and_shows_one(stack: Stack) -> None:
    client = openai.AsyncOpenAI(
        base_url=f"{stack.base_url}/v1",
        api_key=stack.key,
        default_headers={"x-tollway-session-id": "cli-run"},
    )
    rows = []
    for prompt in ("Plan.", "Write.", "Test."):
        answer = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
        )
        rows.append(await stack.row(answer.headers["x-tollway-event-id"]))
    cost = sum(Decimal(r["cost"]) for r in rows)

    async def tollway(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tollway.cli.main", "sessions", *args,
            "--url", stack.base_url, "--key", "tw-router-admin",
            env={**os.environ, "COLUMNS": "250"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate()
        return process.returncode or 0, output.decode()

    code, output = await tollway("list", "--json")
    assert code == 0, output
    listed = {s["session_id"]: s for s in json.loads(output)["sessions"]}
    assert Decimal(listed["cli-run"]["cost_usd"]) == cost and listed["cli-run"]["calls"] == 3
    code, output = await tollway("show", "cli-run")
    assert code == 0, output
    assert f"session cli-run: ${cost:,.4f} over 3 calls (0 failed)" in output
    assert output.count("gpt-4o-mini") == 3  # one line a call
    code, output = await tollway("show", "no-such-run")
    assert code == 1 and "no calls named session 'no-such-run'" in output
