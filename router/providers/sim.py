"""The simulated provider: answers offline, deterministically, for demos, tests and benchmarks.

The same request always yields the same text, token counts and latency, so a test can compute
the expected cost from the catalogue, and a benchmark measures tollway rather than a network.
A stream carries exactly the non-streamed answer, one word (one token) per chunk, with the
latency spread the same way (`latency_ms` before the first word, `ms_per_output_token` per
word), so a streamed call and a plain one cost the same. Embeddings are unit vectors drawn from
a hash of the model and the input (`SIM_EMBEDDING_DIMENSIONS` of them unless the request asks
for fewer or more): the same text always gets the same vector.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from router.errors import InvalidRequest
from router.providers.base import ChatChunk, ChatResult, EmbeddingResult, ProviderError
from router.schemas import ChatCompletionRequest, EmbeddingsRequest, Usage
from router.tokens import embedding_input_tokens, estimate_prompt_tokens, text_of
from router.translate.embeddings import openai_embeddings
from tollway.config.schema import ModelConfig, ProviderConfig

#: the length of a simulated embedding when the request does not ask for `dimensions`
SIM_EMBEDDING_DIMENSIONS = 256
#: the most numbers one simulated embeddings answer holds (inputs times dimensions)
SIM_EMBEDDING_MAX_VALUES = 1_000_000

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


@dataclass(frozen=True)
class _Answer:
    id: str
    choices: list[list[str]]  # the words of each of the `n` choices
    prompt_tokens: int
    finish_reason: str

    @property
    def usage(self) -> Usage:
        output = sum(len(words) for words in self.choices)
        return Usage(input_tokens=self.prompt_tokens, output_tokens=output)


class SimProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    def _digest(self, request: ChatCompletionRequest, model: ModelConfig) -> bytes:
        prompt = "\x1f".join(f"{m.role}:{text_of(m.content)}" for m in request.messages)
        return hashlib.sha256(f"{model.name}\x1e{prompt}".encode()).digest()

    def _output_tokens(self, request: ChatCompletionRequest, prompt_tokens: int) -> int:
        wanted = self.config.sim.output_tokens or 16 + prompt_tokens % 48
        limit = request.output_limit
        return min(wanted, limit) if limit else wanted

    def _answer(self, request: ChatCompletionRequest, model: ModelConfig) -> _Answer:
        sim = self.config.sim
        digest = self._digest(request, model)
        if sim.error_rate and int.from_bytes(digest[:4]) / 2**32 < sim.error_rate:
            raise ProviderError("simulated upstream failure", status=503)
        prompt_tokens = estimate_prompt_tokens(request.messages)
        output_tokens = self._output_tokens(request, prompt_tokens)
        choices = []
        for choice in range(request.n or 1):  # each choice starts elsewhere in the text
            start = (digest[4] + 7 * choice) % len(_WORDS)
            choices.append([_WORDS[(start + i) % len(_WORDS)] for i in range(output_tokens)])
        limited = request.output_limit and output_tokens >= request.output_limit
        return _Answer(
            id="chatcmpl-sim-" + digest[:12].hex(),
            choices=choices,
            prompt_tokens=prompt_tokens,
            finish_reason="length" if limited else "stop",
        )

    async def chat(self, request: ChatCompletionRequest, model: ModelConfig) -> ChatResult:
        sim = self.config.sim
        answer = self._answer(request, model)
        await asyncio.sleep(
            (sim.latency_ms + sim.ms_per_output_token * len(answer.choices[0])) / 1000
        )
        usage = answer.usage
        body: dict[str, Any] = {
            "id": answer.id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model.name,
            "choices": [
                {
                    "index": index,
                    "message": {"role": "assistant", "content": " ".join(words)},
                    "finish_reason": answer.finish_reason,
                    "logprobs": None,
                }
                for index, words in enumerate(answer.choices)
            ],
            "usage": {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens,
            },
        }
        return ChatResult(body, usage)

    async def stream(
        self, request: ChatCompletionRequest, model: ModelConfig
    ) -> AsyncIterator[ChatChunk]:
        sim = self.config.sim
        answer = self._answer(request, model)
        created = int(time.time())

        def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> ChatChunk:
            return ChatChunk(
                data={
                    "id": answer.id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model.name,
                    "choices": [
                        {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
                    ],
                }
            )

        await asyncio.sleep(sim.latency_ms / 1000)
        for index in range(len(answer.choices)):
            yield chunk(index, {"role": "assistant", "content": ""})
        # the choices advance together, a word each, as an upstream generating them would
        for i in range(len(answer.choices[0])):
            if sim.ms_per_output_token:
                await asyncio.sleep(sim.ms_per_output_token / 1000)
            for index, words in enumerate(answer.choices):
                yield chunk(index, {"content": words[i] if i == 0 else " " + words[i]})
        for index in range(len(answer.choices)):
            yield chunk(index, {}, answer.finish_reason)
        yield ChatChunk(usage=answer.usage, final=True)

    async def embed(self, request: EmbeddingsRequest, model: ModelConfig) -> EmbeddingResult:
        sim = self.config.sim
        inputs = request.inputs
        seed = hashlib.sha256(f"{model.name}\x1e{inputs}".encode()).digest()
        if sim.error_rate and int.from_bytes(seed[:4]) / 2**32 < sim.error_rate:
            raise ProviderError("simulated upstream failure", status=503)
        await asyncio.sleep(sim.latency_ms / 1000)
        dimensions = request.dimensions or SIM_EMBEDDING_DIMENSIONS
        if len(inputs) * dimensions > SIM_EMBEDDING_MAX_VALUES:
            raise InvalidRequest(
                f"the simulator makes at most {SIM_EMBEDDING_MAX_VALUES:,} numbers an answer "
                f"({len(inputs)} inputs of {dimensions} dimensions asked)"
            )
        vectors = [_unit_vector(f"{model.name}\x1e{item}", dimensions) for item in inputs]
        usage = Usage(input_tokens=sum(embedding_input_tokens(inputs)))
        body = openai_embeddings(vectors, model.name, usage, request.encoding_format)
        return EmbeddingResult(body, usage)

    async def close(self) -> None:
        return None


def _unit_vector(text: str, dimensions: int) -> list[float]:
    draw = random.Random(hashlib.sha256(text.encode()).digest())
    vector = [draw.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]
