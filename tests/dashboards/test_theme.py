"""Colours: the same for a name wherever it appears, and never shared within one chart."""

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
