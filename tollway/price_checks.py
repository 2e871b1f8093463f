"""Prices checked when tollway.yaml loads (`validate_prices`, called by the loader): a price
far outside its model family's plausible range is refused (most often a per-1K-token price typed
where tollway wants per-1M), and so is a budgeted model without a price, because its spend would
silently count as zero."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from tollway.config.schema import Issue, Loc, ModelConfig, PricePoint, TollwayConfig


@dataclass(frozen=True, slots=True)
class PriceFamily:
    """Plausible USD-per-1M-token ranges for a family of models.

    The ranges are deliberately generous (several times below the cheapest and above the
    dearest list price the family has had): they exist to catch unit mistakes, which are off by
    100x, 1000x or 1,000,000x, not to second-guess negotiated prices.
    """

    name: str
    pattern: str
    input: tuple[Decimal, Decimal]
    output: tuple[Decimal, Decimal]


def _r(low: str, high: str) -> tuple[Decimal, Decimal]:
    return Decimal(low), Decimal(high)


FAMILIES: tuple[PriceFamily, ...] = (
    # Order matters: the first pattern that matches the model name wins.
    PriceFamily("gpt-4o-mini", r"gpt-4o-mini", _r("0.03", "1.5"), _r("0.1", "6")),
    PriceFamily("gpt-4.1", r"gpt-4\.1", _r("0.02", "10"), _r("0.08", "40")),
    PriceFamily("gpt-4o", r"gpt-4o", _r("0.5", "25"), _r("2", "75")),
    PriceFamily("o-series", r"(^|[/:])o[1-9]($|-)", _r("0.2", "300"), _r("0.8", "1200")),
    PriceFamily("claude-haiku", r"claude-.*haiku", _r("0.05", "5"), _r("0.25", "25")),
    PriceFamily("claude-sonnet", r"claude-.*sonnet", _r("0.6", "15"), _r("3", "75")),
    PriceFamily("claude-opus", r"claude-.*opus", _r("1", "75"), _r("5", "375")),
    PriceFamily("gemini-flash", r"gemini-.*flash", _r("0.01", "2"), _r("0.04", "12")),
    PriceFamily("gemini-pro", r"gemini-.*pro", _r("0.25", "12.5"), _r("1", "75")),
    PriceFamily("text-embedding", r"text-embedding-", _r("0.002", "1"), _r("0", "1")),
)
CATCH_ALL = PriceFamily("any model", r"", _r("0", "500"), _r("0", "2000"))
"""Sanity bound for every model, including those of an unknown or explicit custom family."""

_BY_NAME = {f.name: f for f in FAMILIES}


def family_of(model: ModelConfig) -> PriceFamily:
    """The model's price family: its explicit `family`, else the first pattern matching its
    name (then its upstream name); `CATCH_ALL` when none does.

    Setting `family:` to a name that is not in `FAMILIES` (e.g. `custom`) opts a model out of
    the family check, for a fine-tuned or self-hosted model whose name misleads the patterns.
    """
    if model.family is not None:
        return _BY_NAME.get(model.family, CATCH_ALL)
    for name in (model.name, model.upstream_name):
        if name:
            for family in FAMILIES:
                if re.search(family.pattern, name, flags=re.IGNORECASE):
                    return family
    return CATCH_ALL


def validate_prices(cfg: TollwayConfig) -> list[Issue]:
    """Every pricing problem of a config, as (field path, message) issues for the loader."""
    issues: list[Issue] = []
    for i, model in enumerate(cfg.models):
        issues += _model_price_issues(("models", i), model)
    issues += _budget_coverage_issues(cfg)
    return issues


def _model_price_issues(at: Loc, model: ModelConfig) -> list[Issue]:
    issues: list[Issue] = []
    family = family_of(model)
    located: list[tuple[Loc, PricePoint]] = [
        ((*at, "price_history", j), p) for j, p in enumerate(model.price_history)
    ]
    if model.input_per_mtok is not None and model.output_per_mtok is not None:
        located.append((at, _flat(model)))
    for loc, point in located:
        issues += _point_issues(loc, model.name, family, point)
    seen: dict[date, Loc] = {}
    for loc, point in located:
        if point.effective_from in seen:
            field = "effective_from" if loc != at else "price_effective_from"
            issues.append(
                (
                    (*loc, field),
                    f"two prices of {model.name!r} take effect on "
                    f"{point.effective_from.isoformat()}: each price point needs its own date",
                )
            )
        seen.setdefault(point.effective_from, loc)
    return issues


def _flat(model: ModelConfig) -> PricePoint:
    """The current price given by the flat fields (callers ensure both are set)."""
    assert model.input_per_mtok is not None and model.output_per_mtok is not None
    return PricePoint(
        effective_from=model.price_effective_from,
        input_per_mtok=model.input_per_mtok,
        output_per_mtok=model.output_per_mtok,
        cached_input_per_mtok=model.cached_input_per_mtok,
        reasoning_per_mtok=model.reasoning_per_mtok,
    )


def _point_issues(loc: Loc, model: str, family: PriceFamily, point: PricePoint) -> list[Issue]:
    """Range checks: input and cached against the input range, output and reasoning against
    the output range (cached reads are cheaper than input, so their floor is lower)."""
    low_in, high_in = family.input
    checks: list[tuple[str, Decimal | None, tuple[Decimal, Decimal]]] = [
        ("input_per_mtok", point.input_per_mtok, family.input),
        ("output_per_mtok", point.output_per_mtok, family.output),
        ("cached_input_per_mtok", point.cached_input_per_mtok, (low_in / 50, high_in)),
        ("reasoning_per_mtok", point.reasoning_per_mtok, family.output),
    ]
    issues: list[Issue] = []
    for field, value, bounds in checks:
        if value is None:
            continue
        for fam, (low, high) in ((family, bounds), (CATCH_ALL, _catch_all_bounds(field))):
            problem = _range_problem(value, low, high)
            if problem:
                issues.append(
                    ((*loc, field), _range_message(model, fam, value, low, high, problem))
                )
                break
    return issues


def _catch_all_bounds(field: str) -> tuple[Decimal, Decimal]:
    return (
        CATCH_ALL.output if field in ("output_per_mtok", "reasoning_per_mtok") else CATCH_ALL.input
    )


def _range_problem(value: Decimal, low: Decimal, high: Decimal) -> str | None:
    """'low' or 'high' when `value` is outside [low, high]. Zero is always allowed: a free or
    self-hosted model is a deliberate choice, not a unit mistake."""
    if value == 0:
        return None
    if value < low:
        return "low"
    if value > high:
        return "high"
    return None


def _range_message(
    model: str, family: PriceFamily, value: Decimal, low: Decimal, high: Decimal, problem: str
) -> str:
    """Explain the likely cause: the usual mistakes are off by a round factor."""

    def fits(scaled: Decimal) -> bool:
        return low <= scaled <= high

    if problem == "low" and fits(value * 1000):
        hint = "looks like a per-1K-token price: tollway prices are USD per 1M tokens (x1000)"
    elif problem == "low" and fits(value * 1_000_000):
        hint = "looks like a per-token price: tollway prices are USD per 1M tokens (x1,000,000)"
    elif problem == "high" and family is not CATCH_ALL and fits(value / 100):
        hint = "looks like cents: tollway prices are in US dollars"
    elif problem == "high" and family is not CATCH_ALL and fits(value / 1000):
        hint = "looks 1000x too high: tollway prices are USD per 1M tokens, not per 1K or 1B"
    else:
        hint = "check the unit: tollway prices are USD per 1M tokens"
    where = "any model" if family is CATCH_ALL else f"the {family.name} family"
    return (
        f"price {value} for {model!r} is far {'below' if problem == 'low' else 'above'} the "
        f"plausible range for {where} ({low}..{high} USD per 1M tokens): {hint}. "
        "If the price is right, set `family: custom` on the model to skip the family check"
    )


def _budget_coverage_issues(cfg: TollwayConfig) -> list[Issue]:
    """A budget must be able to count the spend it limits.

    A budget scoped to one model needs that model priced. A budget without a model in its scope
    counts every model's spend, so every catalogue model needs a price (sim models included:
    they stand in for real ones, with real prices).
    """
    issues: list[Issue] = []
    index = {m.name: i for i, m in enumerate(cfg.models)}
    unscoped: list[tuple[int, str]] = []
    for b, budget in enumerate(cfg.budgets):
        target = budget.scope.model
        if target is None:
            unscoped.append((b, budget.id))
            continue
        model = cfg.model(target)
        if model is not None and not model.priced:
            issues.append(
                (
                    ("budgets", b, "scope", "model"),
                    f"budget {budget.id!r} limits spend on model {target!r}, which has no price: "
                    f"give models[{index[target]}] ({target}) input_per_mtok and output_per_mtok",
                )
            )
    if unscoped:
        names = _listing(f"{bid!r} (budgets[{b}])" for b, bid in unscoped)
        for i, model in enumerate(cfg.models):
            if not model.priced:
                issues.append(
                    (
                        ("models", i, "input_per_mtok"),
                        f"model {model.name!r} has no price, but budget {names} counts every "
                        "model's spend: give input_per_mtok and output_per_mtok (in USD per 1M "
                        "tokens), or scope the budget to one model",
                    )
                )
    return issues


def _listing(items: Iterable[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
