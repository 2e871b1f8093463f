"""The route policy: candidate sets, task rules, strategies, fallbacks and exploration.

Pure logic on a config, a routing view and a seeded random source: no Kafka, no HTTP.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any
from uuid import uuid4

import pytest

from router.choice import Needs, Observed
from router.errors import InvalidRequest, ModelNotFound
from router.needs import needs_of
from router.policy import RoutePolicy
from router.routing_feed import RoutingView
from router.schemas import ChatCompletionRequest
from tollway.config.schema import TollwayConfig

MODELS = [
    # name, input $/Mtok, output $/Mtok, capabilities, context window
    ("flash", 0.10, 0.40, ["tools", "json"], 1_000_000),
    ("mini", 0.15, 0.60, ["tools", "vision", "json"], 128_000),
    ("haiku", 0.80, 4.00, [], 200_000),
    ("big", 2.50, 10.00, ["tools", "vision", "json"], 128_000),
]


def config(*routes: dict[str, Any]) -> TollwayConfig:
    return TollwayConfig.model_validate(
        {
            "providers": [{"name": "sim", "type": "sim"}],
            "models": [
                {
                    "name": name,
                    "provider": "sim",
                    "family": "other",
                    "input_per_mtok": i,
                    "output_per_mtok": o,
                    "capabilities": caps,
                    "context_window": window,
                }
                for name, i, o, caps, window in MODELS
            ],
            "routes": list(routes),
        }
    )


def policy(cfg: TollwayConfig, view: RoutingView | None = None, seed: int = 7) -> RoutePolicy:
    return RoutePolicy(lambda: cfg, view, random.Random(seed))


def names(plan: Any) -> list[str]:
    return [m.name for m in plan.models]


COST = {"name": "auto", "strategy": "cost_aware", "candidates": ["big", "haiku", "mini", "flash"]}


def test_a_model_by_name_is_served_alone() -> None:
    plan = policy(config(COST)).plan("haiku", Needs(capabilities=frozenset({"tools"})))
    assert (
        names(plan) == ["haiku"] and plan.route == "" and plan.reason == "model requested directly"
    )


def test_an_unknown_name_is_a_404() -> None:
    with pytest.raises(ModelNotFound, match="neither a catalogue model nor a route"):
        policy(config(COST)).plan("nope", Needs())


def test_cost_aware_orders_by_expected_cost() -> None:
    plan = policy(config(COST)).plan("auto", Needs(prompt_tokens=1000))
    assert names(plan) == ["flash", "mini", "haiku", "big"]
    assert plan.reason.startswith("cost_aware: flash at $")


def test_the_old_strategy_names_still_work() -> None:
    cfg = config({"name": "r", "strategy": "ordered", "candidates": ["big", "mini"]})
    assert cfg.routes[0].strategy == "priority"
    assert names(policy(cfg).plan("r", Needs())) == ["big", "mini"]


def test_priority_keeps_the_order_but_drops_what_cannot_serve() -> None:
    cfg = config(
        {"name": "r", "strategy": "priority", "candidates": ["haiku", "big"], "fallbacks": ["mini"]}
    )
    plan = policy(cfg).plan("r", Needs(capabilities=frozenset({"tools"})))
    assert names(plan) == ["big", "mini"]


def test_no_able_model_is_a_clear_400() -> None:
    cfg = config({"name": "r", "candidates": ["haiku"]})
    with pytest.raises(
        InvalidRequest, match=r"no model of route 'r' can serve .*haiku lacks vision"
    ):
        policy(cfg).plan("r", Needs(capabilities=frozenset({"vision"})))


def test_task_rules_pick_their_own_candidates_and_floor() -> None:
    route = {
        **COST,
        "tasks": [{"task_types": ["code"], "candidates": ["haiku", "big"], "quality_floor": 0.9}],
    }
    view = RoutingView()
    view.put("auto", "code", "haiku", Observed(calls=40, mean_score=0.5, score_count=40))
    p = policy(config(route), view)
    code = p.plan("auto", Needs(task_type="code"))
    assert names(code) == ["big"]
    assert code.reason.startswith("task code: cost_aware: big")
    assert "haiku (quality 0.50 (n=40" in code.reason
    assert names(p.plan("auto", Needs(task_type="chat")))[0] == "flash"


def test_quality_is_judged_per_task_type() -> None:
    view = RoutingView()
    view.put("auto", "code", "flash", Observed(calls=30, mean_score=0.2, score_count=30))
    p = policy(config({**COST, "quality_floor": 0.8}), view)
    assert names(p.plan("auto", Needs(task_type="code")))[0] == "mini"
    assert names(p.plan("auto", Needs(task_type="chat")))[0] == "flash"


def test_latency_target_from_the_routing_view() -> None:
    view = RoutingView()
    view.put("auto", "", "flash", Observed(calls=100, p95_latency_ms=9000))
    p = policy(config({**COST, "latency_target_ms": 2000}), view)
    assert names(p.plan("auto", Needs()))[0] == "mini"


def test_when_every_model_misses_the_floor_the_best_quality_serves() -> None:
    view = RoutingView()
    for model, score in [("flash", 0.1), ("mini", 0.3), ("haiku", 0.2), ("big", 0.6)]:
        view.put("auto", "", model, Observed(calls=50, mean_score=score, score_count=50))
    plan = policy(config({**COST, "quality_floor": 0.95}), view).plan("auto", Needs())
    assert names(plan)[0] == "big"
    assert "relaxed the targets" in plan.reason


def test_weighted_spreads_traffic_by_weight() -> None:
    cfg = config(
        {"name": "w", "strategy": "weighted", "candidates": ["mini", "big"], "weights": {"mini": 3}}
    )
    p = policy(cfg, seed=1)
    firsts = Counter(names(p.plan("w", Needs()))[0] for _ in range(4000))
    assert 0.72 < firsts["mini"] / 4000 < 0.78  # 3 : 1
    assert all(len(names(p.plan("w", Needs()))) == 2 for _ in range(10))  # the other as fallback


def test_lowest_latency_prefers_the_measured_fastest() -> None:
    cfg = config(
        {"name": "fast", "strategy": "lowest_latency", "candidates": ["big", "mini", "haiku"]}
    )
    view = RoutingView()
    view.put("fast", "", "big", Observed(calls=50, p50_latency_ms=900))
    view.put("fast", "", "mini", Observed(calls=50, p50_latency_ms=300))
    view.put("fast", "", "haiku", Observed(calls=2, p50_latency_ms=10))  # too few calls to count
    plan = policy(cfg, view).plan("fast", Needs())
    assert names(plan) == ["mini", "big", "haiku"]
    assert plan.reason == "lowest_latency: mini at p50 300 ms"


def test_economy_tier_is_used_on_request() -> None:
    cfg = config({**COST, "economy": ["mini", "flash"]})
    plan = policy(cfg).plan("auto", Needs(), tier="economy")
    assert names(plan) == ["flash", "mini"] and plan.reason.startswith("economy tier: cost_aware")


def test_exploration_never_picks_a_model_that_cannot_serve() -> None:
    cfg = config({**COST, "exploration": 0.5, "quality_floor": 0.9})
    view = RoutingView()
    view.put("auto", "", "flash", Observed(calls=50, mean_score=0.4, score_count=50))
    p = policy(cfg, view, seed=3)
    tools = Needs(capabilities=frozenset({"tools"}))
    plans = [p.plan("auto", tools) for _ in range(500)]
    assert all("haiku" not in names(plan) for plan in plans)
    explored = [plan for plan in plans if plan.explored]
    assert 200 < len(explored) < 300  # about half
    assert all(plan.reason.startswith("explore (thompson") for plan in explored)
    # a poorly rated model still gets an occasional look, but only occasionally
    flash_first = sum(names(plan)[0] == "flash" for plan in plans)
    assert 0 < flash_first < 60


def test_needs_are_read_off_the_request() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "auto",
            "max_tokens": 300,
            "response_format": {"type": "json_object"},
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "x" * 400},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                    ],
                }
            ],
        }
    )
    needs = needs_of(request, "code")
    assert needs.capabilities == {"tools", "vision", "json"}
    assert needs.output_tokens == 300 and needs.output_capped
    assert needs.prompt_tokens > 100 and needs.task_type == "code"
    plain = needs_of(ChatCompletionRequest(model="a", messages=[{"role": "user", "content": "hi"}]))
    assert plain.capabilities == frozenset() and not plain.output_capped


def test_routing_view_applies_records_and_tombstones() -> None:
    view = RoutingView()
    value = b'{"calls": 10, "p95_latency_ms": 120.5, "mean_score": 0.75, "score_count": 4, "output_tokens": 1000}'
    view.apply(b"auto|code|mini", value)
    seen = view.observed("auto", "code")["mini"]
    assert seen == Observed(
        calls=10, p95_latency_ms=120.5, mean_score=0.75, score_count=4, mean_output_tokens=100.0
    )
    view.apply(b"auto|code|mini", None)
    assert view.observed("auto", "code") == {}
    view.apply(b"not-a-key", value)
    view.apply(b"auto|code|mini", b"{broken")
    assert view.observed("auto", "code") == {}


def test_the_policy_remembers_quality_exclusions_per_task_type() -> None:
    view = RoutingView()
    p = policy(config({**COST, "quality_floor": 0.9}), view)
    view.put("auto", "code", "flash", Observed(calls=20, mean_score=0.5, score_count=20))
    assert names(p.plan("auto", Needs(task_type="code")))[0] == "mini"
    view.put("auto", "code", "flash", Observed(calls=30, mean_score=0.91, score_count=30))
    assert names(p.plan("auto", Needs(task_type="code")))[0] == "mini"  # not yet 0.92
    assert names(p.plan("auto", Needs(task_type="chat")))[0] == "flash"  # another task type
    view.put("auto", "code", "flash", Observed(calls=60, mean_score=0.93, score_count=60))
    assert names(p.plan("auto", Needs(task_type="code")))[0] == "flash"


def test_feedback_on_own_calls_counts_before_the_next_record() -> None:
    now = [1000.0]
    view = RoutingView(clock=lambda: now[0])
    view.apply(
        b"auto|code|flash",
        b'{"calls": 10, "mean_score": 1.0, "score_count": 10,'
        b' "computed_at": "1970-01-01T00:16:30Z"}',  # 990 s after the epoch
    )
    ids = [uuid4() for _ in range(10)]
    for event_id in ids:
        view.routed(event_id, "auto", "code", "flash")
    assert view.scored(ids[0], 0.0) and not view.scored(uuid4(), 0.0)
    for event_id in ids:
        view.scored(event_id, 0.0)
    view.scored(ids[0], 0.0)  # a second score for one call replaces the first
    seen = view.observed("auto", "code")["flash"]
    assert (seen.mean_score, seen.score_count) == (0.5, 20)
    p = policy(config({**COST, "quality_floor": 0.9}), view)
    assert names(p.plan("auto", Needs(task_type="code")))[0] == "mini"
    # a record computed a second after the scores may not hold them yet (they reach the
    # feedback table through Kafka and the worker): they keep counting
    now[0] = 1002.0
    view.apply(
        b"auto|code|flash",
        b'{"calls": 10, "mean_score": 1.0, "score_count": 10,'
        b' "computed_at": "1970-01-01T00:16:41Z"}',  # 1001 s
    )
    assert names(p.plan("auto", Needs(task_type="code")))[0] == "mini"
    # a record computed well after them holds them: it replaces them, none counted twice
    now[0] = 1020.0
    view.apply(
        b"auto|code|flash",
        b'{"calls": 20, "mean_score": 0.5, "score_count": 20,'
        b' "computed_at": "1970-01-01T00:16:55Z"}',  # 1015 s
    )
    seen = view.observed("auto", "code")["flash"]
    assert (seen.mean_score, seen.score_count) == (0.5, 20)
