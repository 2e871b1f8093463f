"""The simulated provider: answers offline, deterministically, for demos, tests and benchmarks.

The same request always yields the same text, token counts and latency, so a test can compute
the expected cost from the catalogue, and a benchmark measures tollway rather than a network.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from router.providers.base import ChatResult, ProviderError
from router.schemas import ChatCompletionRequest, Usage
from tollway.config.schema import ModelConfig, ProviderConfig

_WORDS = [
    "the",
    "ledger",
    "records",
    "every",
    "call",
    "once",
    "and",
    "budgets",
    "follow",
    "the",
    "spend",
    "while",
    "routing",
    "picks",
    "a",
    "model",
    "that",
    "is",
    "good",
    "enough",
    "and",
    "cheap",
    "enough",
    "for",
    "the",
    "task",
    "at",
    "hand",
]


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def estimate_prompt_tokens(request: ChatCompletionRequest) -> int:
    """About four characters per token, plus the per-message framing OpenAI counts."""
    chars = sum(len(_text_of(m.content)) for m in request.messages)
    return 3 + 4 * len(request.messages) + (chars + 3) // 4


class SimProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    def _digest(self, request: ChatCompletionRequest, model: ModelConfig) -> bytes:
        prompt = "\x1f".join(f"{m.role}:{_text_of(m.content)}" for m in request.messages)
        return hashlib.sha256(f"{model.name}\x1e{prompt}".encode()).digest()

    def _output_tokens(self, request: ChatCompletionRequest, prompt_tokens: int) -> int:
        wanted = self.config.sim.output_tokens or 16 + prompt_tokens % 48
        limit = request.output_limit
        return min(wanted, limit) if limit else wanted

    async def chat(self, request: ChatCompletionRequest, model: ModelConfig) -> ChatResult:
        sim = self.config.sim
        digest = self._digest(request, model)
        if sim.error_rate and int.from_bytes(digest[:4]) / 2**32 < sim.error_rate:
            raise ProviderError("simulated upstream failure", status=503)
        prompt_tokens = estimate_prompt_tokens(request)
        output_tokens = self._output_tokens(request, prompt_tokens)
        await asyncio.sleep((sim.latency_ms + sim.ms_per_output_token * output_tokens) / 1000)
        start = digest[4] % len(_WORDS)
        words = [_WORDS[(start + i) % len(_WORDS)] for i in range(output_tokens)]
        finish = (
            "length" if request.output_limit and output_tokens >= request.output_limit else "stop"
        )
        body: dict[str, Any] = {
            "id": "chatcmpl-sim-" + digest[:12].hex(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model.name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": " ".join(words)},
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": prompt_tokens + output_tokens,
            },
        }
        return ChatResult(body, Usage(input_tokens=prompt_tokens, output_tokens=output_tokens))

    async def close(self) -> None:
        return None
