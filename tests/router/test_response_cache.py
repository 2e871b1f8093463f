"""The response cache: the same request from the same scope is answered from memory — no
provider call, no cost, `cache_hit` in the ledger — through either protocol, plain or
streamed, and a caller can skip or refresh it; off unless tollway.yaml turns it on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from starlette.datastructures import Headers

from router.attribution import Attribution
from router.errors import InvalidRequest
from router.response_cache import Cached, ResponseCache
from router.schemas import ChatCompletionRequest, Usage
from tollway.config.schema import ResponseCache as CacheSettings

from .conftest import Stack, _config, fake_apps, run_stack
from .fakes import TEXT

HELLO = [{"role": "user", "content": "Hello upstream"}]


def _who(key: str = "k_a", line: str = "support") -> Attribution:
    return Attribution(line, "", "", "", key, "")


def _chat(**extra: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "gpt-4o", "messages": HELLO, **extra})


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def _cache(clock: Clock | None = None, **settings: Any) -> ResponseCache:
    config = CacheSettings(enabled=True, **settings)
    return ResponseCache(lambda: config, clock or Clock())


def _answer(text: str = "hi") -> Cached:
    return Cached.of({"choices": [{"message": {"content": text}}]}, Usage(input_tokens=5), "m", "p")


def test_what_makes_two_requests_the_same() -> None:
    cache = _cache()
    key = cache.lookup(_who(), _chat(), "use")
    assert key is not None
    assert cache.lookup(_who(), _chat(user="someone else", stream_options=None), "use") == key
    assert cache.lookup(_who(), _chat(temperature=0.7), "use") != key
    assert cache.lookup(_who(key="k_b"), _chat(), "use") != key  # scope: one key by default
    beta = _chat().ask_betas(("interleaved-thinking-2025-05-14",))  # a beta changes the answer
    assert cache.lookup(_who(), beta, "use") not in (key, None)
    lines = _cache(scope="business_line")
    assert lines.lookup(_who(key="k_a"), _chat(), "use") == lines.lookup(
        _who(key="k_b"), _chat(), "use"
    )
    assert cache.lookup(_who(), _chat(), "skip") is None
    off = ResponseCache(lambda: CacheSettings())
    assert off.lookup(_who(), _chat(), "use") is None
    assert off.mode(Headers({"x-tollway-cache": "nonsense"})) == "skip"  # off: not even read


def test_answers_expire_and_the_least_recently_used_go_first() -> None:
    clock = Clock()
    cache = _cache(clock, ttl_s=10, max_entries=2)
    a, b, c = (cache.lookup(_who(), _chat(temperature=t), "use") for t in (0.1, 0.2, 0.3))
    assert a and b and c
    cache.put(a, _answer("a"))
    cache.put(b, _answer("b"))
    assert cache.get(a) is not None  # a is now the most recently used
    cache.put(c, _answer("c"))
    assert (cache.get(a) is not None, cache.get(b), len(cache)) == (True, None, 2)
    clock.now += 11
    assert cache.get(a) is None and cache.get(c) is None


def test_large_answers_are_not_kept_and_refresh_does_not_read() -> None:
    cache = _cache(max_entry_bytes=1024)
    key = cache.lookup(_who(), _chat(), "use")
    assert key is not None
    cache.put(key, _answer("x" * 2000))
    assert cache.get(key) is None
    cache.put(key, _answer("short"))
    refresh = cache.lookup(_who(), _chat(), "refresh")
    assert refresh is not None and refresh.key == key.key and cache.get(refresh) is None
    assert cache.get(key) is not None


def test_the_caller_header_is_checked() -> None:
    cache = _cache()
    assert cache.mode(Headers({})) == "use"
    assert cache.mode(Headers({"x-tollway-cache": "Refresh"})) == "refresh"
    with pytest.raises(InvalidRequest):
        cache.mode(Headers({"x-tollway-cache": "always"}))


# --- through the proxy --------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def cached_stack(
    kafka_bootstrap: str, chdb_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    def config(urls: dict[str, str]):  # type: ignore[no-untyped-def]
        return _config(urls).model_copy(update={"cache": CacheSettings(enabled=True)})

    async with run_stack(
        kafka_bootstrap, chdb_path, tmp_path_factory.mktemp("cached"), fake_apps(), config
    ) as running:
        yield running


def _upstream_calls(stack: Stack, fake: str) -> int:
    return len(stack.fakes[fake].state.requests)  # type: ignore[attr-defined]


@pytest.mark.integration
async def test_the_same_question_twice_is_answered_once(cached_stack: Stack) -> None:
    stack = cached_stack
    client = openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)
    before = _upstream_calls(stack, "openai")
    first = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)  # type: ignore[arg-type]
    again = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)  # type: ignore[arg-type]
    assert _upstream_calls(stack, "openai") == before + 1
    assert "x-tollway-cache" not in first.headers
    assert (again.headers["x-tollway-cache"], again.headers["x-tollway-cost-usd"]) == ("hit", "0")
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content

    hit = await stack.row(again.headers["x-tollway-event-id"])
    miss = await stack.row(first.headers["x-tollway-event-id"])
    assert (hit["cache_hit"], hit["price_version"], Decimal(hit["cost"])) == (True, "cache", 0)
    assert (hit["model"], hit["provider"]) == (miss["model"], miss["provider"])
    assert (hit["input_tokens"], hit["output_tokens"]) == (
        miss["input_tokens"],
        miss["output_tokens"],
    )
    assert not miss["cache_hit"] and Decimal(miss["cost"]) > 0

    # skip asks the provider and leaves the cache alone; refresh asks and keeps the new answer
    await client.chat.completions.create(
        model="gpt-4o",
        messages=HELLO,
        extra_headers={"x-tollway-cache": "skip"},  # type: ignore[arg-type]
    )
    await client.chat.completions.create(
        model="gpt-4o",
        messages=HELLO,
        extra_headers={"x-tollway-cache": "refresh"},  # type: ignore[arg-type]
    )
    assert _upstream_calls(stack, "openai") == before + 3
    # a different question is a miss
    await client.chat.completions.create(model="gpt-4o", messages=HELLO, temperature=0.2)  # type: ignore[arg-type]
    assert _upstream_calls(stack, "openai") == before + 4


@pytest.mark.integration
async def test_anthropic_callers_and_embeddings_are_cached_too(cached_stack: Stack) -> None:
    stack = cached_stack
    claude = anthropic.AsyncAnthropic(base_url=stack.base_url, api_key=stack.key, max_retries=0)
    before = _upstream_calls(stack, "anthropic")
    texts = []
    for _ in range(2):
        message = await claude.messages.create(
            model="claude-sonnet-4",
            max_tokens=100,
            messages=HELLO,  # type: ignore[arg-type]
        )
        texts.append(message.content[0].text)  # type: ignore[union-attr]
    assert _upstream_calls(stack, "anthropic") == before + 1 and texts[0] == texts[1]

    client = openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)
    before = _upstream_calls(stack, "openai")
    vectors = [
        (await client.embeddings.create(model="text-embedding-3-small", input="hello"))
        .data[0]
        .embedding
        for _ in range(2)
    ]
    assert _upstream_calls(stack, "openai") == before + 1 and vectors[0] == vectors[1]


@pytest.mark.integration
async def test_an_unknown_cache_header_is_a_clear_400(cached_stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{cached_stack.base_url}/v1/chat/completions",
            headers={"authorization": f"Bearer {cached_stack.key}", "x-tollway-cache": "forever"},
            json={"model": "gpt-4o", "messages": HELLO},
        )
    assert answer.status_code == 400
    assert "x-tollway-cache" in answer.json()["error"]["message"]


async def _streamed_text(client: openai.AsyncOpenAI, **request: Any) -> tuple[str, dict[str, str]]:
    async with client.chat.completions.with_streaming_response.create(
        stream=True, **request
    ) as raw:
        text = ""
        async for chunk in await raw.parse():
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
        return text, dict(raw.headers)


@pytest.mark.integration
async def test_streams_are_cached_and_replayed(cached_stack: Stack) -> None:
    stack = cached_stack
    client = openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)
    question = {"model": "gpt-4o", "messages": HELLO, "temperature": 0.9}
    before = _upstream_calls(stack, "openai")
    first, first_headers = await _streamed_text(client, **question)
    again, headers = await _streamed_text(client, **question)  # the stream was kept whole
    plain = await client.chat.completions.create(**question)  # type: ignore[arg-type]
    assert _upstream_calls(stack, "openai") == before + 1
    assert first == again == plain.choices[0].message.content == TEXT
    assert "x-tollway-cache" not in first_headers and headers["x-tollway-cache"] == "hit"
    hit = await stack.row(headers["x-tollway-event-id"])
    assert (hit["cache_hit"], hit["stream"], Decimal(hit["cost"])) == (True, True, 0)
    assert hit["output_tokens"] > 0

    # a plain answer replays into an Anthropic stream, tool calls included
    tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
    claude = anthropic.AsyncAnthropic(base_url=stack.base_url, api_key=stack.key, max_retries=0)
    ask: dict[str, Any] = {
        "model": "claude-sonnet-4",
        "max_tokens": 100,
        "messages": HELLO,
        "tools": tools,
    }
    before = _upstream_calls(stack, "anthropic")
    answered = await claude.messages.create(**ask)
    async with claude.messages.stream(**ask) as stream:
        replayed = await stream.get_final_message()
    assert _upstream_calls(stack, "anthropic") == before + 1
    assert [b.type for b in replayed.content] == [b.type for b in answered.content]
    assert replayed.content[-1].input == answered.content[-1].input  # type: ignore[union-attr]

    # an answer with extended thinking is never replayed into a stream: it goes upstream
    thinking = {"type": "enabled", "budget_tokens": 1024}
    await claude.messages.create(**{**ask, "max_tokens": 2048, "tools": [], "thinking": thinking})
    async with claude.messages.stream(
        **{**ask, "max_tokens": 2048, "tools": [], "thinking": thinking}
    ) as stream:
        streamed = await stream.get_final_message()
    assert streamed.content[0].type == "thinking"
    assert _upstream_calls(stack, "anthropic") == before + 3
