"""The `x-tollway-*` response headers: what served the call, what it cost, and why.

An SDK client reads them from the raw response (e.g. `with_raw_response` in the OpenAI SDK), so
a downgrade under budget pressure, an explored model, or a prompt a guardrail rewrote
(`x-tollway-guardrails`: the ids of those that matched; a stream's headers leave before its
answer is read, so there only the prompt's) is visible without the ledger.
"""

from __future__ import annotations

from tollway.events import CallEvent


def call_headers(event: CallEvent, *, cost: bool = True) -> dict[str, str]:
    """The headers of a served call; a stream's cost is known only at its end (`cost=False`)."""
    headers = {
        "x-tollway-event-id": str(event.event_id),
        "x-tollway-model": event.model,
        "x-tollway-provider": event.provider,
    }
    if cost:
        headers["x-tollway-cost-usd"] = format(event.cost_usd, "f")
    if event.route:
        headers["x-tollway-route"] = event.route
    if event.budget_action != "none":
        headers["x-tollway-budget-action"] = event.budget_action
    if event.cache_hit:
        headers["x-tollway-cache"] = "hit"
    if event.guardrails:
        headers["x-tollway-guardrails"] = ",".join(event.guardrails)
    return headers
