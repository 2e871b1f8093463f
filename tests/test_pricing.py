"""The price catalogue: effective dating, token semantics, exact decimals, and load checks."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tollway.config import load_config
from tollway.config.schema import ModelConfig, TollwayConfig
from tollway.price_checks import CATCH_ALL, family_of, validate_prices
from tollway.pricing import Costing, PriceCatalogue, UnknownModel, UnpricedModel

BEFORE = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
AFTER = datetime(2024, 9, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo() -> PriceCatalogue:
    return PriceCatalogue.from_config(load_config())


def catalogue(*models: dict[str, object]) -> PriceCatalogue:
    cfg = TollwayConfig.model_validate(
        {
            "providers": [{"name": "sim", "type": "sim"}],
            "models": [{"provider": "sim", **m} for m in models],
        }
    )
    return PriceCatalogue.from_config(cfg)


def test_effective_dating(demo: PriceCatalogue) -> None:
    old = demo.price_at("gpt-4o", BEFORE)
    new = demo.price_at("gpt-4o", AFTER)
    assert (old.input_per_mtok, old.output_per_mtok) == (Decimal("5.00"), Decimal("15.00"))
    assert (new.input_per_mtok, new.output_per_mtok) == (Decimal("2.50"), Decimal("10.00"))
    assert demo.price_version("gpt-4o", BEFORE) == "gpt-4o@2024-05-13"
    assert demo.price_version("gpt-4o", AFTER) == "gpt-4o@2024-08-06"
    one_m = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    assert demo.cost("gpt-4o", BEFORE, **one_m) == Costing(Decimal("20"), "gpt-4o@2024-05-13")
    assert demo.cost("gpt-4o", AFTER, **one_m) == Costing(Decimal("12.5"), "gpt-4o@2024-08-06")


def test_price_change_takes_effect_at_utc_day_start(demo: PriceCatalogue) -> None:
    last_old = datetime(2024, 8, 5, 23, 59, 59, 999999, tzinfo=UTC)
    first_new = datetime(2024, 8, 6, tzinfo=UTC)
    assert demo.price_version("gpt-4o", last_old) == "gpt-4o@2024-05-13"
    assert demo.price_version("gpt-4o", first_new) == "gpt-4o@2024-08-06"
    # 01:00 in Paris on the 6th is still the 5th in UTC
    paris_summer = timezone(timedelta(hours=2))
    assert demo.price_version("gpt-4o", datetime(2024, 8, 6, 1, tzinfo=paris_summer)).endswith(
        "@2024-05-13"
    )
    # a naive datetime is UTC
    assert demo.price_version("gpt-4o", datetime(2024, 8, 6)) == "gpt-4o@2024-08-06"


def test_version_format(demo: PriceCatalogue) -> None:
    assert demo.price_version("gpt-4o-mini", AFTER) == "gpt-4o-mini@2024-07-18"
    # a call dated before the first known price is costed at that first price
    early = datetime(2020, 1, 1, tzinfo=UTC)
    assert demo.price_version("gpt-4o", early) == "gpt-4o@2024-05-13"
    assert demo.price_version("claude-sonnet-4", early) == "claude-sonnet-4@2025-05-22"


def test_cached_tokens_billed_at_cached_price(demo: PriceCatalogue) -> None:
    # gpt-4o-mini: 0.15 input, 0.075 cached, 0.60 output per 1M
    cost = demo.cost(
        "gpt-4o-mini", AFTER, input_tokens=1000, cached_input_tokens=400, output_tokens=100
    )
    expected = (600 * Decimal("0.15") + 400 * Decimal("0.075") + 100 * Decimal("0.60")) / 10**6
    assert cost.cost_usd == expected == Decimal("0.00018")


def test_cached_falls_back_to_input_price(demo: PriceCatalogue) -> None:
    # gpt-4o before 2024-08-06 had no cached price
    with_cache = demo.cost(
        "gpt-4o", BEFORE, input_tokens=1000, cached_input_tokens=1000, output_tokens=0
    )
    without = demo.cost("gpt-4o", BEFORE, input_tokens=1000, output_tokens=0)
    assert with_cache == without


def test_reasoning_tokens() -> None:
    cat = catalogue(
        {
            "name": "o3-mini",
            "input_per_mtok": 1.10,
            "output_per_mtok": 4.40,
            "reasoning_per_mtok": 8.80,
        },
        {"name": "o4-mini", "input_per_mtok": 1.10, "output_per_mtok": 4.40},
    )
    # 300 output tokens of which 200 reasoning
    priced = cat.cost("o3-mini", AFTER, input_tokens=0, output_tokens=300, reasoning_tokens=200)
    assert priced.cost_usd == (100 * Decimal("4.40") + 200 * Decimal("8.80")) / 10**6
    # without a reasoning price, reasoning tokens are output tokens
    plain = cat.cost("o4-mini", AFTER, input_tokens=0, output_tokens=300, reasoning_tokens=200)
    assert plain.cost_usd == cat.cost("o4-mini", AFTER, input_tokens=0, output_tokens=300).cost_usd
    assert plain.cost_usd == Decimal("0.00132")


def test_cache_writes_billed_at_the_cache_write_price() -> None:
    cat = catalogue(
        {
            "name": "claude-sonnet-4",
            "input_per_mtok": 3,
            "output_per_mtok": 15,
            "cached_input_per_mtok": 0.30,
            "cache_write_per_mtok": 3.75,
        },
        {"name": "claude-3-5-haiku", "input_per_mtok": 0.80, "output_per_mtok": 4},
    )
    # 10,000 prompt tokens: 6,000 read from the cache, 3,000 written to it, 1,000 neither
    priced = cat.cost(
        "claude-sonnet-4",
        AFTER,
        input_tokens=10_000,
        output_tokens=0,
        cached_input_tokens=6_000,
        cache_write_tokens=3_000,
    )
    assert (
        priced.cost_usd == (1_000 * 3 + 6_000 * Decimal("0.30") + 3_000 * Decimal("3.75")) / 10**6
    )
    # without a cache-write price, written tokens are input tokens
    plain = cat.cost(
        "claude-3-5-haiku", AFTER, input_tokens=100, output_tokens=0, cache_write_tokens=40
    )
    assert plain.cost_usd == Decimal("0.00008")
    with pytest.raises(ValueError, match="must include both"):
        cat.cost(
            "claude-sonnet-4", AFTER, input_tokens=10, output_tokens=0,
            cached_input_tokens=6, cache_write_tokens=5,
        )  # fmt: skip


def test_exact_decimal_quantized_half_even() -> None:
    cat = catalogue(
        {
            "name": "gemini-2.0-flash",
            "input_per_mtok": 0.10,
            "output_per_mtok": 0.40,
            "cached_input_per_mtok": 0.025,
        }
    )
    # one token at 0.10/M = 1e-7 USD exactly; one cached token = 2.5e-8
    one = cat.cost("gemini-2.0-flash", AFTER, input_tokens=1, output_tokens=0)
    assert one.cost_usd == Decimal("0.000000100")
    assert one.cost_usd.as_tuple().exponent == -9
    # 0.1 + 0.2 style float trouble does not exist here
    three = cat.cost("gemini-2.0-flash", AFTER, input_tokens=3, output_tokens=0)
    assert three.cost_usd == Decimal("0.0000003")
    # 1 cached token = 0.000000025 exactly: fits in 1e-9
    cached = cat.cost(
        "gemini-2.0-flash", AFTER, input_tokens=1, cached_input_tokens=1, output_tokens=0
    )
    assert cached.cost_usd == Decimal("0.000000025")


def test_rounding_is_half_even() -> None:
    cat = catalogue(
        {
            "name": "m-half-down",
            "family": "custom",
            "input_per_mtok": "0.0005",
            "output_per_mtok": 0,
        },
        {"name": "m-half-up", "family": "custom", "input_per_mtok": "0.0015", "output_per_mtok": 0},
    )
    # 1 token x 0.0005/M = 5e-10 → 0 (half to even); 1 x 0.0015/M = 1.5e-9 → 2e-9
    assert cat.cost("m-half-down", AFTER, input_tokens=1, output_tokens=0).cost_usd == 0
    assert cat.cost("m-half-up", AFTER, input_tokens=1, output_tokens=0).cost_usd == Decimal(
        "0.000000002"
    )


def test_cost_is_additive_in_tokens(demo: PriceCatalogue) -> None:
    """Prices with <= 3 decimals x integer tokens are exact at 1e-9, so splitting a call adds up."""
    rng = random.Random(7)
    for _ in range(200):
        model = rng.choice(["gpt-4o", "claude-3-5-haiku", "gpt-4o-mini", "claude-sonnet-4"])
        a_in, b_in = rng.randrange(0, 200_000), rng.randrange(0, 200_000)
        a_c, b_c = rng.randrange(0, a_in + 1), rng.randrange(0, b_in + 1)
        a_out, b_out = rng.randrange(0, 20_000), rng.randrange(0, 20_000)
        whole = demo.cost(
            model,
            AFTER,
            input_tokens=a_in + b_in,
            cached_input_tokens=a_c + b_c,
            output_tokens=a_out + b_out,
        )
        part_a = demo.cost(
            model, AFTER, input_tokens=a_in, cached_input_tokens=a_c, output_tokens=a_out
        )
        part_b = demo.cost(
            model, AFTER, input_tokens=b_in, cached_input_tokens=b_c, output_tokens=b_out
        )
        assert whole.cost_usd == part_a.cost_usd + part_b.cost_usd
        assert demo.cost(model, AFTER, input_tokens=0, output_tokens=0).cost_usd == 0


def test_unknown_and_unpriced_models() -> None:
    cat = catalogue(
        {"name": "gpt-4o-mini", "input_per_mtok": 0.15, "output_per_mtok": 0.60},
        {"name": "llama-local"},
        {
            "name": "gpt-4o",
            "price_history": [
                {"effective_from": "2030-01-01", "input_per_mtok": 2, "output_per_mtok": 8}
            ],
        },
    )
    with pytest.raises(UnknownModel, match="'gpt-5' is not in the catalogue"):
        cat.cost("gpt-5", AFTER, input_tokens=1, output_tokens=1)
    with pytest.raises(UnpricedModel, match="'llama-local' has no price"):
        cat.cost("llama-local", AFTER, input_tokens=1, output_tokens=1)
    # before the first known price, the first one applies rather than no price at all
    assert cat.price_version("gpt-4o", AFTER) == "gpt-4o@2030-01-01"
    assert cat.price_version("gpt-4o", datetime(2030, 1, 2, tzinfo=UTC)) == "gpt-4o@2030-01-01"
    assert "gpt-4o-mini" in cat and "gpt-5" not in cat
    assert cat.is_priced("gpt-4o-mini") and not cat.is_priced("llama-local")
    assert isinstance(UnknownModel("x"), LookupError)


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        (
            {"input_tokens": 10, "cached_input_tokens": 11, "output_tokens": 0},
            "must include the cached ones",
        ),
        (
            {"input_tokens": 0, "output_tokens": 5, "reasoning_tokens": 6},
            "must include the reasoning ones",
        ),
        ({"input_tokens": -1, "output_tokens": 0}, "input_tokens must be >= 0"),
    ],
)
def test_inconsistent_usage_is_refused(
    demo: PriceCatalogue, usage: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        demo.cost("gpt-4o-mini", AFTER, **usage)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("openai/gpt-4o", "gpt-4o"),
        ("gpt-4.1-nano", "gpt-4.1"),
        ("o1", "o-series"),
        ("o4-mini", "o-series"),
        ("claude-3-5-haiku", "claude-haiku"),
        ("claude-haiku-4-5", "claude-haiku"),
        ("claude-sonnet-4", "claude-sonnet"),
        ("claude-opus-4-1", "claude-opus"),
        ("gemini-2.0-flash", "gemini-flash"),
        ("gemini-2.5-pro", "gemini-pro"),
        ("text-embedding-3-small", "text-embedding"),
        ("llama-3.1-70b", "any model"),
        ("foo1", "any model"),
    ],
)
def test_families(name: str, family: str) -> None:
    model = ModelConfig(name=name, provider="p")
    assert family_of(model).name == family


def test_family_from_upstream_name_and_explicit_family() -> None:
    aliased = ModelConfig(name="fast", provider="p", upstream_name="claude-3-5-haiku-latest")
    assert family_of(aliased).name == "claude-haiku"
    custom = ModelConfig(name="gpt-4o-ft", provider="p", family="custom")
    assert family_of(custom) is CATCH_ALL
    explicit = ModelConfig(name="my-model", provider="p", family="claude-opus")
    assert family_of(explicit).name == "claude-opus"


def test_demo_prices_pass_validation() -> None:
    assert validate_prices(load_config()) == []


def test_per_token_and_cached_price_mistakes() -> None:
    cfg = TollwayConfig.model_validate(
        {
            "providers": [{"name": "sim", "type": "sim"}],
            "models": [
                {
                    "name": "claude-sonnet-4",
                    "provider": "sim",
                    "input_per_mtok": "0.000003",
                    "output_per_mtok": 15,
                    "cached_input_per_mtok": 300,
                },
            ],
        }
    )
    issues = dict(validate_prices(cfg))
    assert "per-token price" in issues[("models", 0, "input_per_mtok")]
    assert "far above" in issues[("models", 0, "cached_input_per_mtok")]
    assert ("models", 0, "output_per_mtok") not in issues


def test_history_points_are_validated() -> None:
    cfg = TollwayConfig.model_validate(
        {
            "providers": [{"name": "sim", "type": "sim"}],
            "models": [
                {
                    "name": "gpt-4o",
                    "provider": "sim",
                    "input_per_mtok": 2.5,
                    "output_per_mtok": 10,
                    "price_effective_from": date(2024, 8, 6),
                    "price_history": [
                        {
                            "effective_from": date(2024, 5, 13),
                            "input_per_mtok": 0.005,
                            "output_per_mtok": 15,
                        }
                    ],
                },
            ],
        }
    )
    [(loc, message)] = validate_prices(cfg)
    assert loc == ("models", 0, "price_history", 0, "input_per_mtok")
    assert "per-1K-token price" in message
