"""`POST /v1/embeddings` through the whole stack: the official OpenAI SDK (sync and async, its
default base64 transfer and plain floats) and LangChain's `OpenAIEmbeddings` → tollway → the
simulator, the OpenAI wire and Gemini's `batchEmbedContents` → one ledger row per call, billed on
input tokens only."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal
from typing import Any

import openai
import pytest

from .conftest import SECRETS, Stack
from .fakes import EMBEDDING_DIMENSIONS, OPENAI_EMBEDDING_TOKENS, fake_vector

pytestmark = pytest.mark.integration

TEXTS = ["The ledger records every call once.", "Budgets follow the spend."]


def _client(stack: Stack) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)


async def _embed(stack: Stack, **request: Any) -> tuple[list[list[float]], str]:
    raw = await _client(stack).embeddings.with_raw_response.create(**request)
    return [item.embedding for item in raw.parse().data], raw.headers["x-tollway-event-id"]


def _estimated_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


async def test_the_simulator_embeds_deterministically_for_both_sdk_clients(stack: Stack) -> None:
    # the SDK asks for base64 unless told otherwise, and decodes it itself
    vectors, event_id = await _embed(stack, model="sim-embed", input=TEXTS)
    assert [len(v) for v in vectors] == [256, 256]
    assert all(abs(math.fsum(x * x for x in v) - 1) < 1e-4 for v in vectors)  # unit length
    assert vectors[0] != vectors[1]

    sync = openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.key, max_retries=0)
    again = await asyncio.to_thread(
        sync.embeddings.create, model="sim-embed", input=TEXTS, encoding_format="float"
    )
    for sent_as_floats, sent_as_base64 in zip(again.data, vectors, strict=True):
        # the same vector either way, to float32 precision
        assert (
            max(abs(a - b) for a, b in zip(sent_as_floats.embedding, sent_as_base64, strict=True))
            < 1e-6
        )
    shorter, _ = await _embed(stack, model="sim-embed", input=TEXTS[0], dimensions=32)
    assert len(shorter[0]) == 32

    row = await stack.row(event_id)
    tokens = sum(_estimated_tokens(t) for t in TEXTS)
    assert row["endpoint"] == "embeddings" and row["status"] == "ok"
    assert (row["model"], row["provider"]) == ("sim-embed", "sim")
    assert (row["input_tokens"], row["output_tokens"]) == (tokens, 0)
    assert Decimal(row["cost"]) == stack.expected_cost("sim-embed", tokens, 0)
    assert row["business_line"] == "eng" and row["key_id"] == "k_router"


async def test_the_openai_wire_gets_the_request_as_sent_and_bills_its_usage(stack: Stack) -> None:
    requests = stack.fakes["openai"].state.requests
    seen = len(requests)
    vectors, event_id = await _embed(
        stack, model="text-embedding-3-small", input=[[1, 2, 3], [4, 5]], encoding_format="float"
    )
    assert vectors == [fake_vector(0), fake_vector(1)]
    (sent,) = requests[seen:]
    assert sent["path"] == "/v1/embeddings"
    assert sent["body"]["model"] == "text-embedding-3-small-upstream"
    assert sent["body"]["input"] == [[1, 2, 3], [4, 5]]  # token ids pass through
    assert sent["headers"]["authorization"] == f"Bearer {SECRETS['FAKE_OPENAI_KEY']}"

    base64_vectors, _ = await _embed(stack, model="text-embedding-3-small", input="one text")
    assert base64_vectors == [fake_vector(0)]  # the upstream's base64, decoded by the SDK

    row = await stack.row(event_id)
    tokens = 2 * OPENAI_EMBEDDING_TOKENS  # the upstream's own count
    assert (row["input_tokens"], row["output_tokens"], row["usage_estimated"]) == (tokens, 0, 0)
    assert Decimal(row["cost"]) == stack.expected_cost("text-embedding-3-small", tokens, 0)


async def test_gemini_embeddings_are_translated_and_their_tokens_estimated(stack: Stack) -> None:
    requests = stack.fakes["gemini"].state.requests
    seen = len(requests)
    vectors, event_id = await _embed(
        stack, model="gemini-embedding", input=TEXTS, encoding_format="float", dimensions=4
    )
    assert vectors == [fake_vector(0, 4), fake_vector(1, 4)]
    (sent,) = requests[seen:]
    assert sent["path"] == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert [r["content"]["parts"][0]["text"] for r in sent["body"]["requests"]] == TEXTS
    assert {r["outputDimensionality"] for r in sent["body"]["requests"]} == {4}
    assert sent["headers"]["x-goog-api-key"] == SECRETS["FAKE_GEMINI_KEY"]

    row = await stack.row(event_id)
    tokens = sum(_estimated_tokens(t) for t in TEXTS)
    assert (row["input_tokens"], row["output_tokens"], row["usage_estimated"]) == (tokens, 0, 1)
    assert row["provider"] == "gemini-fake"

    with pytest.raises(openai.BadRequestError) as refused:  # the caller's to change: a 400
        await _client(stack).embeddings.create(model="gemini-embedding", input=[1, 2, 3])
    assert "texts, not token ids" in refused.value.message


async def test_a_route_serves_embeddings_from_its_embedding_models_only(stack: Stack) -> None:
    """Route `embed`: a chat model (skipped: it does not embed), a failing embeddings model,
    then the simulator as the fallback; every attempt is in the event."""
    vectors, event_id = await _embed(stack, model="embed", input="route me")
    assert len(vectors[0]) == 256
    row = await stack.row(event_id)
    assert (row["route"], row["model"], row["fallback_used"]) == ("embed", "sim-embed", 1)
    assert _attempts(row) == [("down-embed", "error"), ("sim-embed", "ok")]


def _attempts(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(model, status) of each attempt in a ledger row."""
    names = ("provider", "model", "status", "error", "http_status", "duration_ms")
    entries = [
        a if isinstance(a, dict) else dict(zip(names, a, strict=True)) for a in row["attempts"]
    ]
    return [(entry["model"], entry["status"]) for entry in entries]


async def test_a_model_of_the_wrong_kind_is_a_clear_400(stack: Stack) -> None:
    client = _client(stack)
    with pytest.raises(openai.BadRequestError) as chat_model:
        await client.embeddings.create(model="gpt-4o-mini", input="x")
    assert "does not create embeddings" in chat_model.value.message
    with pytest.raises(openai.BadRequestError) as embedding_model:
        await client.chat.completions.create(
            model="sim-embed", messages=[{"role": "user", "content": "hi"}]
        )
    assert "is an embeddings model" in embedding_model.value.message


async def test_langchain_openai_embeddings(stack: Stack) -> None:
    from langchain_openai import OpenAIEmbeddings
    from pydantic import SecretStr

    embeddings = OpenAIEmbeddings(
        model="text-embedding-3-small",
        base_url=f"{stack.base_url}/v1",
        api_key=SecretStr(stack.key),
        # LangChain would count tokens with tiktoken, which downloads its encodings
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    assert await embeddings.aembed_documents(TEXTS) == [fake_vector(0), fake_vector(1)]
    assert len(await embeddings.aembed_query("one")) == EMBEDDING_DIMENSIONS
