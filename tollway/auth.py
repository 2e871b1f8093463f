"""Who is calling: virtual keys resolved to a `Principal`, and role checks as FastAPI dependencies.

Keys are stored hashed (`sha256:<hex>`); a lookup hashes the presented secret and finds it in
the `KeyRegistry` kept on `app.state.keys`. The admin key from `TOLLWAY_ADMIN_KEY` (or the one
`tollway up` generates) resolves to the `admin` role. Secrets never leave this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Request

from tollway.config.schema import KeyConfig, RateLimits, Role
from tollway.ids import hash_key

ROLE_RANK: dict[str, int] = {"viewer": 0, "developer": 1, "finops": 2, "admin": 3}


class AuthError(Exception):
    """The request carries no valid key (HTTP 401)."""

    code = "invalid_api_key"


class PermissionDenied(Exception):
    """The key is valid but its role may not do this (HTTP 403)."""

    code = "permission_denied"


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: Role
    business_line: str = ""
    project: str = ""
    task_type: str = ""
    environment: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    allowed_models: frozenset[str] = frozenset()
    header_overrides: frozenset[str] = frozenset(
        {"project", "task_type", "user", "environment", "tags"}
    )
    limits: RateLimits | None = None
    log_content: bool | None = None  # None: as the logging policy says

    @classmethod
    def from_key(cls, key: KeyConfig) -> Principal:
        return cls(
            key_id=key.id,
            role=key.role,
            business_line=key.business_line,
            project=key.project,
            task_type=key.task_type,
            environment=key.environment,
            tags=dict(key.tags),
            allowed_models=frozenset(key.allowed_models),
            header_overrides=frozenset(key.header_overrides),
            limits=key.limits,
            log_content=key.log_content,
        )

    def may_use(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models


ADMIN = Principal(key_id="admin", role="admin")

#: what a secret's hash resolves to: its key (None: the admin key), the principal, and when the
#: secret stops working because a rotation replaced it (None: it is the key's current secret)
_Entry = tuple[KeyConfig | None, Principal, datetime | None]


class KeyRegistry:
    """Every known key by hash and by id; the hot path is one dict lookup.

    Keys come from two places, kept apart:
    - the file's: tollway.yaml (and the data dir's demo key), replaced as a whole when the file
      is reloaded (`replace_file_keys`), so a key deleted from the file stops working;
    - the topic's (`apply`, fed by every replica's key sync): keys created and revoked through
      the admin API or `tollway keys`, so a key revoked through one replica is refused by all of
      them within the topic's propagation lag.

    Where both know a key id, the topic's record wins: a file key revoked through the API stays
    revoked whatever the file says later (to let its holder back in, issue a new key). Updates
    swap whole dicts, so readers never see a half-applied change.

    A rotated key answers to two secrets for a while: the new one, and the one it replaced
    until the rotation's `previous_valid_until`. Both resolve to the same principal, so the
    key's attribution, budgets and rate limits carry on across the switch.
    """

    def __init__(self, keys: Iterable[KeyConfig] = (), admin_key: str | None = None) -> None:
        self._file: dict[str, KeyConfig] = {k.id: k for k in keys}
        self._topic: dict[str, KeyConfig] = {}
        self._admin_hash = hash_key(admin_key) if admin_key else None
        self._rebuild()

    def _rebuild(self) -> None:
        by_id = {**self._file, **self._topic}
        by_hash: dict[str, _Entry] = {}
        for key in by_id.values():
            principal = Principal.from_key(key)
            if key.previous_hash is not None:
                by_hash[key.previous_hash] = (key, principal, key.previous_valid_until)
            by_hash[key.hash] = (key, principal, None)
        if self._admin_hash is not None:
            by_hash[self._admin_hash] = (None, ADMIN, None)
        self._by_id, self._by_hash = by_id, by_hash

    def resolve(self, secret: str) -> Principal | None:
        """The principal of an active key, or None; raises AuthError for a revoked or expired
        key, and for a secret a rotation replaced once its overlap has ended."""
        found = self._by_hash.get(hash_key(secret))
        if found is None:
            return None
        key, principal, replaced_at = found
        if key is not None:
            now = datetime.now(UTC)
            if not key.active_at(now):
                state = "revoked" if key.revoked_at else "expired"
                raise AuthError(f"API key {key.id} is {state}")
            if replaced_at is not None and replaced_at <= now:
                raise AuthError(f"API key {key.id} was rotated: this secret was replaced")
        return principal

    def apply(self, key: KeyConfig) -> None:
        """Add, update or revoke (a record with `revoked_at`) one key from the keys topic."""
        self._topic = {**self._topic, key.id: key}
        self._rebuild()

    def replace_file_keys(self, keys: Iterable[KeyConfig]) -> None:
        """The keys a reloaded tollway.yaml declares: new ones work at once, changed ones
        change, and the ones no longer there are refused as unknown."""
        self._file = {k.id: k for k in keys}
        self._rebuild()

    def get(self, key_id: str) -> KeyConfig | None:
        return self._by_id.get(key_id)

    def records(self) -> list[KeyConfig]:
        """Every key, the file's and the topic's."""
        return sorted(self._by_id.values(), key=lambda k: k.id)

    def topic_records(self) -> list[KeyConfig]:
        """The keys the topic holds (created or revoked through the API), not the file's."""
        return sorted(self._topic.values(), key=lambda k: k.id)


def presented_key(request: Request) -> str | None:
    """The secret from `Authorization: Bearer …` or `x-api-key` (Anthropic SDKs)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def principal_of(request: Request) -> Principal:
    """The caller's principal, or `AuthError`."""
    secret = presented_key(request)
    if not secret:
        raise AuthError("missing API key: send 'Authorization: Bearer <key>' or 'x-api-key'")
    principal = request.app.state.keys.resolve(secret)
    if principal is None:
        raise AuthError("invalid API key")
    return principal


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the caller's principal, or `AuthError`. A coroutine, so FastAPI
    calls it on the event loop rather than handing it to a worker thread (a thread hop per
    call costs more than the lookup itself)."""
    return principal_of(request)


def require_role(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """FastAPI dependency factory: authenticate, then insist on one of `roles`."""

    async def dependency(request: Request) -> Principal:
        principal = principal_of(request)
        if principal.role not in roles:
            raise PermissionDenied(
                f"role {principal.role!r} may not use this endpoint (needs one of {', '.join(roles)})"
            )
        return principal

    return dependency
