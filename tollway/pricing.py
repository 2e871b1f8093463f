"""The price catalogue: what a call cost, in exact decimals, and which price said so.

Prices come from the model catalogue of `tollway.yaml`, in USD per million tokens, and are
effective-dated: a model has one or more price points, each in effect from a UTC day start
until the next one. A call is priced once, when it happens, with the point in effect at its
start time; the cost and the `price_version` of that point are stored in the CallEvent.
Changing a price (adding a new point, or editing the file) therefore never silently recomputes
past spend: the ledger keeps what each call cost under the price that applied, and the price
version tells which one it was. To change a price, add a point with a new `effective_from`
rather than editing the current one in place, so the versions stay distinct.

Prices are checked when the config loads (tollway/price_checks.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from tollway.config.schema import PricePoint, TollwayConfig

__all__ = [
    "Costing",
    "PriceCatalogue",
    "PriceError",
    "UnknownModel",
    "UnpricedModel",
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
