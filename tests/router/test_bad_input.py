"""Bad input, table-driven: each case gets the caller's protocol error shape and the right 4xx.

OpenAI's shape on `/v1/chat/completions` and `/v1/embeddings` (`{"error": {"type", "message",
...}}`), Anthropic's on `/v1/messages` (`{"type": "error", "error": {"type", "message"}}`);
never a 500, and the server keeps serving afterwards. The schemathesis run at the end fuzzes
the three endpoints from the app's own OpenAPI document and asserts no 5xx.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.router.conftest import Stack

OPENAI = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
RESPONSES = "/v1/responses"
ANTHROPIC = "/v1/messages"
COUNT = "/v1/messages/count_tokens"
KEY = object()  # placeholder for the stack's valid key
MIB = 1024 * 1024

GOOD_OPENAI = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
GOOD_EMBEDDINGS = {"model": "sim-embed", "input": ["hello", "world"]}
GOOD_ANTHROPIC = {
    "model": "gpt-4o-mini",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    body: bytes | dict[str, Any] | list[Any] | None
    status: int
    error_type: str
    headers: dict[str, Any] = field(default_factory=lambda: {"key": KEY})
    method: str = "POST"
    chunked: bool = False


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not ...}


def _big(base: dict[str, Any], size: int) -> dict[str, Any]:
    return _with(base, messages=[{"role": "user", "content": "x" * size}])


CASES = [
    # --- OpenAI protocol ---
    Case("oa-malformed-json", OPENAI, b'{"model": "gpt-4o-mini", "messages": [', 400, "invalid_request_error"),
    Case("oa-not-utf8", OPENAI, b"\xff\xfe\x00{", 400, "invalid_request_error"),
    Case("oa-empty-body", OPENAI, b"", 400, "invalid_request_error"),
    Case("oa-json-array", OPENAI, [1, 2], 400, "invalid_request_error"),
    Case("oa-json-string", OPENAI, b'"hello"', 400, "invalid_request_error"),
    Case("oa-missing-messages", OPENAI, _with(GOOD_OPENAI, messages=...), 400, "invalid_request_error"),
    Case("oa-empty-messages", OPENAI, _with(GOOD_OPENAI, messages=[]), 400, "invalid_request_error"),
    Case("oa-messages-string", OPENAI, _with(GOOD_OPENAI, messages="hi"), 400, "invalid_request_error"),
    Case("oa-bad-role", OPENAI, _with(GOOD_OPENAI, messages=[{"role": "x", "content": "a"}]), 400, "invalid_request_error"),
    Case("oa-model-number", OPENAI, _with(GOOD_OPENAI, model=42), 400, "invalid_request_error"),
    Case("oa-max-tokens-text", OPENAI, _with(GOOD_OPENAI, max_tokens="ten"), 400, "invalid_request_error"),
    Case("oa-max-tokens-zero", OPENAI, _with(GOOD_OPENAI, max_tokens=0), 400, "invalid_request_error"),
    Case("oa-temperature-range", OPENAI, _with(GOOD_OPENAI, temperature=7), 400, "invalid_request_error"),
    Case("oa-stream-object", OPENAI, _with(GOOD_OPENAI, stream={"a": 1}), 400, "invalid_request_error"),
    Case("oa-unknown-model", OPENAI, _with(GOOD_OPENAI, model="no-such-model"), 404, "invalid_request_error"),
    Case("oa-no-key", OPENAI, GOOD_OPENAI, 401, "authentication_error", headers={}),
    Case("oa-wrong-key", OPENAI, GOOD_OPENAI, 401, "authentication_error", headers={"authorization": "Bearer tw-nope"}),
    Case("oa-too-large", OPENAI, _big(GOOD_OPENAI, 5 * MIB), 413, "invalid_request_error"),
    Case("oa-too-large-chunked", OPENAI, _big(GOOD_OPENAI, 5 * MIB), 413, "invalid_request_error", chunked=True),
    Case("oa-wrong-method", OPENAI, None, 405, "invalid_request_error", method="GET"),
    # --- OpenAI embeddings ---
    Case("em-malformed-json", EMBEDDINGS, b'{"model": "sim-embed", "input": [', 400, "invalid_request_error"),
    Case("em-missing-input", EMBEDDINGS, _with(GOOD_EMBEDDINGS, input=...), 400, "invalid_request_error"),
    Case("em-empty-text", EMBEDDINGS, _with(GOOD_EMBEDDINGS, input=""), 400, "invalid_request_error"),
    Case("em-empty-list", EMBEDDINGS, _with(GOOD_EMBEDDINGS, input=[]), 400, "invalid_request_error"),
    Case("em-mixed-list", EMBEDDINGS, _with(GOOD_EMBEDDINGS, input=["a", 1]), 400, "invalid_request_error"),
    Case("em-negative-token", EMBEDDINGS, _with(GOOD_EMBEDDINGS, input=[-1]), 400, "invalid_request_error"),
    Case("em-input-object", EMBEDDINGS, _with(GOOD_EMBEDDINGS, input={"text": "a"}), 400, "invalid_request_error"),
    Case("em-too-many-inputs", EMBEDDINGS, _with(GOOD_EMBEDDINGS, input=["a"] * 2049), 400, "invalid_request_error"),
    Case("em-bad-format", EMBEDDINGS, _with(GOOD_EMBEDDINGS, encoding_format="binary"), 400, "invalid_request_error"),
    Case("em-zero-dimensions", EMBEDDINGS, _with(GOOD_EMBEDDINGS, dimensions=0), 400, "invalid_request_error"),
    Case("em-chat-model", EMBEDDINGS, _with(GOOD_EMBEDDINGS, model="gpt-4o-mini"), 400, "invalid_request_error"),
    Case("em-unknown-model", EMBEDDINGS, _with(GOOD_EMBEDDINGS, model="no-such-model"), 404, "invalid_request_error"),
    Case("em-no-key", EMBEDDINGS, GOOD_EMBEDDINGS, 401, "authentication_error", headers={}),
    Case("rs-no-input", RESPONSES, {"model": "gpt-4o-mini"}, 400, "invalid_request_error"),
    Case("rs-empty-input", RESPONSES, {"model": "gpt-4o-mini", "input": []}, 400, "invalid_request_error"),
    Case("rs-item-not-object", RESPONSES, {"model": "gpt-4o-mini", "input": ["hi"]}, 400, "invalid_request_error"),
    Case("rs-bad-role", RESPONSES, {"model": "gpt-4o-mini", "input": [{"role": "robot", "content": "x"}]}, 400, "invalid_request_error"),
    Case("rs-bad-part", RESPONSES, {"model": "gpt-4o-mini", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, 400, "invalid_request_error"),
    Case("rs-unknown-model", RESPONSES, {"model": "no-such-model", "input": "hi"}, 404, "invalid_request_error"),
    Case("rs-no-key", RESPONSES, {"model": "gpt-4o-mini", "input": "hi"}, 401, "authentication_error", headers={}),
    Case("em-too-large", EMBEDDINGS, _with(GOOD_EMBEDDINGS, input="x" * (5 * MIB)), 413, "invalid_request_error"),
    # --- Anthropic protocol ---
    Case("an-malformed-json", ANTHROPIC, b'{"model": ', 400, "invalid_request_error"),
    Case("an-not-utf8", ANTHROPIC, b"\xc3\x28", 400, "invalid_request_error"),
    Case("an-json-array", ANTHROPIC, [], 400, "invalid_request_error"),
    Case("an-missing-max-tokens", ANTHROPIC, _with(GOOD_ANTHROPIC, max_tokens=...), 400, "invalid_request_error"),
    Case("an-max-tokens-text", ANTHROPIC, _with(GOOD_ANTHROPIC, max_tokens="many"), 400, "invalid_request_error"),
    Case("an-system-role", ANTHROPIC, _with(GOOD_ANTHROPIC, messages=[{"role": "system", "content": "a"}]), 400, "invalid_request_error"),
    Case("an-content-number", ANTHROPIC, _with(GOOD_ANTHROPIC, messages=[{"role": "user", "content": 5}]), 400, "invalid_request_error"),
    Case("an-empty-content-blocks", ANTHROPIC, _with(GOOD_ANTHROPIC, messages=[{"role": "user", "content": []}]), 400, "invalid_request_error"),
    Case("an-temperature-range", ANTHROPIC, _with(GOOD_ANTHROPIC, temperature=1.5), 400, "invalid_request_error"),
    Case("an-unknown-model", ANTHROPIC, _with(GOOD_ANTHROPIC, model="claude-nope"), 404, "not_found_error"),
    Case("an-no-key", ANTHROPIC, GOOD_ANTHROPIC, 401, "authentication_error", headers={}),
    Case("an-wrong-key", ANTHROPIC, GOOD_ANTHROPIC, 401, "authentication_error", headers={"x-api-key": "nope"}),
    Case("an-bad-version", ANTHROPIC, GOOD_ANTHROPIC, 400, "invalid_request_error", headers={"key": KEY, "anthropic-version": "1999-01-01"}),
    Case("an-garbled-version", ANTHROPIC, GOOD_ANTHROPIC, 400, "invalid_request_error", headers={"key": KEY, "anthropic-version": "latest"}),
    Case("an-too-large", ANTHROPIC, _big(GOOD_ANTHROPIC, 5 * MIB), 413, "request_too_large"),
    Case("an-too-large-chunked", ANTHROPIC, _big(GOOD_ANTHROPIC, 5 * MIB), 413, "request_too_large", chunked=True),
    Case("ct-no-messages", COUNT, {"model": "gpt-4o-mini"}, 400, "invalid_request_error"),
    Case("ct-unknown-model", COUNT, _with(GOOD_ANTHROPIC, model="claude-nope"), 404, "not_found_error"),
    Case("ct-no-key", COUNT, GOOD_ANTHROPIC, 401, "authentication_error", headers={}),
]  # fmt: skip


def _request_args(case: Case, key: str) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, value in case.headers.items():
        if value is KEY:
            anthropic = case.path.startswith(ANTHROPIC)
            headers["x-api-key" if anthropic else "authorization"] = (
                key if anthropic else f"Bearer {key}"
            )
        else:
            headers[name] = value
    if case.body is None:
        return {"headers": headers}
    raw = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
    headers["content-type"] = "application/json"
    if case.chunked:

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(raw), 64 * 1024):
                yield raw[start : start + 64 * 1024]

        return {"headers": headers, "content": chunks()}
    return {"headers": headers, "content": raw}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_bad_input(stack: Stack, case: Case) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        response = await http.request(case.method, case.path, **_request_args(case, stack.key))
    assert response.status_code == case.status, response.text[:500]
    body = response.json()
    if case.path.startswith(ANTHROPIC):
        assert body["type"] == "error"
        assert body["error"]["type"] == case.error_type
        assert body["error"]["message"]
    else:
        assert body["error"]["type"] == case.error_type
        assert body["error"]["message"] and "code" in body["error"]
    assert "Traceback" not in response.text


async def test_the_server_keeps_serving(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        for case in CASES[:5]:
            await http.request(case.method, case.path, **_request_args(case, stack.key))
        ok = await http.post(
            OPENAI, headers={"authorization": f"Bearer {stack.key}"}, json=GOOD_OPENAI
        )
        assert ok.status_code == 200
        ok = await http.post(ANTHROPIC, headers={"x-api-key": stack.key}, json=GOOD_ANTHROPIC)
        assert ok.status_code == 200


async def test_a_body_under_the_limit_is_served(stack: Stack) -> None:
    """3 MiB is under the 4 MiB default: the limit must not refuse ordinary large prompts."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
        ok = await http.post(
            OPENAI,
            headers={"authorization": f"Bearer {stack.key}"},
            json=_with(_big(GOOD_OPENAI, 3 * MIB), max_tokens=4),
        )
    assert ok.status_code == 200, ok.text[:300]


def _schemathesis() -> str | None:
    """The `st` command next to this interpreter (the dev extra installs it)."""
    return shutil.which("st", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(_schemathesis() is None, reason="schemathesis is not installed (dev extra)")
async def test_schemathesis_finds_no_server_errors(stack: Stack, tmp_path: Path) -> None:
    """Fuzz the protocol endpoints from the app's OpenAPI document: no answer may be a 5xx.

    Runs the CLI in a child process so the proxy keeps serving on this event loop."""
    command = [
        str(_schemathesis()),
        "--no-color",
        "run",
        f"{stack.base_url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--include-path-regex",
        "^/v1/(chat/completions|completions|embeddings|messages|messages/count_tokens|responses)$",
        "--header",
        f"Authorization: Bearer {stack.key}",
        "--max-examples",
        "60",
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    assert "Tested: 6" in text, text[-3000:]  # every endpoint was reached
