"""The world of the routing simulation (benchmarks/routing_simulation.py): the workload, the
quality matrix, the latency profiles, the floors an operator may set, and the oracle.

Documented in the simulation's docstring and the README; fixed before the first run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import yaml

SEED = 7
ADMIN_KEY = "tw_admin_bench_routing"
DEMO = Path(__file__).resolve().parent.parent / "tollway" / "config" / "demo.yaml"
WINDOW = 200  # calls of one task type in the convergence window
CONVERGED_SHARE = 0.9  # share of a window that must go to the oracle


@dataclass(frozen=True)
class TaskType:
    name: str
    share: float
    prompt_tokens: int  # mean
    output_tokens: int  # mean
    max_tokens: int


TASKS = {
    t.name: t
    for t in (
        TaskType("classification", 0.30, 250, 5, 16),
        TaskType("chat", 0.25, 150, 120, 400),
        TaskType("summarisation", 0.20, 1500, 150, 400),
        TaskType("code", 0.15, 300, 350, 1024),
        TaskType("long_context", 0.10, 24000, 150, 400),
    )
}


@dataclass(frozen=True)
class Knobs:
    """What the operator sets: the route's quality floor per task type and its learning."""

    floors: dict[str, float]
    min_scores: int = 10
    exploration: float = 0.05
    interval_s: float = 1.0  # TOLLWAY_ROUTING_STATS_INTERVAL_S

    def describe(self) -> str:
        floors = ", ".join(f"{t} {f:g}" for t, f in self.floors.items())
        return (
            f"floors {floors}; min_scores {self.min_scores}, exploration {self.exploration:g}, "
            f"routing stats every {self.interval_s:g} s"
        )


LOOSE = Knobs(
    {"classification": 0.95, "chat": 0.94, "summarisation": 0.94, "code": 0.935,
     "long_context": 0.90}
)  # fmt: skip
STRICT = Knobs(
    {"classification": 0.975, "chat": 0.965, "summarisation": 0.965, "code": 0.955,
     "long_context": 0.945}
)  # fmt: skip

MODELS = ["gemini-2.0-flash", "gpt-4o-mini", "claude-3-5-haiku", "gpt-4o", "claude-sonnet-4"]

_Q = ["classification", "chat", "summarisation", "code", "long_context"]
QUALITY: dict[str, dict[str, float]] = {
    model: dict(zip(_Q, row, strict=True))
    for model, row in {
        "gemini-2.0-flash": (0.97, 0.86, 0.80, 0.55, 0.95),
        "gpt-4o-mini": (0.97, 0.96, 0.88, 0.70, 0.82),
        "claude-3-5-haiku": (0.98, 0.96, 0.96, 0.85, 0.90),
        "gpt-4o": (0.99, 0.97, 0.97, 0.95, 0.93),
        "claude-sonnet-4": (0.99, 0.98, 0.98, 0.97, 0.96),
    }.items()
}


@dataclass(frozen=True)
class LatencyProfile:
    ttft_ms: float
    prefill_ms_per_ktok: float
    tokens_per_s: float
    scale: float = 0.1  # the simulation runs at a tenth of these figures


LATENCY = {
    "gemini-2.0-flash": LatencyProfile(400, 15, 200),
    "gpt-4o-mini": LatencyProfile(500, 20, 80),
    "claude-3-5-haiku": LatencyProfile(700, 25, 60),
    "gpt-4o": LatencyProfile(600, 25, 90),
    "claude-sonnet-4": LatencyProfile(1300, 35, 55),
}

FILLER = (
    "The quarterly report lists revenue by region, the support queue lists open tickets by "
    "product, and the repository holds the service code with its tests and deployment notes. "
)


@dataclass(frozen=True)
class Question:
    qid: int
    task: str
    a: int
    b: int
    c: int
    prompt_tokens: int

    @property
    def answer(self) -> int:
        return self.a * self.b + self.c

    def prompt(self) -> str:
        ask = (
            f" What is {self.a} * {self.b} + {self.c}? Reply with 'Answer: <number>' and keep "
            "to the format the task needs."
        )
        head = f"[task:{self.task}] Q{self.qid}. Context: "
        chars = max(0, self.prompt_tokens * 4 - len(head) - len(ask))
        body = (FILLER * (chars // len(FILLER) + 1))[:chars]
        return head + body + ask


def workload(seed: int, calls: int) -> list[Question]:
    rng = random.Random(seed)
    names = list(TASKS)
    weights = [TASKS[n].share for n in names]
    questions = []
    for qid in range(calls):
        task = rng.choices(names, weights)[0]
        size = round(TASKS[task].prompt_tokens * rng.uniform(0.7, 1.3))
        questions.append(
            Question(
                qid, task, rng.randint(100, 999), rng.randint(10, 99), rng.randint(1, 99), size
            )
        )
    return questions


def _prices() -> dict[str, tuple[Decimal, Decimal]]:
    demo = yaml.safe_load(DEMO.read_text())
    return {
        m["name"]: (Decimal(str(m["input_per_mtok"])), Decimal(str(m["output_per_mtok"])))
        for m in demo["models"]
        if m["name"] in MODELS
    }


def expected_cost(
    model: str, task: TaskType, prices: dict[str, tuple[Decimal, Decimal]]
) -> Decimal:
    price_in, price_out = prices[model]
    return (task.prompt_tokens * price_in + task.output_tokens * price_out) / Decimal(1_000_000)


def oracle(task: TaskType, floor: float, prices: dict[str, tuple[Decimal, Decimal]]) -> str:
    """The cheapest model whose matrix value meets the task type's floor."""
    good = [m for m in MODELS if QUALITY[m][task.name] >= floor]
    return min(good, key=lambda m: expected_cost(m, task, prices))


def strongest() -> str:
    return max(MODELS, key=lambda m: sum(QUALITY[m][t.name] * t.share for t in TASKS.values()))


def cheapest(prices: dict[str, tuple[Decimal, Decimal]]) -> str:
    return min(MODELS, key=lambda m: sum(expected_cost(m, t, prices) for t in TASKS.values()))


# --- the stack ----------------------------------------------------------------------------
