"""Colours: the same for a name wherever it appears, never shared within one chart; money."""

from __future__ import annotations

from dashboards import theme

LINES = ["marketing", "support", "research", "engineering", "finance", "sales"]


def test_the_values_of_a_chart_get_distinct_colours_whatever_their_order() -> None:
    colours = theme.colour_map("business_line", LINES)
    assert len(set(colours.values())) == len(LINES)
    assert theme.colour_map("business_line", list(reversed(LINES))) == colours


def test_a_name_keeps_its_own_colour_when_nothing_else_has_it() -> None:
    for name in LINES:
        assert theme.colour_map("business_line", [name]) == {name: theme.colour_for(name)}
    assert theme.colour_map("model", ["gpt-4o"]) == {"gpt-4o": theme.MODEL_COLOURS["gpt-4o"]}


def test_more_values_than_colours_reuse_the_palette() -> None:
    names = [f"project-{i}" for i in range(3 * len(theme.PALETTE))]
    colours = theme.colour_map("project", names)
    assert set(colours) == set(names) and set(colours.values()) <= set(theme.PALETTE)


def test_money_columns_show_cents_unless_some_amount_is_below_a_dollar() -> None:
    assert theme.usd_column_format([76_231.76, 1.0, 0.0]) == "dollar"  # "$76,231.76"
    assert theme.usd_column_format([76_231.76, 0.0004]) == "$%.4f"  # not "$0.00"
    assert theme.usd_column_format([]) == "dollar"
