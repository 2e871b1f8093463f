"""Anthropic beta features a caller asks for with `anthropic-beta`, passed on to an Anthropic
upstream.

Coding tools such as Claude Code, and the Anthropic SDK's `client.beta.messages` (`betas=[…]`),
switch features on per request with the `anthropic-beta` header: interleaved thinking, a larger
context window, fine-grained tool streaming. tollway sends the caller's betas to an Anthropic
upstream after the provider's own (an `anthropic-beta` in its `headers` in tollway.yaml), from
the Messages and the Chat Completions endpoints alike; other providers never see them. A name
that cannot be a beta's is a 400, so a garbled header is not silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from router.errors import InvalidRequest

HEADER = "anthropic-beta"
BETA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MAX_BETAS = 32


def requested_betas(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The betas in the caller's `anthropic-beta` header (comma-separated), in order."""
    raw = headers.get(HEADER)
    if not raw:
        return ()
    names = [name.strip() for name in raw.split(",") if name.strip()]
    for name in names:
        if not BETA_NAME.fullmatch(name):
            raise InvalidRequest(f"{HEADER}: {name[:40]!r} is not a beta name")
    if len(names) > MAX_BETAS:
        raise InvalidRequest(f"{HEADER}: at most {MAX_BETAS} betas")
    return tuple(names)


def beta_headers(configured: str | None, requested: Iterable[str]) -> dict[str, str]:
    """The `anthropic-beta` header for one call: the provider's betas, then the caller's,
    each once; no header when there are none."""
    names = [n.strip() for n in (configured or "").split(",") if n.strip()]
    names += [n for n in requested if n not in names]
    return {HEADER: ",".join(dict.fromkeys(names))} if names else {}
