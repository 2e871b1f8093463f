"""Guardrails on the proxy: every prompt they cover screened before admission.

`Guardrails.screen` looks at the text a call would send — chat messages' text (plain or in
parts), the arguments of earlier tool calls, embeddings inputs — with the detectors of each
guardrail whose scope matches the call (tollway/config/guardrails.py, router/detectors.py).
What it returns says what admission and the gateway do next:

- a guardrail with `block` matched: `refusal`, a 400 naming the guardrail and what it found
  (never the text itself); admission records the call as `blocked` and raises it;
- one with `redact` matched: `request` is a copy with each match replaced by
  `[REDACTED:<detector>]`, which is what the provider sees and the response cache keys on;
- `matched`: the ids of every guardrail that matched, for the call's event.

Guardrails that apply to answers read the answer's text and tool arguments the same way
(`screen_completion` for an answer returned whole, which a `redact` rewrites; `screen_answer`
with `streamed` for a stream's, which has reached the caller already and is only marked).

With no guardrail configured, or none covering the call, the request passes untouched for the
price of a scope check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import Counter

from router.attribution import Attribution
from router.detectors import Detector, detectors_for
from router.errors import GuardrailBlocked
from router.schemas import ChatCompletionRequest, ChatMessage, EmbeddingsRequest
from tollway.budgets import matches
from tollway.config.schema import (
    GuardrailAction,
    GuardrailConfig,
    GuardrailTarget,
    TollwayConfig,
)

GUARDRAIL_HITS = Counter(
    "tollway_guardrail_hits_total", "Calls a guardrail matched", ["guardrail", "action"]
)

R = TypeVar("R", ChatCompletionRequest, EmbeddingsRequest)
#: where in a text a detector matched: start, end, detector
Match = tuple[int, int, Detector]


@dataclass(frozen=True)
class _Rail:
    config: GuardrailConfig
    detectors: tuple[Detector, ...]

    def first_match(self, text: str) -> Detector | None:
        for detector in self.detectors:
            for _ in detector.find(text):
                return detector
        return None

    def matches(self, text: str) -> list[Match]:
        return [(*span, d) for d in self.detectors for span in d.find(text)]


@dataclass(frozen=True)
class Finding:
    """A guardrail that matched a call's prompt, with what it found first."""

    guardrail: str
    action: GuardrailAction
    label: str  # "an AWS access key id": never the text itself
    model: str  # the model or route the call asked for


@dataclass(frozen=True)
class Screening(Generic[R]):
    request: R
    findings: tuple[Finding, ...] = ()
    refusal: GuardrailBlocked | None = None

    @property
    def matched(self) -> tuple[str, ...]:
        """The ids of the guardrails that matched, for the call's event."""
        return tuple(finding.guardrail for finding in self.findings)


class Guardrails:
    def __init__(self, config: Callable[[], TollwayConfig]) -> None:
        self.config = config
        self._of: TollwayConfig | None = None
        self._rails: tuple[_Rail, ...] = ()

    def screen(self, request: R, who: Attribution) -> Screening[R]:
        rails = self._covering(request.model, who, "prompt")
        if not rails:
            return Screening(request)
        texts = _texts(request)
        found: dict[str, tuple[_Rail, Detector]] = {}
        cuts: list[list[Match]] = [[] for _ in texts]  # what redaction replaces, per text
        for rail in rails:
            for i, text in enumerate(texts):
                if rail.config.action == "redact":  # every match, found once
                    if hits := rail.matches(text):
                        found.setdefault(rail.config.id, (rail, hits[0][2]))
                        cuts[i] += hits
                elif (detector := rail.first_match(text)) is not None:
                    found[rail.config.id] = (rail, detector)
                    break
        if not found:
            return Screening(request)
        findings = tuple(
            Finding(rail.config.id, rail.config.action, detector.label, request.model)
            for rail, detector in found.values()
        )
        for finding in findings:
            GUARDRAIL_HITS.labels(finding.guardrail, finding.action).inc()
        blocking = [finding for finding in findings if finding.action == "block"]
        if blocking:
            refusal = GuardrailBlocked(
                f"blocked by guardrail {blocking[0].guardrail}: the request contains "
                f"{blocking[0].label}",
                details={"guardrail": blocking[0].guardrail},
            )
            return Screening(request, findings, refusal)
        if any(cuts):
            each_text = iter(cuts)  # `_rewritten` visits the texts in `_texts`' order
            request = _rewritten(request, lambda text: redacted(text, next(each_text)))
        return Screening(request, findings)

    def screen_answer(
        self,
        messages: list[dict[str, Any]],
        model: str,
        who: Attribution,
        *,
        streamed: bool = False,
    ) -> tuple[list[dict[str, Any]], tuple[Finding, ...]]:
        """An answer's messages as the caller should get them, and what the guardrails found
        in them (`streamed`: it has reached the caller already, so nothing is redacted)."""
        rails = self._covering(model, who, "answer")
        if not rails:
            return messages, ()
        found: dict[str, Finding] = {}

        def screened(text: str) -> str:
            cuts: list[Match] = []
            for rail in rails:
                if hits := rail.matches(text):
                    finding = Finding(rail.config.id, rail.config.action, hits[0][2].label, model)
                    found.setdefault(rail.config.id, finding)
                    if rail.config.action == "redact" and not streamed:
                        cuts += hits
            return redacted(text, cuts)

        messages = [_answer_rewritten(message, screened) for message in messages]
        for finding in found.values():
            GUARDRAIL_HITS.labels(finding.guardrail, finding.action).inc()
        return messages, tuple(found.values())

    def screen_completion(
        self, body: dict[str, Any], model: str, who: Attribution
    ) -> tuple[dict[str, Any], tuple[Finding, ...]]:
        """`screen_answer` for a chat completion's body: the body the caller should get."""
        if not self.watches_answers():
            return body, ()
        choices = body.get("choices") or []
        messages = [choice.get("message") or {} for choice in choices]
        screened, findings = self.screen_answer(messages, model, who)
        if any(new is not old for new, old in zip(screened, messages, strict=True)):
            fixed = [{**c, "message": m} for c, m in zip(choices, screened, strict=True)]
            body = {**body, "choices": fixed}
        return body, findings

    def watches_answers(self) -> bool:
        """Whether any guardrail reads answers (a stream then keeps its text to be read)."""
        return any("answer" in rail.config.applies_to for rail in self._current())

    def _current(self) -> tuple[_Rail, ...]:
        config = self.config()
        if config is not self._of:
            self._rails = tuple(
                _Rail(g, detectors_for(g.detect, g.patterns)) for g in config.guardrails
            )
            self._of = config
        return self._rails

    def _covering(self, model: str, who: Attribution, target: GuardrailTarget) -> list[_Rail]:
        if not self._current():
            return []
        attrs = who.scope_fields(model)
        return [
            rail
            for rail in self._rails
            if target in rail.config.applies_to and matches(rail.config.scope, attrs, who.tags)
        ]


