"""Embeddings without a network: the request's input shapes, OpenAI's vector encodings, Gemini's
answers, the simulator's vectors, and which models a plan may use for which kind of call."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from router.attribution import Attribution
from router.choice import Needs, unfit
from router.errors import InvalidRequest
from router.gateway import Gateway
from router.needs import embedding_needs
from router.policy import RoutePolicy
from router.providers.sim import SimProvider
from router.schemas import MAX_EMBEDDING_INPUTS, EmbeddingsRequest
from router.translate.embeddings import decode_vector, encode_vector, gemini_vectors
from tollway.config.schema import BudgetConfig, BudgetScope, TollwayConfig


def request(**fields: Any) -> EmbeddingsRequest:
    return EmbeddingsRequest.model_validate({"model": "embed", **fields})


@pytest.mark.parametrize(
    ("given", "inputs", "texts"),
    [
        ("one text", ["one text"], ["one text"]),
        (["a", "b"], ["a", "b"], ["a", "b"]),
        ([1, 2, 3], [[1, 2, 3]], None),  # one input as token ids
        ([[1, 2], [3]], [[1, 2], [3]], None),
    ],
)
def test_every_input_shape_becomes_a_list_of_inputs(given: Any, inputs: list, texts: Any) -> None:
    parsed = request(input=given)
    assert parsed.inputs == inputs
    assert parsed.texts == texts


@pytest.mark.parametrize(
    "given", ["", [], [""], ["a", 1], [-1], [[]], {"text": "a"}, ["a"] * (MAX_EMBEDDING_INPUTS + 1)]
)
def test_a_bad_input_is_one_clear_error(given: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        request(input=given)
    assert len(refused.value.errors()) == 1
    assert "input" in str(refused.value)


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_a_vector_survives_its_encoding(encoding: str) -> None:
    vector = [0.5, -1.25, 3.0, 1e-3]
    decoded = decode_vector(encode_vector(vector, encoding))
    assert decoded == pytest.approx(vector, rel=1e-6)  # float32 in base64


def test_base64_is_little_endian_float32() -> None:
    assert encode_vector([1.0], "base64") == "AACAPw=="  # 0x3f800000, as OpenAI sends it


def test_gemini_answers_without_vectors_are_refused() -> None:
    assert gemini_vectors({"embeddings": [{"values": [1.0, 2.0]}]}) == [[1.0, 2.0]]
    for answer in ({}, {"embeddings": "x"}, {"embeddings": [{"value": [1.0]}]}, []):
        with pytest.raises(ValueError):
            gemini_vectors(answer)


CONFIG = TollwayConfig.model_validate(
    {
        "providers": [{"name": "sim", "type": "sim"}],
        "models": [
            {"name": "chat", "provider": "sim", "family": "other", "input_per_mtok": 1,
             "output_per_mtok": 2, "capabilities": ["tools"]},
            {"name": "embed", "provider": "sim", "family": "other", "input_per_mtok": 0.02,
             "output_per_mtok": 0, "capabilities": ["embeddings"], "context_window": 8191},
        ],
        "routes": [{"name": "mixed", "candidates": ["chat", "embed"]}],
    }
)  # fmt: skip


async def test_the_simulator_gives_each_text_its_own_unit_vector() -> None:
    sim = SimProvider(CONFIG.providers[0])
    model = CONFIG.model("embed")
    assert model is not None
    first = await sim.embed(request(input=["a", "b"], encoding_format="float"), model)
    again = await sim.embed(request(input=["a", "b"], encoding_format="float"), model)
    vectors = [item["embedding"] for item in first.body["data"]]
    assert vectors == [item["embedding"] for item in again.body["data"]]
    assert vectors[0] != vectors[1]
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0) for v in vectors)
    assert first.usage.input_tokens == 2 and first.usage.output_tokens == 0
    with pytest.raises(InvalidRequest, match="at most"):
        await sim.embed(request(input=["a"] * 200, dimensions=8192), model)


def test_a_route_embeds_with_its_embeddings_models_and_chats_with_the_others() -> None:
    policy = RoutePolicy(lambda: CONFIG)
    assert [m.name for m in policy.plan("mixed", embedding_needs([5])).models] == ["embed"]
    assert [m.name for m in policy.plan("mixed", Needs()).models] == ["chat"]
    chat, embed = CONFIG.model("chat"), CONFIG.model("embed")
    assert chat is not None and embed is not None
    assert unfit(chat, embedding_needs([5])) == "lacks embeddings"
    assert unfit(embed, Needs()) == "is an embeddings model"
    assert unfit(embed, embedding_needs([9000])) is not None  # over its context window


def test_a_model_named_directly_must_be_of_the_calls_kind() -> None:
    policy = RoutePolicy(lambda: CONFIG)
    with pytest.raises(InvalidRequest, match="does not create embeddings"):
        policy.plan("chat", embedding_needs([5]))
    with pytest.raises(InvalidRequest, match="is an embeddings model"):
        policy.plan("embed", Needs())
    assert policy.plan("embed", embedding_needs([5])).models == [CONFIG.model("embed")]


class _Events:
    """The publisher's one method this path uses (no broker in a unit test)."""

    def __init__(self) -> None:
        self.published: list[object] = []

    def publish(self, event: object, on_delivered: object = None) -> None:
        self.published.append(event)


async def test_a_call_refused_inside_its_attempt_gives_back_its_budget_hold() -> None:
    """A request the provider refuses as the caller's mistake (a 400 from inside the attempt)
    spends nothing: the hold admission put on the budget is released, not left to block."""
    config = CONFIG.model_copy(
        update={
            "budgets": [
                BudgetConfig(id="b", scope=BudgetScope(business_line="ops"), limit_usd=Decimal(1))
            ]
        }
    )
    gateway = Gateway(config, _Events())  # type: ignore[arg-type]
    who = Attribution("ops", "p", "", "", "k", "")
    with pytest.raises(InvalidRequest, match="at most"):
        await gateway.embed(request(input=["a"] * 200, dimensions=8192), who)
    held = {window: usd for window, usd in gateway.budgets._reserved.items() if usd}
    assert held == {}
    await gateway.embed(request(input="fine"), who)  # and the gate still admits
    assert [e.endpoint for e in gateway.publisher.published] == ["embeddings"]  # type: ignore[attr-defined]
