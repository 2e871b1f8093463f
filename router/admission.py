"""Admission: what happens to a call before any provider sees it.

The call is planned (which models, in which order: router/policy.py), refused if a blocking
guardrail matched its prompt (router/guardrails.py screened it) or its session has cost its
limit (router/session_spend.py), counted against its key's rate limits
(router/rate_limits.py) and its budgets (router/budget_gate.py) — refused with a 429,
downgraded to a cheaper plan (by a budget, or a session past `sessions.downgrade_usd`), or
passed — and given the event that will record it.
A refused call's event is published here, as `blocked`; an admitted one's is completed and
published by the gateway once the call is answered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from router.attribution import Attribution
from router.budget_gate import BudgetGate, Decision
from router.choice import Needs
from router.errors import GatewayError, GuardrailBlocked, RateLimited
from router.events import EventPublisher
from router.guardrails import Screening
from router.needs import Ask
from router.policy import RoutePlan, RoutePolicy
from router.rate_limits import RATE_LIMITED, RateLimiter, line_subject, line_ticket
from router.schemas import Usage
from router.session_spend import SessionBudgetExceeded, SessionSpend
from tollway.config.schema import RateLimits, TollwayConfig
from tollway.events import CallEvent, Endpoint
from tollway.ids import new_event_id
from tollway.pricing import Costing


class Admission:
    def __init__(
        self,
        config: Callable[[], TollwayConfig],
        policy: RoutePolicy,
        budgets: BudgetGate,
        rates: RateLimiter,
        sessions: SessionSpend,
        publisher: EventPublisher,
        price: Callable[[str, datetime, Usage], Costing],
    ) -> None:
        self.config = config
        self.policy = policy
        self.budgets = budgets
        self.rates = rates
        self.sessions = sessions
        #: told of each call refused at its session's limit (the proxy's alerts)
        self.on_session_limit: Callable[[SessionBudgetExceeded, Attribution], None] | None = None
        self.publisher = publisher
        self.price = price
        self._lines: dict[str, RateLimits | None] = {}
        self._lines_of: TollwayConfig | None = None

    def admit(
        self,
        ask: Ask,
        who: Attribution,
        endpoint: Endpoint,
        started: datetime,
        screening: Screening[Any] | None = None,
    ) -> tuple[Decision, RoutePlan, CallEvent]:
        """Plan the call, then its guardrails, session limit, rate limits and the budget
        gate: block (publishing the refused call's event), downgrade (to the route's economy
        tier or the budget's target), or pass."""
        plan = self.policy.plan(ask.model, ask.needs)
        guardrails = screening.matched if screening is not None else ()
        if screening is not None and screening.refusal is not None:
            refused = new_event(
                ask, who, endpoint, plan, started, Decision(), guardrails=guardrails
            )
            self._refused(refused, GuardrailBlocked.code, http_status=400)
            raise screening.refusal
        try:
            self.sessions.check(who.session_id)
        except SessionBudgetExceeded as refusal:
            refused = new_event(
                ask, who, endpoint, plan, started, Decision(), guardrails=guardrails
            )
            self._refused(refused, SessionBudgetExceeded.code)
            if self.on_session_limit is not None:
                self.on_session_limit(refusal, who)
            raise
        first = plan.models[0] if plan.models else None
        line_limits = self._line_limits(who.business_line)
        event_id = None
        if who.limits or line_limits:
            event_id = self._rate_admit(ask, who, endpoint, plan, started, line_limits, guardrails)

        def estimate() -> Decimal:  # priced only when a budget counts the call
            return self._estimate(ask, first.name) if first else Decimal(0)

        decision = self.budgets.admit(who, first.name if first else ask.model, estimate, started)
        if decision.action == "downgraded":
            why = f"budget {decision.downgrade_budget} at its downgrade threshold"
            plan, moved = self._downgraded(plan, ask.needs, why, decision.downgrade_to)
            if not moved:
                decision.action = "warned"
        elif self.sessions.downgraded(who.session_id):
            why = f"session {who.session_id} past sessions.downgrade_usd"
            plan, _ = self._downgraded(plan, ask.needs, why, self.config().sessions.downgrade_to)
        event = new_event(ask, who, endpoint, plan, started, decision, event_id, guardrails)
        if decision.refusal is not None:
            if event_id is not None:
                self.rates.undo(event_id)
                self.rates.undo(line_ticket(event_id))
            self._refused(event, "budget_exceeded")
            raise decision.refusal.error()
        return decision, plan, event

    def nothing_spent(self, decision: Decision, event: CallEvent) -> None:
        """A call that ended without an answer gives back what admission reserved for it."""
        self.budgets.settle(decision, Decimal(0))
        self.rates.release_call(event.event_id)

    def _line_limits(self, business_line: str) -> RateLimits | None:
        """The rate limits the key's business line shares among its keys, if any."""
        config = self.config()
        if config is not self._lines_of:
            lines = config.organisation.business_lines
            self._lines = {line.name: line.limits for line in lines if line.limits}
            self._lines_of = config
        return self._lines.get(business_line)

    def _rate_admit(
        self,
        ask: Ask,
        who: Attribution,
        endpoint: Endpoint,
        plan: RoutePlan,
        started: datetime,
        line_limits: RateLimits | None,
        guardrails: tuple[str, ...],
    ) -> UUID:
        """Count the call against its key's rate limits and its business line's, under the id
        its event will have; a refused call's event is published before the refusal is raised,
        and counts nowhere."""
        event_id = new_event_id()
        tokens = ask.needs.prompt_tokens
        try:
            if who.limits:
                self.rates.admit(who.key_id, who.limits, tokens, event_id)
            if line_limits:
                line = who.business_line
                try:
                    self.rates.admit(line_subject(line), line_limits, tokens,
                                     line_ticket(event_id), label=f"business line {line}")  # fmt: skip
                except RateLimited:
                    self.rates.undo(event_id)
                    raise
        except RateLimited as refusal:
            RATE_LIMITED.labels(refusal.details["limit"]).inc()
            refused = new_event(ask, who, endpoint, plan, started, Decision(), event_id, guardrails)
            self._refused(refused, RateLimited.code)
            raise
        return event_id

    def _refused(self, event: CallEvent, error_code: str, http_status: int = 429) -> None:
        update = {"status": "blocked", "http_status": http_status, "error_code": error_code}
        self.publisher.publish(event.model_copy(update=update))

    def _downgraded(
        self, plan: RoutePlan, needs: Needs, why: str, downgrade_to: str | None
    ) -> tuple[RoutePlan, bool]:
        """The cheaper plan a budget at its downgrade threshold, or a session past its own,
        asks for: the route's economy tier, else `downgrade_to`; and whether the call moved. A
        cheaper plan that cannot serve the request (say, no economy model has tools) leaves
        the call on its own plan, and says so."""
        route = self.config().route(plan.route) if plan.route else None
        try:
            if route is not None and route.economy:
                cheaper = self.policy.plan(route.name, needs, tier="economy")
                return replace(cheaper, reason=f"{why}: {cheaper.reason}"), True
            if downgrade_to:
                cheaper = self.policy.plan(downgrade_to, needs)
                reason = f"{why}: downgraded to {downgrade_to}; {cheaper.reason}"
                return replace(cheaper, route=cheaper.route or plan.route, reason=reason), True
            unmoved = "but there is no cheaper tier to move to"
        except GatewayError as exc:
            unmoved = f"not downgraded: {exc.message}"
        return replace(plan, reason=f"{plan.reason}; {why}, {unmoved}"), False

    def _estimate(self, ask: Ask, model: str) -> Decimal:
        """What the call may cost, before it is made: for a chat call the prompt estimate plus
        the most it may generate (its max_tokens, or 1,000 tokens)."""
        return self.price(model, datetime.now(UTC), ask.reserve).cost_usd


def new_event(
    ask: Ask,
    who: Attribution,
    endpoint: Endpoint,
    plan: RoutePlan,
    started: datetime,
    decision: Decision,
    event_id: UUID | None = None,
    guardrails: tuple[str, ...] = (),
) -> CallEvent:
    """The call's event as admission knows it: who, what was asked, the plan, the budgets,
    the guardrails that matched."""
    return CallEvent(
        event_id=event_id or new_event_id(),
        ts=started,
        budget_action=decision.action,  # type: ignore[arg-type]
        budget_ids=decision.budget_ids,
        endpoint=endpoint,
        requested_model=ask.model,
        stream=ask.stream,
        route=plan.route,
        route_reason=plan.reason,
        guardrails=list(guardrails),
        **_attribution_fields(who),
    )


def _attribution_fields(who: Attribution) -> dict[str, Any]:
    return {
        "business_line": who.business_line,
        "project": who.project,
        "task_type": who.task_type,
        "user": who.user,
        "key_id": who.key_id,
        "environment": who.environment,
        "tags": who.tags,
        "session_id": who.session_id,
    }