def redacted(text: str, matches: list[Match]) -> str:
    """`text` with each match replaced by `[REDACTED:<detector>]` (of overlapping matches, the
    first to start wins)."""
    if not matches:
        return text
    parts: list[str] = []
    at = 0
    for start, end, detector in sorted(matches, key=lambda m: (m[0], -m[1])):
        if start < at:  # inside the previous match
            continue
        parts += [text[at:start], f"[REDACTED:{detector.name}]"]
        at = end
    parts.append(text[at:])
    return "".join(parts)


def _texts(request: R) -> list[str]:
    """Every string of the request a guardrail reads (what `_rewritten` visits)."""
    texts: list[str] = []

    def collect(text: str) -> str:
        texts.append(text)
        return text

    _rewritten(request, collect)
    return texts


def _rewritten(request: R, fix: Callable[[str], str]) -> R:
    """The request with `fix` applied to each text a guardrail reads (a copy where any
    changed; the same object where none did)."""
    if isinstance(request, EmbeddingsRequest):
        given = request.input
        if isinstance(given, str):
            new_input: Any = fix(given)
        elif given and isinstance(given[0], str):
            new_input = [fix(text) for text in given]  # type: ignore[arg-type]
        else:
            return request  # token ids
        return request if new_input == given else request.model_copy(update={"input": new_input})
    messages = [_message_rewritten(message, fix) for message in request.messages]
    if all(new is old for new, old in zip(messages, request.messages, strict=True)):
        return request
    return request.model_copy(update={"messages": messages})


def _message_rewritten(message: ChatMessage, fix: Callable[[str], str]) -> ChatMessage:
    update: dict[str, Any] = {}
    content = message.content
    if isinstance(content, str):
        if (new := fix(content)) != content:
            update["content"] = new
    elif content:
        parts = [_part_rewritten(part, fix) for part in content]
        if any(new is not old for new, old in zip(parts, content, strict=True)):
            update["content"] = parts
    if message.tool_calls:
        calls = [_tool_call_rewritten(call, fix) for call in message.tool_calls]
        if any(new is not old for new, old in zip(calls, message.tool_calls, strict=True)):
            update["tool_calls"] = calls
    return message.model_copy(update=update) if update else message


def _answer_rewritten(message: dict[str, Any], fix: Callable[[str], str]) -> dict[str, Any]:
    """An answer's message (a plain dict) with `fix` applied to its text and tool arguments."""
    update: dict[str, Any] = {}
    if isinstance(content := message.get("content"), str) and (new := fix(content)) != content:
        update["content"] = new
    if calls := message.get("tool_calls"):
        fixed = [_tool_call_rewritten(call, fix) for call in calls]
        if any(new is not old for new, old in zip(fixed, calls, strict=True)):
            update["tool_calls"] = fixed
    return {**message, **update} if update else message


def _part_rewritten(part: dict[str, Any], fix: Callable[[str], str]) -> dict[str, Any]:
    text = part.get("text")
    if part.get("type") != "text" or not isinstance(text, str) or (new := fix(text)) == text:
        return part
    return {**part, "text": new}


def _tool_call_rewritten(call: dict[str, Any], fix: Callable[[str], str]) -> dict[str, Any]:
    function = call.get("function")
    arguments = function.get("arguments") if isinstance(function, dict) else None
    if not isinstance(arguments, str) or (new := fix(arguments)) == arguments:
        return call
    return {**call, "function": {**function, "arguments": new}}  # type: ignore[dict-item]
