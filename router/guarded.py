"""The guardrails as the gateway applies them to a call: its prompt screened before admission,
its answer read after, what they found alerted (router/proxy_alerts.py) and named in the call's
event. The screening itself is router/guardrails.py."""

from __future__ import annotations

from typing import Any

from router.attribution import Attribution
from router.guardrails import Finding, Guardrails, R, Screening
from router.proxy_alerts import ProxyAlerts
from tollway.events import CallEvent


class GuardedCalls:
    def __init__(self, guardrails: Guardrails, alerts: ProxyAlerts | None) -> None:
        self.guardrails = guardrails
        self.alerts = alerts

    def prompt(self, request: R, who: Attribution) -> Screening[R]:
        """The guardrails' verdict on a call's prompt (admission raises a refusal)."""
        screening = self.guardrails.screen(request, who)
        self._alert(screening.findings, who)
        return screening

    def completion(
        self, body: dict[str, Any], model: str, who: Attribution, event: CallEvent
    ) -> tuple[dict[str, Any], CallEvent]:
        """An answer returned whole: the body the caller gets, and the event naming what the
        answer matched."""
        body, found = self.guardrails.screen_completion(body, model, who)
        return body, self._named(event, found, who)

    def streamed(
        self, messages: list[dict[str, Any]], model: str, who: Attribution, event: CallEvent
    ) -> CallEvent:
        """A streamed answer, which has reached the caller: what it matched is named only."""
        _, found = self.guardrails.screen_answer(messages, model, who, streamed=True)
        return self._named(event, found, who)

    def watches_answers(self) -> bool:
        return self.guardrails.watches_answers()

    def _named(self, event: CallEvent, found: tuple[Finding, ...], who: Attribution) -> CallEvent:
        if not found:
            return event
        self._alert(found, who)
        names = [*event.guardrails, *(finding.guardrail for finding in found)]
        return event.model_copy(update={"guardrails": list(dict.fromkeys(names))})

    def _alert(self, found: tuple[Finding, ...], who: Attribution) -> None:
        if found and self.alerts is not None:
            self.alerts.guardrails_matched(found, who)
