"""One look across pages: a fixed colour per business line and per model, money and limits
formatting.

Colours are derived from the name (not from the order rows arrive in), so "marketing" is the
same colour on the treemap, the time series and every page, on every day.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

PALETTE = (
    "#4C78A8",
    "#F58518",
    "#54A24B",
    "#E45756",
    "#72B7B2",
    "#EECA3B",
    "#B279A2",
    "#FF9DA6",
    "#9D755D",
    "#BAB0AC",
)
#: Well-known models get a family colour; others fall back to a stable hash of the name.
MODEL_COLOURS = {
    "gpt-4o": "#10A37F",
    "gpt-4o-mini": "#6FD3B4",
    "claude-sonnet-4": "#C15F3C",
    "claude-3-5-haiku": "#E8A27C",
    "gemini-2.0-flash": "#4285F4",
    "text-embedding-3-small": "#9AA0A6",
}
STATE_COLOURS = {"ok": "#54A24B", "warned": "#EECA3B", "exceeded": "#E45756"}
STATE_ICONS = {"ok": ":green[●]", "warned": ":orange[●]", "exceeded": ":red[●]"}


def colour_for(name: str) -> str:
    """A stable palette colour for any name."""
    digest = hashlib.sha1(name.encode()).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def model_colour(model: str) -> str:
    return MODEL_COLOURS.get(model) or colour_for(model)


def colour_map(dimension: str, values: Iterable[str]) -> dict[str, str]:
    """A colour per value of one dimension: its stable colour, unless another value of the same
    chart already has it — then the next free palette colour, given in name order, so the
    choice does not depend on the order rows arrive in (with ten colours, six names hashed
    alone share a colour more often than not)."""
    pick = model_colour if dimension == "model" else colour_for
    colours: dict[str, str] = {}
    for value in sorted(set(values)):
        colour = pick(value)
        if colour in colours.values():
            free = [c for c in PALETTE if c not in colours.values()]
            if free:
                colour = free[(PALETTE.index(colour) if colour in PALETTE else 0) % len(free)]
        colours[value] = colour
    return colours


def usd(value: Decimal | float | int | str | None) -> str:
    """Dollars for people: cents above $1, four significant decimals below (LLM calls are cheap,
    and "$0.00" for a day of traffic would read as "nothing happened")."""
    amount = Decimal(str(value or 0))
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount == 0:
        return "$0.00"
    if amount < Decimal("0.0001"):
        return f"{sign}<$0.0001"
    if amount >= 1:
        return f"{sign}${amount.quantize(Decimal('0.01'), ROUND_HALF_UP):,}"
    return f"{sign}${amount.quantize(Decimal('0.0001'), ROUND_HALF_UP)}"


def usd_column_format(amounts: Iterable[float]) -> str:
    """A table column's money format, by `usd`'s rule: "$1,234.57" (Streamlit's "dollar") when
    no amount is below a dollar, else four decimals, so a cheap row does not read "$0.00"."""
    return "dollar" if all(a == 0 or abs(a) >= 1 for a in amounts) else "$%.4f"


def percent(ratio: float) -> str:
    return f"{ratio * 100:.1f} %"


#: a rate limit's unit, by its name in the API
LIMIT_UNITS = (
    ("requests_per_minute", "req/min"),
    ("tokens_per_minute", "tok/min"),
    ("max_parallel_requests", "in flight"),
)


def limits_text(limits: Mapping[str, Any] | None) -> str:
    """A key's rate limits in a few words ("600 req/min, 4 in flight"); "" when none."""
    return ", ".join(
        f"{limits[name]:,} {unit}" for name, unit in LIMIT_UNITS if limits and limits.get(name)
    )


def content_log_text(setting: bool | None) -> str:
    """A key's `log_content`: "on", "off", or "policy" (logging.content decides)."""
    return {True: "on", False: "off", None: "policy"}[setting]


def change(now: Decimal, before: Decimal) -> str:
    """Relative change for a delta badge; "new" when there was nothing before."""
    if before == 0:
        return "new" if now else "—"
    return f"{(now - before) / before * 100:+.0f} %"


_MARKDOWN_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>|#~$"})


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], right: int = 1) -> str:
    """A small table as Markdown, its cells escaped, columns from `right` on right-aligned: for
    the few rows of figures a page shows beside its charts, drawn as plain HTML, where a data
    grid (`st.dataframe`) would load its own code and canvas into the browser."""
    lines = [
        "| " + " | ".join(h.translate(_MARKDOWN_SPECIAL) for h in header) + " |",
        "|" + "|".join(":--" if i < right else "--:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(c.translate(_MARKDOWN_SPECIAL) for c in row) + " |" for row in rows]
    return "\n".join(lines)
