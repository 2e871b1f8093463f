"""What sessions cost: the calls that named the same `x-tollway-session-id` (an agent's run, a
conversation), summed. Raw-ledger queries only, since the rollups keep no session (at 100M
calls, a week's sessions take 0.1-0.4 s: benchmarks/analytics_queries.py)."""

from __future__ import annotations

from analytics.params import Selection
from analytics.queries import RAW, where

#: a session's calls, summed; `models`: the models that answered; `limited`: the calls refused
#: because the session had cost `sessions.limit_usd` (router/session_spend.py)
_PER_SESSION = (
    "session_id, count() AS calls, sum(cost_usd) AS cost_usd,"
    " sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,"
    " countIf(status != 'ok') AS errors,"
    " countIf(error_code = 'session_budget_exceeded') AS limited,"
    " min(ts) AS first_ts, max(ts) AS last_ts,"
    " dateDiff('millisecond', min(ts), max(ts)) / 1000 AS duration_s,"
    " arraySort(arrayFilter(m -> m != '', groupUniqArray(model))) AS models,"
    " any(business_line) AS business_line, any(project) AS project,"
    " any(task_type) AS task_type, any(key_id) AS key_id"
)
_COLUMNS = (
    "session_id, cost_usd, input_tokens, output_tokens, status, error_code, ts, model,"
    " business_line, project, task_type, key_id"
)
_NAMED = ("session_id != ''",)


def sessions_sql(selection: Selection, limit: int) -> str:
    """The costliest sessions first (ties by id), each summed over the selected calls (chosen
    in a subquery: ClickHouse would read the attribution aliases into the WHERE). Finding the
    costliest first on two columns, then reading only their calls whole, was no faster at 10M
    calls."""
    selected = f"SELECT {_COLUMNS} FROM calls {where(RAW, selection, _NAMED)}"
    return (
        f"SELECT {_PER_SESSION} FROM ({selected})"
        f" GROUP BY session_id ORDER BY cost_usd DESC, session_id LIMIT {int(limit)}"
    )


def sessions_summary_sql(selection: Selection) -> str:
    """How many sessions, what they cost together, and how a session's cost and length spread
    (median, 90th percentile, most)."""
    return (
        "SELECT count() AS sessions, sum(cost) AS cost_usd, sum(n) AS calls,"
        " quantileExact(0.5)(cost) AS median_cost_usd,"
        " quantileExact(0.9)(cost) AS p90_cost_usd, max(cost) AS max_cost_usd,"
        " quantileExact(0.5)(n) AS median_calls"
        " FROM (SELECT session_id, sum(cost_usd) AS cost, count() AS n"
        f" FROM calls {where(RAW, selection, _NAMED)} GROUP BY session_id)"
    )
