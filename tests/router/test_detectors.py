"""The guardrails' detectors: what each finds, and the look-alikes it leaves alone (numbers
that fail their checksum, words that merely resemble a key)."""

from __future__ import annotations

import pytest

from router.detectors import BUILT_IN, detectors_for, iban_valid, luhn_valid


def _found(name: str, text: str) -> list[str]:
    return [text[a:b] for d in BUILT_IN[name] for a, b in d.find(text)]  # type: ignore[index]


@pytest.mark.parametrize(
    "secret",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
        "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
        "AIzaSyA-1234567890abcdefghijklmnopqrstu",
        "xoxb-123456789012-abcdefghij",
        "sk_live_0123456789abcdefghijklmn",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "tw-" + "x" * 43,
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    ],
)
def test_secrets_are_found_inside_prose(secret: str) -> None:
    text = f"Please debug this: {secret} thanks"
    assert _found("secrets", text) == [secret]


@pytest.mark.parametrize(
    "text",
    ["the task-based approach", "ask-anything", "AKIA is a prefix", "sk-short", "eyJ alone"],
)
def test_words_that_resemble_a_secret_are_not_one(text: str) -> None:
    assert _found("secrets", text) == []


def test_card_numbers_must_pass_luhn() -> None:
    assert _found("credit_card", "card 4111 1111 1111 1111 exp 12/30") == ["4111 1111 1111 1111"]
    assert _found("credit_card", "order 4111 1111 1111 1112 shipped") == []
    assert luhn_valid("5500-0000-0000-0004") and not luhn_valid("1234")
    # found on the text's shape, reported on the text itself, whatever its alphabet
    assert _found("credit_card", "Überweisung 東京 4111111111111111.") == ["4111111111111111"]
    assert _found("credit_card", "id x4111111111111111 or 41111111111111110") == []


def test_ibans_must_pass_their_check_digits() -> None:
    assert _found("iban", "pay to GB82 WEST 1234 5698 7654 32 today") == [
        "GB82 WEST 1234 5698 7654 32"
    ]
    assert iban_valid("DE89370400440532013000")
    assert _found("iban", "pay to GB00 WEST 1234 5698 7654 32") == []


def test_email_and_phone() -> None:
    assert _found("email", "mail jane.doe+x@example.co.uk now") == ["jane.doe+x@example.co.uk"]
    assert _found("email", "user@localhost or @handle") == []
    assert _found("email", "@team: ask a.b@x.io or c@y.io.") == ["a.b@x.io", "c@y.io"]
    assert _found("phone", "call +44 20 7946 0958 or (415) 555-0132") == [
        "+44 20 7946 0958",
        "(415) 555-0132",
    ]
    assert _found("phone", "version 1.2.3, in 2024 we had 15 calls") == []


def test_a_guardrails_own_patterns_follow_its_built_in_detectors() -> None:
    detectors = detectors_for(["email"], [r"(?i)project\s+bluebird"])
    assert [d.name for d in detectors] == ["email", "pattern"]
    assert list(detectors[1].find("the Project  Bluebird plan")) == [(4, 21)]
