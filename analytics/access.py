"""Who may see which spend: finops and admin see everything, a viewer only its business line.

A viewer key carries its business line in its attribution (`Principal.business_line`); every
question a viewer asks is narrowed to that line here, before any SQL is built, so no endpoint
can forget the restriction.
"""

from __future__ import annotations

from fastapi import Request

from tollway.auth import PermissionDenied, Principal, require_role
from tollway.config.schema import Role

SUMMARY_ROLES: tuple[Role, ...] = ("viewer", "finops", "admin")
FULL_ROLES: tuple[Role, ...] = ("finops", "admin")

summary_reader = require_role(*SUMMARY_ROLES)
full_reader = require_role(*FULL_ROLES)


def restrict_filters(principal: Principal, filters: dict[str, list[str]]) -> dict[str, list[str]]:
    """The filters this principal may use: a viewer's are pinned to its own business line."""
    if principal.role != "viewer":
        return filters
    own = principal.business_line
    if not own:
        raise PermissionDenied("this viewer key has no business line, so it may see no spend")
    asked = filters.get("business_line")
    if asked and set(asked) != {own}:
        raise PermissionDenied(f"a viewer key may only see business line {own!r}")
    return {**filters, "business_line": [own]}


def config_of(request: Request):  # type: ignore[no-untyped-def]
    """The TollwayConfig the app runs with (set by `tollway.service.build_app`)."""
    from tollway.config.schema import TollwayConfig

    config = getattr(request.app.state, "config", None)
    return config if config is not None else TollwayConfig()
