"""Standard Webhooks signatures: a thin layer over `standardwebhooks.Webhook`.

Secrets live in the environment variable a webhook's `secret_env` names, never in tollway.yaml.
Two forms are accepted, so operators can paste what their receiver gave them:

- `whsec_<base64>` — the Standard Webhooks form: the key is the base64-decoded bytes after the
  prefix (what `standardwebhooks.Webhook("whsec_…")` uses on the receiving side);
- anything else — a raw string: the key is its UTF-8 bytes, unchanged. A receiver verifies with
  `Webhook(secret.encode("utf-8"))`, or with `"whsec_" + base64(secret)`.

The choice is made by the prefix alone: a raw string that happens to look like base64 is still
taken literally, so the same text always means the same key.

The secret is loaded once, at start-up, and kept inside `Signer`; no message, repr or record
built here contains it, and a missing variable is a configuration error raised before anything
is delivered.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


class WebhookSecretError(ValueError):
    """The signing secret of a webhook is missing or unusable (a configuration error)."""


def load_secret(env_name: str, environ: Mapping[str, str] | None = None) -> bytes:
    """The signing key held by the variable `env_name` (see the module docstring for forms).

    Error messages name the variable, never its value.
    """
    env = os.environ if environ is None else environ
    raw = env.get(env_name, "")
    if not raw.strip():
        raise WebhookSecretError(
            f"environment variable {env_name} is not set: it must hold the webhook signing secret"
        )
    if not raw.startswith(SECRET_PREFIX):
        return raw.encode("utf-8")
    body = raw[len(SECRET_PREFIX) :].strip()
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookSecretError(
            f"environment variable {env_name} starts with {SECRET_PREFIX!r} but the rest is not "
            "base64; use a whsec_<base64> secret or a raw string without the prefix"
        ) from None
    if not key:
        raise WebhookSecretError(f"the secret in {env_name} is empty after {SECRET_PREFIX!r}")
    return key


class Signer:
    """Signs payloads for one endpoint; holds the key so callers never have to."""

    __slots__ = ("_webhook",)

    def __init__(self, key: bytes) -> None:
        self._webhook = Webhook(key)

    @classmethod
    def from_env(cls, env_name: str, environ: Mapping[str, str] | None = None) -> Signer:
        return cls(load_secret(env_name, environ))

    def sign(self, msg_id: str, timestamp: datetime, payload: bytes | str) -> dict[str, str]:
        """The three Standard Webhooks headers for one delivery attempt.

        `timestamp` is the attempt's time (receivers reject ones older than a few minutes, so a
        retry is re-signed with a fresh one); `msg_id` stays the same on every attempt.
        """
        moment = timestamp.astimezone(UTC) if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
        data = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": self._webhook.sign(msg_id, moment, data),
        }

    def __repr__(self) -> str:
        return "Signer(<secret hidden>)"
