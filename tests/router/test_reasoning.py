"""One reasoning knob across providers: OpenAI's `reasoning_effort` (and the Responses API's
`reasoning.effort`) and Anthropic's `thinking` reach each upstream in its own words — Anthropic
`thinking` within `max_tokens`, Gemini `thinkingConfig`, OpenAI `reasoning_effort` — for models
with the `reasoning` capability only; the fakes refuse what the real APIs refuse."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from router.schemas import ChatCompletionRequest
from router.translate.reasoning import anthropic_thinking, effort_for, requested_budget
from tollway.config.schema import ModelConfig

from .conftest import Stack
from .fakes import THINKING_BLOCK

HELLO = [{"role": "user", "content": "Hello upstream"}]
THINKER = ModelConfig(
    name="t", provider="p", input_per_mtok=1, output_per_mtok=1, max_output_tokens=16000,
    capabilities=["reasoning"],
)  # fmt: skip


def _request(**extra: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "t", "messages": HELLO, **extra})


@pytest.mark.parametrize(
    ("extra", "budget"),
    [
        ({"reasoning_effort": "low"}, 1024),
        ({"reasoning_effort": "high"}, 24576),
        ({"reasoning_effort": "none"}, 0),
        ({"reasoning_effort": "extreme"}, None),  # unknown: the upstream sees nothing
        ({"thinking": {"type": "enabled", "budget_tokens": 3000}}, 3000),
        ({"thinking": {"type": "disabled"}}, 0),
        ({}, None),
    ],
)
def test_the_budget_a_caller_asked_for(extra: dict[str, Any], budget: int | None) -> None:
    assert requested_budget(_request(**extra)) == budget


def test_a_budget_converts_to_the_smallest_effort_that_covers_it() -> None:
    assert [effort_for(b) for b in (0, 300, 1024, 3000, 8192, 20000, 99999)] == [
        "none", "minimal", "low", "medium", "medium", "high", "high",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "max_tokens", "thinking", "sent_max"),
    [
        ({"reasoning_effort": "medium"}, 16000, 8000, 16000),  # uncapped: half the most
        ({"reasoning_effort": "high", "max_tokens": 3000}, 3000, 2999, 3000),  # the cap holds
        ({"reasoning_effort": "low", "max_tokens": 1000}, 1000, None, 1000),  # no room: none
        ({"reasoning_effort": "minimal"}, 16000, None, 16000),  # below Anthropic's 1,024
    ],
)
def test_anthropic_thinking_fits_under_max_tokens(
    extra: dict[str, Any], max_tokens: int, thinking: int | None, sent_max: int
) -> None:
    sent, sent_max_tokens = anthropic_thinking(_request(**extra), THINKER, max_tokens)
    assert (sent or {}).get("budget_tokens") == thinking
    assert sent_max_tokens == sent_max


# --- through the proxy, with the SDKs ---------------------------------------------------------


def _openai(stack: Stack) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)


def _claude(stack: Stack) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=stack.base_url, api_key=stack.key, max_retries=0)


def _sent(stack: Stack, fake: str) -> dict[str, Any]:
    return stack.fakes[fake].state.requests[-1]["body"]  # type: ignore[no-any-return]


@pytest.mark.integration
async def test_reasoning_effort_thinks_on_a_claude_model(stack: Stack) -> None:
    answer = await _openai(stack).chat.completions.create(
        model="claude-thinker",
        messages=HELLO,
        reasoning_effort="low",  # type: ignore[arg-type]
    )
    sent = _sent(stack, "anthropic")
    assert (sent["thinking"], sent["max_tokens"]) == (
        {"type": "enabled", "budget_tokens": 1024}, 16000,
    )  # fmt: skip
    assert "reasoning_effort" not in sent
    extra = answer.choices[0].message.model_extra or {}
    assert extra["reasoning_content"] == THINKING_BLOCK["thinking"]

    # a cap is kept, streamed too; the fake refuses a budget that does not fit, as Anthropic does
    stream = await _openai(stack).chat.completions.create(
        model="claude-thinker", messages=HELLO, reasoning_effort="high", max_tokens=3000,  # type: ignore[arg-type]
        stream=True,
    )  # fmt: skip
    deltas = [c.choices[0].delta for c in [chunk async for chunk in stream] if c.choices]
    assert "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    sent = _sent(stack, "anthropic")
    assert (sent["thinking"]["budget_tokens"], sent["max_tokens"]) == (2999, 3000)

    await _openai(stack).chat.completions.create(
        model="claude-sonnet-4",
        messages=HELLO,
        reasoning_effort="medium",  # type: ignore[arg-type]
    )
    assert "thinking" not in _sent(stack, "anthropic")  # not a reasoning model in the catalogue


@pytest.mark.integration
async def test_thinking_becomes_reasoning_effort_on_an_openai_model(stack: Stack) -> None:
    thinking = {"type": "enabled", "budget_tokens": 3000}
    await _claude(stack).messages.create(
        model="o-thinker",
        max_tokens=4000,
        thinking=thinking,
        messages=HELLO,  # type: ignore[arg-type]
    )
    sent = _sent(stack, "openai")
    assert (sent["model"], sent["reasoning_effort"]) == ("o4-mini", "medium")
    assert "thinking" not in sent

    await _openai(stack).chat.completions.create(
        model="o-thinker",
        messages=HELLO,
        reasoning_effort="minimal",  # type: ignore[arg-type]
    )
    assert _sent(stack, "openai")["reasoning_effort"] == "minimal"  # its own words, as sent
    await _openai(stack).chat.completions.create(
        model="gpt-4o",
        messages=HELLO,
        reasoning_effort="high",  # type: ignore[arg-type]
    )
    assert "reasoning_effort" not in _sent(stack, "openai")  # OpenAI refuses it for gpt-4o

    await _openai(stack).responses.create(
        model="o-thinker", input="Hello upstream", reasoning={"effort": "high"}
    )
    assert _sent(stack, "openai")["reasoning_effort"] == "high"


@pytest.mark.integration
async def test_gemini_gets_a_thinking_budget(stack: Stack) -> None:
    await _claude(stack).messages.create(
        model="gemini-thinker", max_tokens=4000, messages=HELLO,  # type: ignore[arg-type]
        thinking={"type": "enabled", "budget_tokens": 2048},
    )  # fmt: skip
    assert _sent(stack, "gemini")["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 2048}
    await _openai(stack).chat.completions.create(
        model="gemini-thinker",
        messages=HELLO,
        reasoning_effort="none",  # type: ignore[arg-type]
    )
    assert _sent(stack, "gemini")["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}
    await _openai(stack).chat.completions.create(
        model="gemini-2.0-flash",
        messages=HELLO,
        reasoning_effort="high",  # type: ignore[arg-type]
    )
    assert "thinkingConfig" not in _sent(stack, "gemini").get("generationConfig", {})
