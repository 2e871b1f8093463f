"""One reasoning knob across providers.

Callers ask for reasoning in their protocol's words: OpenAI's `reasoning_effort` (`none`,
`minimal`, `low`, `medium`, `high`), the Responses API's `reasoning.effort`, or Anthropic's
`thinking` (`{"type": "enabled", "budget_tokens": N}` or `{"type": "disabled"}`). Each upstream
gets its own words, converted here, and only for a model whose catalogue entry has the
`reasoning` capability: other models' APIs refuse these fields, so they never see them.

Efforts and budgets convert by the table Google publishes for Gemini's OpenAI compatibility
(`low` 1,024 thinking tokens, `medium` 8,192, `high` 24,576), with `minimal` at 512 and `none`
at 0; a budget converts back to the smallest effort that covers it.

- Anthropic: a budget of at least 1,024 (its minimum) becomes `thinking`. Its `max_tokens`
  counts the thinking, as OpenAI's `max_completion_tokens` counts reasoning: a caller's cap
  stays the cap and the budget shrinks below it (no thinking under 1,025); without a cap the
  model's most output is the cap, and the thinking takes at most half of it.
- Gemini: `generationConfig.thinkingConfig.thinkingBudget`.
- OpenAI and OpenAI-compatible servers: `reasoning_effort`.

What a caller sends in its upstream's own words passes as it is (router/translate/anthropic.py
keeps `thinking` for Anthropic; `reasoning_effort` reaches OpenAI unchanged).
"""

from __future__ import annotations

from typing import Any

from router.schemas import ChatCompletionRequest
from tollway.config.schema import ModelConfig

#: thinking tokens per effort (Gemini's OpenAI-compatibility table, plus minimal and none)
EFFORT_BUDGETS: dict[str, int] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
}

#: the request fields that ask for reasoning, in either protocol's words
REASONING_FIELDS = frozenset({"thinking", "reasoning_effort"})

#: Anthropic's smallest thinking budget
ANTHROPIC_MIN_BUDGET = 1024


def reasons(model: ModelConfig) -> bool:
    return "reasoning" in model.capabilities


def requested_budget(request: ChatCompletionRequest) -> int | None:
    """The thinking budget the caller asked for, in tokens; 0 for none; None if it said
    nothing (or something this table does not know, which the upstream then never sees)."""
    extra = request.model_extra or {}
    thinking = extra.get("thinking")
    if isinstance(thinking, dict):
        if thinking.get("type") == "disabled":
            return 0
        budget = thinking.get("budget_tokens")
        return budget if isinstance(budget, int) and budget >= 0 else None
    effort = extra.get("reasoning_effort")
    return EFFORT_BUDGETS.get(effort) if isinstance(effort, str) else None


def effort_for(budget: int) -> str:
    """The smallest effort whose budget covers `budget`."""
    for effort, tokens in EFFORT_BUDGETS.items():
        if budget <= tokens:
            return effort
    return "high"


def anthropic_thinking(
    request: ChatCompletionRequest, model: ModelConfig, max_tokens: int
) -> tuple[dict[str, Any] | None, int]:
    """`thinking` for an Anthropic request converted from `reasoning_effort`, and the request's
    `max_tokens` with room for it; (None, max_tokens) when there is nothing to convert."""
    extra = request.model_extra or {}
    if "thinking" in extra or not reasons(model):
        return None, max_tokens
    budget = requested_budget(request)
    if not budget:
        return None, max_tokens
    if request.output_limit:  # the caller's cap holds: the thinking fits under it
        budget = min(budget, max_tokens - 1)
    elif model.max_output_tokens:  # max_tokens is the model's most: half of it for thinking
        budget = min(budget, max_tokens // 2)
    else:
        max_tokens += budget
    if budget < ANTHROPIC_MIN_BUDGET:
        return None, max_tokens
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


def gemini_thinking(request: ChatCompletionRequest, model: ModelConfig) -> dict[str, Any] | None:
    """`thinkingConfig` for a Gemini request, or None."""
    budget = requested_budget(request)
    if budget is None or not reasons(model):
        return None
    return {"thinkingBudget": budget}


def openai_effort(request: ChatCompletionRequest, model: ModelConfig) -> str | None:
    """`reasoning_effort` for an OpenAI-compatible request, or None (also: drop the caller's
    `reasoning_effort` for a model without reasoning)."""
    if not reasons(model):
        return None
    extra = request.model_extra or {}
    effort = extra.get("reasoning_effort")
    if isinstance(effort, str):
        return effort
    budget = requested_budget(request)
    return None if budget is None else effort_for(budget)
