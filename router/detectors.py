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
instead (`word_start`), and a detector with `hints` runs only on text containing one of them
(a one-character search runs at memory speed, 0.06 µs for 2 KB; a regex whose first character
is a class, as `[rs]k_live_`, takes 12 µs to find nothing).
Numbers (phone, card, IBAN) cannot start with a literal, so those detectors read the text's
*shape* instead (`on_shape`): the same text with every digit made `D`, every capital `A` and
every small letter `a` (`str.translate`, 5 µs for 2 KB, once per text), where a card number
starts with the literal `DDDD` and an IBAN with `AADD`. Spans are the same in both.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from tollway.config.schema import DetectorName


@dataclass(frozen=True)
class Detector:
    name: str  # a built-in detector's name, or "pattern" for one from tollway.yaml
    label: str  # what it found, for an error message
    regex: re.Pattern[str]
    valid: Callable[[str], bool] | None = None  # a checksum the match must pass
    hints: tuple[str, ...] = ()  # text with none of them has no match
    word_start: bool = False  # a match must not follow a letter, digit or underscore
    on_shape: bool = False  # the regex reads `shape_of(text)`

    def find(self, text: str) -> Iterator[tuple[int, int]]:
        if self.hints and not any(hint in text for hint in self.hints):
            return
        for match in self.regex.finditer(shape_of(text) if self.on_shape else text):
            start, end = match.span()
            if self.word_start and start and (text[start - 1].isalnum() or text[start - 1] == "_"):
                continue
            if self.valid is None or self.valid(text[start:end]):
                yield start, end


class AtSign(Detector):
    """Email addresses, found from their `@`: a regex starting at the local part would try
    every word of the text (40 µs for 2 KB); this one finds each `@` at memory speed, matches
    the domain after it, and walks back over the local part (at most 64 characters)."""

    def find(self, text: str) -> Iterator[tuple[int, int]]:
        at = text.find("@")
        while at != -1:
            domain = self.regex.match(text, at)
            start = at
            while start > 0 and at - start < 64 and text[start - 1] in _LOCAL_PART:
                start -= 1
            if domain is not None and start < at and text[start] != ".":
                yield start, domain.end()
            at = text.find("@", domain.end() if domain else at + 1)


_LOCAL_PART: Final = frozenset(string.ascii_letters + string.digits + "._%+-")


SHAPES: Final = str.maketrans(
    dict.fromkeys(string.digits, "D")
    | dict.fromkeys(string.ascii_uppercase, "A")
    | dict.fromkeys(string.ascii_lowercase, "a")
)


@lru_cache(maxsize=16)  # the detectors of a guardrail read the same texts one after another
def shape_of(text: str) -> str:
    """`text` with digits as `D`, capitals as `A`, small letters as `a`; all else kept."""
    return text.translate(SHAPES)


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


def _number(
    name: DetectorName,
    label: str,
    shape: str,
    valid: Callable[[str], bool] | None = None,
    hint: str | None = None,
) -> Detector:
    """A detector of a number standing as a word of its own, on the text's shape."""
    regex = re.compile(shape + r"(?!\w)")
    hints = (hint,) if hint else ()
    return Detector(name, label, regex, valid, hints=hints, word_start=True, on_shape=True)


def _secret(label: str, pattern: str, *hints: str) -> Detector:
    return Detector("secrets", label, re.compile(pattern), hints=hints, word_start=True)


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
    _secret("a Stripe secret key", r"[rs]k_live_[A-Za-z0-9]{20,}", "_live_"),
    _secret("a JSON web token", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
)  # fmt: skip

BUILT_IN: Final[dict[DetectorName, tuple[Detector, ...]]] = {
    "secrets": SECRETS,
    "email": (
        AtSign(
            "email",
            "an email address",
            re.compile(r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
            hints=("@",),
        ),
    ),
    "phone": (  # international (+44 20 7946 0958) or North American ((415) 555-0132)
        _number(
            "phone",
            "a phone number",
            r"\+D{1,3}[ .-]?(?:\(D{1,4}\)[ .-]?)?D{1,4}(?:[ .-]?D{2,4}){2,4}",
            hint="+",
        ),
        _number("phone", "a phone number", r"\(DDD\)[ .-]?DDD[ .-]DDDD", hint="("),
        _number("phone", "a phone number", r"DDD[ .-]DDD[ .-]DDDD"),
    ),
    # 13 to 19 digits, grouped by spaces or dashes; every issuer's format starts with four
    "credit_card": (
        _number("credit_card", "a payment card number", r"DDDD(?:[ -]?D){9,15}", luhn_valid),
    ),
    "iban": (_number("iban", "an IBAN", r"AADD(?: ?[AD]{4}){2,7}(?: ?[AD]{1,3})?", iban_valid),),
}


def detectors_for(names: list[DetectorName], patterns: list[str]) -> tuple[Detector, ...]:
    """A guardrail's detectors: the built-in ones it names, then its own patterns."""
    found = [detector for name in names for detector in BUILT_IN[name]]
    found += [
        Detector("pattern", f"text matching pattern {i + 1}", re.compile(pattern))
        for i, pattern in enumerate(patterns)
    ]
    return tuple(found)
