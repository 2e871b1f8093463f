"""What screening a prompt with guardrails costs the proxy, in-process (`python -m benchmarks
guardrails`, a few seconds).

For prompts of about 2 KB and 32 KB of ordinary prose (with figures in it, as business text
has), it times `Guardrails.screen` with each guardrail set below, against the baseline every
call already pays in the same run: parsing the same request body into the gateway's request
model (pydantic-core from JSON bytes, as the endpoints do). Each figure is the best of 7
rounds, so it is the cost on an idle core.

- `none`: guardrails configured, none covering the call (a scope check);
- `secrets`: `detect: [secrets]`, ten credential formats;
- `pii`: `detect: [email, phone, credit_card, iban]`;
- `both`: the two together; `redact`: `pii` redacting an email in the prompt.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

import orjson

from router.attribution import Attribution
from router.guardrails import Guardrails
from router.schemas import ChatCompletionRequest
from tollway.config import load_config
from tollway.config.schema import TollwayConfig

SENTENCE = (
    "In Q3 the support team closed 1,284 tickets, 12 % more than in Q2, while the median "
    "first answer took 3.5 hours; costs stayed flat at 48,200 EUR for the quarter. "
)
SECRETS = {"id": "secrets", "detect": ["secrets"], "action": "block"}
PII = {"id": "pii", "detect": ["email", "phone", "credit_card", "iban"], "action": "redact"}
ELSEWHERE = {**SECRETS, "scope": {"business_line": "marketing"}}
SETS: dict[str, list[dict[str, Any]]] = {
    "none": [ELSEWHERE],
    "secrets": [SECRETS],
    "pii": [PII],
    "both": [SECRETS, PII],
    "redact": [PII],
}
WHO = Attribution("support", "helpdesk", "chat", "u1", "k_bench", "production")


def _guardrails(rails: list[dict[str, Any]]) -> Guardrails:
    config = load_config(None).model_dump(mode="json", exclude_none=True)
    validated = TollwayConfig.model_validate({**config, "guardrails": rails})
    return Guardrails(lambda: validated)


def _body(size: int, tail: str = "") -> bytes:
    prose = (SENTENCE * (size // len(SENTENCE) + 1))[:size] + tail
    messages = [
        {"role": "system", "content": "You summarise reports for managers."},
        {"role": "user", "content": prose},
    ]
    return orjson.dumps({"model": "gpt-4o-mini", "messages": messages})


def _best_us(work: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(work, number=number, repeat=7)) / number * 1e6


def run() -> list[str]:
    lines = [
        "guardrails: screening a prompt, in-process (best of 7 rounds)",
        "| prompt | parse the body (baseline) | guardrails | screen | x the parse |",
        "|---|---|---|---|---|",
    ]
    for size in (2_000, 32_000):
        number = 2_000 if size < 10_000 else 200
        body = _body(size)
        parse = _best_us(lambda body=body: ChatCompletionRequest.model_validate_json(body), number)  # type: ignore[misc]
        for name, rails in SETS.items():
            tail = " Mail jane@example.com." if name == "redact" else ""
            request = ChatCompletionRequest.model_validate_json(_body(size, tail))
            guardrails = _guardrails(rails)
            screening = guardrails.screen(request, WHO)
            assert (screening.request is request) == (name != "redact")  # redacted only there
            took = _best_us(lambda g=guardrails, r=request: g.screen(r, WHO), number)  # type: ignore[misc]
            lines.append(
                f"| {size // 1000} KB | {parse:,.1f} µs | {name} | {took:,.1f} µs"
                f" | {took / parse:.2f}x |"
            )
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
