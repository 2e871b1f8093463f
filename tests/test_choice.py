"""Cost-aware ranking: each constraint, the sample thresholds, and the tie-break."""

from __future__ import annotations

from decimal import Decimal

from router.choice import Constraints, Needs, Observed, rank
from tollway.config.schema import ModelConfig


def model(name: str, input_price: str, output_price: str, **extra: object) -> ModelConfig:
    return ModelConfig(
        name=name,
        provider="sim",
        input_per_mtok=Decimal(input_price),
        output_per_mtok=Decimal(output_price),
        **extra,  # type: ignore[arg-type]
    )


MINI = model("mini", "0.15", "0.60", capabilities=["tools", "json"], context_window=128_000)
HAIKU = model("haiku", "0.80", "4.00", capabilities=["tools"], context_window=200_000)
BIG = model(
    "big", "2.50", "10.00", capabilities=["tools", "vision", "json"], context_window=128_000
)


def cost_of(m: ModelConfig, prompt: int, output: int) -> Decimal:
    assert m.input_per_mtok is not None and m.output_per_mtok is not None
    return (prompt * m.input_per_mtok + output * m.output_per_mtok) / 1_000_000


def names(ranking) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.name for m in ranking.models]


def test_cheapest_first_without_statistics() -> None:
    ranking = rank([BIG, HAIKU, MINI], Needs(prompt_tokens=1000), cost_of)
    assert names(ranking) == ["mini", "haiku", "big"]
    assert ranking.reason.startswith("cost_aware: mini at $")


def test_capabilities_exclude_models_that_cannot_serve() -> None:
    ranking = rank([MINI, HAIKU, BIG], Needs(capabilities=frozenset({"vision"})), cost_of)
    assert names(ranking) == ["big"]
    assert ranking.excluded == {"mini": "lacks vision", "haiku": "lacks vision"}
    assert "skipped mini (lacks vision)" in ranking.reason


def test_context_window_counts_prompt_and_output() -> None:
    needs = Needs(prompt_tokens=127_000, output_tokens=2_000)
    assert names(rank([MINI, HAIKU, BIG], needs, cost_of)) == ["haiku"]


def test_latency_target_needs_enough_calls_to_exclude() -> None:
    slow = {"mini": Observed(calls=500, p95_latency_ms=4000)}
    few = {"mini": Observed(calls=3, p95_latency_ms=4000)}
    limits = Constraints(latency_target_ms=1500)
    assert names(rank([MINI, BIG], Needs(), cost_of, slow, limits)) == ["big"]
    assert names(rank([MINI, BIG], Needs(), cost_of, few, limits)) == ["mini", "big"]


def test_quality_floor_uses_feedback_with_enough_scores() -> None:
    poor = {"mini": Observed(mean_score=0.4, score_count=50)}
    unsure = {"mini": Observed(mean_score=0.4, score_count=2)}
    limits = Constraints(quality_floor=0.7)
    needs = Needs(task_type="code")
    ranking = rank([MINI, HAIKU], needs, cost_of, poor, limits)
    assert names(ranking) == ["haiku"]
    assert ranking.excluded["mini"] == "quality 0.40 (n=50) < 0.70 on code"
    assert names(rank([MINI, HAIKU], needs, cost_of, unsure, limits)) == ["mini", "haiku"]


def test_equal_cost_keeps_the_route_order() -> None:
    twin = model("twin", "0.15", "0.60", capabilities=["tools", "json"])
    assert names(rank([twin, MINI], Needs(), cost_of)) == ["twin", "mini"]
    assert names(rank([MINI, twin], Needs(), cost_of)) == ["mini", "twin"]


def test_output_heavy_calls_can_change_the_winner() -> None:
    cheap_in = model("cheap-in", "0.10", "8.00")
    cheap_out = model("cheap-out", "1.00", "1.00")
    prompt_heavy = Needs(prompt_tokens=100_000, output_tokens=100)
    output_heavy = Needs(prompt_tokens=100, output_tokens=10_000)
    assert names(rank([cheap_out, cheap_in], prompt_heavy, cost_of))[0] == "cheap-in"
    assert names(rank([cheap_in, cheap_out], output_heavy, cost_of))[0] == "cheap-out"


def test_nothing_eligible_is_said_plainly() -> None:
    ranking = rank([MINI], Needs(capabilities=frozenset({"vision"})), cost_of)
    assert ranking.models == []
    assert ranking.reason.startswith("cost_aware: no candidate meets the request's needs")


def test_a_model_dropped_on_quality_needs_a_margin_to_come_back() -> None:
    just_over = {"mini": Observed(mean_score=0.71, score_count=40)}
    needs = Needs(task_type="code")
    fresh = Constraints(quality_floor=0.7)
    held = Constraints(quality_floor=0.7, held_out=frozenset({"mini"}))
    assert names(rank([MINI, HAIKU], needs, cost_of, just_over, fresh)) == ["mini", "haiku"]
    ranking = rank([MINI, HAIKU], needs, cost_of, just_over, held)
    assert names(ranking) == ["haiku"] and ranking.held_out == {"mini"}
    assert ranking.excluded["mini"] == "quality 0.71 (n=40) < 0.70 (back from 0.72) on code"
    recovered = {"mini": Observed(mean_score=0.73, score_count=60)}
    assert names(rank([MINI, HAIKU], needs, cost_of, recovered, held)) == ["mini", "haiku"]
