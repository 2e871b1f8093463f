"""What a guardrail can find in a prompt: secrets and personal data, by pattern.

Each detector is a regular expression, and for numbers that carry a checksum (card numbers,
IBANs) the checksum too, so an order number or a timestamp of the right length is not taken
for a card. The patterns follow the formats the issuers publish (and what secret scanners such
as gitleaks look for); they find the common cases, not every possible leak — a guardrail is a
safety net for mistakes, not a data-loss-prevention product.

A match is reported by its span and its detector's `label` ("an AWS access key id"), never by
its text: what a guardrail found must not reach logs, events or error messages.

Speed: a prompt is scanned once per detector, so each built-in pattern starts with what its
match starts with (a literal or a character class: Python's regex engine then skips ahead
with a fast search) rather than a `\b`, which makes it try every position of the text — 1 µs
instead of 50 for a 2 KB prompt. The word boundary on the left is checked on each match
instead (`word_start`), and a detector with a `hint` runs only on text containing it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from tollway.config.schema import DetectorName


@dataclass(frozen=True)
class Detector:
    name: str  # a built-in detector's name, or "pattern" for one from tollway.yaml
    label: str  # what it found, for an error message
    regex: re.Pattern[str]
    valid: Callable[[str], bool] | None = None  # a checksum the match must pass
    hint: str | None = None  # text without it has no match
    word_start: bool = False  # a match must not follow a letter, digit or underscore

    def find(self, text: str) -> Iterator[tuple[int, int]]:
        if self.hint is not None and self.hint not in text:
            return
        for match in self.regex.finditer(text):
            start = match.start()
            if self.word_start and start and (text[start - 1].isalnum() or text[start - 1] == "_"):
                continue
            if self.valid is None or self.valid(match.group()):
                yield match.span()


def luhn_valid(candidate: str) -> bool:
    """The Luhn checksum every payment card number carries."""
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616's check: the rearranged IBAN, letters as numbers, is 1 modulo 97."""
    compact = candidate.replace(" ", "").upper()
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _secret(label: str, pattern: str, hint: str | None = None) -> Detector:
    return Detector("secrets", label, re.compile(pattern), hint=hint, word_start=True)


#: credentials that must never leave for a provider
SECRETS: Final = (
    _secret("a private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"),
    _secret("an Anthropic API key", r"sk-ant-[A-Za-z0-9_-]{20,}"),
    _secret("an OpenAI API key", r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    _secret("a tollway key", r"tw-[A-Za-z0-9_-]{40,}"),
    _secret("an AWS access key id", r"(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    _secret("a GitHub token", r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    _secret("a Google API key", r"AIza[0-9A-Za-z_-]{35}"),
    _secret("a Slack token", r"xox[abprs]-[A-Za-z0-9-]{10,}"),
    _secret("a Stripe secret key", r"[rs]k_live_[A-Za-z0-9]{20,}", hint="_live_"),
    _secret("a JSON web token", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
)  # fmt: skip

BUILT_IN: Final[dict[DetectorName, tuple[Detector, ...]]] = {
    "secrets": SECRETS,
    "email": (
        Detector(
            "email",
            "an email address",
            re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
            hint="@",
            word_start=True,
        ),
    ),
    "phone": (  # international (+44 20 7946 0958) or North American ((415) 555-0132)
        Detector(
            "phone",
            "a phone number",
            re.compile(r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}(?!\w)"),
            hint="+",
        ),
        Detector(
            "phone", "a phone number", re.compile(r"\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}(?!\w)"), hint="("
        ),
        Detector(
            "phone",
            "a phone number",
            re.compile(r"\d{3}[ .-]\d{3}[ .-]\d{4}(?!\w)"),
            word_start=True,
        ),
    ),
    "credit_card": (
        Detector(
            "credit_card",
            "a payment card number",
            re.compile(r"\d(?:[ -]?\d){12,18}(?!\w)"),
            luhn_valid,
            word_start=True,
        ),
    ),
    "iban": (
        Detector(
            "iban",
            "an IBAN",
            re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
            iban_valid,
            word_start=True,
        ),
    ),
}


def detectors_for(names: list[DetectorName], patterns: list[str]) -> tuple[Detector, ...]:
    """A guardrail's detectors: the built-in ones it names, then its own patterns."""
    found = [detector for name in names for detector in BUILT_IN[name]]
    found += [
        Detector("pattern", f"text matching pattern {i + 1}", re.compile(pattern))
        for i, pattern in enumerate(patterns)
    ]
    return tuple(found)
