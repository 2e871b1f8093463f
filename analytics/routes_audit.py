"""`GET /v1/analytics/audit`: the audit trail, newest first (role admin).

Filters: `since` and `until` (ISO 8601), `action` (repeat for several), `actor` (a key id) and
`target` (a key, budget or webhook id); `limit` rows (default 100, at most 10,000). JSON, or CSV
and Arrow by `Accept`, as the other analytics endpoints.
"""

from __future__ import annotations

from typing import get_args

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from analytics.endpoint import answer, iso, run, store_of
from analytics.params import InvalidParameter, check_known, parse_instant, parse_int
from analytics.responses import render
from analytics.store.base import sql_string
from tollway.audit import admin_only
from tollway.audit_events import AuditAction
from tollway.auth import Principal

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

COLUMNS = ["id", "ts", "actor", "actor_role", "action", "target", "details", "client"]
ACTIONS = frozenset(get_args(AuditAction))


@router.get("/audit", summary="Changes made through the admin API, and refused attempts")
async def audit_trail(request: Request, _: Principal = Depends(admin_only)) -> Response:
    async def build() -> Response:
        params = request.query_params
        check_known(params, ["since", "until", "action", "actor", "target", "limit"], filters=False)
        where = ["1"]
        for name, op in (("since", ">="), ("until", "<")):
            if text := params.get(name):
                moment = parse_instant(text, name).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
                where.append(f"ts {op} toDateTime64({sql_string(moment)}, 3, 'UTC')")
        actions = params.getlist("action")
        unknown = sorted(set(actions) - ACTIONS)
        if unknown:
            raise InvalidParameter(f"action: unknown {unknown} (known: {sorted(ACTIONS)})")
        if actions:
            where.append(f"action IN ({', '.join(sql_string(a) for a in actions)})")
        for name in ("actor", "target"):
            if text := params.get(name):
                where.append(f"{name} = {sql_string(text)}")
        limit = parse_int(params, "limit", 100, 1, 10_000)
        result = await run(
            store_of(request),
            f"SELECT {', '.join(COLUMNS)} FROM audit_log FINAL"
            f" WHERE {' AND '.join(where)} ORDER BY ts DESC, id LIMIT {limit}",
        )
        entries = [
            {
                **row,
                "id": str(row["id"]),
                "ts": iso(row["ts"]),
                "details": orjson.loads(row["details"]),
            }
            for row in result.rows
        ]
        return render(request, {"entries": entries}, "entries", COLUMNS)

    return await answer(request, build)
