"""The price catalogue: what a call cost, in exact decimals, and which price said so.

Prices come from the model catalogue of `tollway.yaml`, in USD per million tokens, and are
effective-dated: a model has one or more price points, each in effect from a UTC day start
until the next one. A call is priced once, when it happens, with the point in effect at its
start time; the cost and the `price_version` of that point are stored in the CallEvent.
Changing a price (adding a new point, or editing the file) therefore never silently recomputes
past spend: the ledger keeps what each call cost under the price that applied, and the price
version tells which one it was. To change a price, add a point with a new `effective_from`
rather than editing the current one in place, so the versions stay distinct.

`validate_prices` runs at config load: a price far outside its model family's plausible range
is refused (most often a per-1K-token price typed where tollway wants per-1M), and so is a
budgeted model without a price, because its spend would silently count as zero.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from tollway.config.schema import Issue, Loc, ModelConfig, PricePoint, TollwayConfig

__all__ = [
    "FAMILIES",
    "Costing",
    "PriceCatalogue",
    "PriceError",
    "PriceFamily",
    "UnknownModel",
    "UnpricedModel",
    "family_of",
    "validate_prices",
]

QUANTUM = Decimal("0.000000001")
"""Costs are kept to 1e-9 USD: exact enough for a one-token call on the cheapest model."""

_MTOK = Decimal(1_000_000)


class PriceError(LookupError):
    """A call cannot be priced."""


class UnknownModel(PriceError):
    """The model is not in the catalogue."""


class UnpricedModel(PriceError):
    """The model is in the catalogue but has no price."""


@dataclass(frozen=True, slots=True)
class Costing:
    """The cost of one call and the identifier of the price point it was computed with."""

    cost_usd: Decimal
    price_version: str


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


def _utc_day(at: datetime) -> date:
    """The UTC calendar day of `at`; a naive datetime is taken to be UTC already."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.date()


class PriceCatalogue:
    """Effective-dated prices of every catalogue model, read from a validated config."""

    def __init__(self, points: dict[str, list[PricePoint]]) -> None:
        self._points = {
            name: sorted(p, key=lambda x: x.effective_from) for name, p in points.items()
        }

    @classmethod
    def from_config(cls, cfg: TollwayConfig) -> PriceCatalogue:
        return cls({m.name: m.price_points() for m in cfg.models})

    def __contains__(self, model: object) -> bool:
        return model in self._points

    @property
    def models(self) -> list[str]:
        return list(self._points)

    def is_priced(self, model: str) -> bool:
        return bool(self._points.get(model))

    def price_at(self, model: str, at: datetime) -> PricePoint:
        """The price point in effect at `at`: the latest one starting on or before its UTC day.

        A time before the first point gets the first point: no earlier price is known, and a
        call that cannot be costed would drop out of every budget, which is worse than pricing
        it at the oldest known list price (its price_version says which one was used).
        """
        if model not in self._points:
            raise UnknownModel(f"model {model!r} is not in the catalogue")
        points = self._points[model]
        if not points:
            raise UnpricedModel(
                f"model {model!r} has no price (give input_per_mtok and output_per_mtok)"
            )
        day = _utc_day(at)
        current = points[0]
        for point in points[1:]:
            if point.effective_from > day:
                break
            current = point
        return current

    def price_version(self, model: str, at: datetime) -> str:
        """A stable name for the price point used at `at`: `"<model>@<effective_from>"`."""
        return _version(model, self.price_at(model, at))

    def cost(
        self,
        model: str,
        at: datetime,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        reasoning_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Costing:
        """What a call cost, with the price in effect at `at` (its start time).

        Token semantics (adapters normalise provider usage to these):
        - `input_tokens` is the whole prompt, INCLUDING `cached_input_tokens` (read from a prompt
          cache) and `cache_write_tokens` (written to one); the cached ones are billed at
          `cached_input_per_mtok`, the written ones at `cache_write_per_mtok` (each the input
          price when not set), the rest at `input_per_mtok`.
        - `output_tokens` is the whole completion, INCLUDING `reasoning_tokens`; the reasoning
          ones are billed at `reasoning_per_mtok` when set, otherwise at `output_per_mtok`.

        The arithmetic is exact Decimal; the result is quantized to 1e-9 USD with
        ROUND_HALF_EVEN (banker's rounding, so rounding errors do not drift one way over
        millions of calls).
        """
        _check_tokens(input_tokens, output_tokens, cached_input_tokens, reasoning_tokens)
        if cached_input_tokens + cache_write_tokens > input_tokens or cache_write_tokens < 0:
            raise ValueError(
                f"cached ({cached_input_tokens}) and cache-write ({cache_write_tokens}) tokens "
                f"exceed input_tokens ({input_tokens}): input_tokens must include both"
            )
        point = self.price_at(model, at)
        cached_price = point.cached_input_per_mtok
        write_price = point.cache_write_per_mtok
        reasoning_price = point.reasoning_per_mtok
        with localcontext() as ctx:
            ctx.prec = 60
            micro_usd = (
                (input_tokens - cached_input_tokens - cache_write_tokens) * point.input_per_mtok
                + cached_input_tokens
                * (point.input_per_mtok if cached_price is None else cached_price)
                + cache_write_tokens
                * (point.input_per_mtok if write_price is None else write_price)
                + (output_tokens - reasoning_tokens) * point.output_per_mtok
                + reasoning_tokens
                * (point.output_per_mtok if reasoning_price is None else reasoning_price)
            )
            cost = (micro_usd / _MTOK).quantize(QUANTUM, rounding=ROUND_HALF_EVEN)
        return Costing(cost_usd=cost, price_version=_version(model, point))


def _version(model: str, point: PricePoint) -> str:
    return f"{model}@{point.effective_from.isoformat()}"


def _check_tokens(input_tokens: int, output_tokens: int, cached: int, reasoning: int) -> None:
    """Usage that breaks the semantics above is an adapter bug; say so rather than misprice."""
    for name, value in (
        ("input_tokens", input_tokens),
        ("output_tokens", output_tokens),
        ("cached_input_tokens", cached),
        ("reasoning_tokens", reasoning),
    ):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if cached > input_tokens:
        raise ValueError(
            f"cached_input_tokens ({cached}) exceeds input_tokens ({input_tokens}): "
            "input_tokens must include the cached ones"
        )
    if reasoning > output_tokens:
        raise ValueError(
            f"reasoning_tokens ({reasoning}) exceeds output_tokens ({output_tokens}): "
            "output_tokens must include the reasoning ones"
        )


# --- validation at load ---------------------------------------------------------------------


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
