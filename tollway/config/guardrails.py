"""Guardrails: what must not leave for a provider, checked on every prompt they cover.

A guardrail names what it looks for — built-in detectors (`secrets`, `email`, `phone`,
`credit_card`, `iban`: router/detectors.py) and its own regular expressions — the calls it
covers (a scope, as a budget's: business line, project, task type, key, user, requested model,
tags), what it reads (`applies_to`: the prompt, the answer, or both) and what happens on a
match:

- `block`: the call is refused with a 400 before any provider sees it (prompts only: an answer
  has been paid for, and a stream's has partly reached the caller);
- `redact`: each match is replaced by `[REDACTED:<detector>]` — in the prompt the provider
  sees, or in the answer the caller gets (and the response cache keeps); a streamed answer has
  reached the caller as it came, so there a match is only flagged;
- `flag`: the call goes as it is, marked.

Every guardrail that matched is named in the call's event (`guardrails`), whatever its action.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from tollway.config.governance import BudgetScope
from tollway.config.types import Name, _Strict

DetectorName = Literal["secrets", "email", "phone", "credit_card", "iban"]
GuardrailAction = Literal["block", "redact", "flag"]
GuardrailTarget = Literal["prompt", "answer"]


class GuardrailConfig(_Strict):
    id: Name
    detect: list[DetectorName] = Field(default_factory=list)
    patterns: list[str] = Field(
        default_factory=list, description="Regular expressions (Python syntax) to find too."
    )
    action: GuardrailAction = "block"
    applies_to: list[GuardrailTarget] = Field(default=["prompt"], min_length=1)
    scope: BudgetScope = Field(default_factory=BudgetScope)

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for i, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {i + 1} is not a regular expression: {exc}") from None
            if re.fullmatch(pattern, ""):
                raise ValueError(f"pattern {i + 1} matches empty text")
        return patterns

    @model_validator(mode="after")
    def _looks_for_something(self) -> GuardrailConfig:
        if not self.detect and not self.patterns:
            raise ValueError("a guardrail needs `detect` or `patterns`")
        if self.action == "block" and "answer" in self.applies_to:
            raise ValueError(
                "an answer can be redacted or flagged, not blocked: it has been paid for "
                "(use action redact or flag, or applies_to: [prompt])"
            )
        return self
