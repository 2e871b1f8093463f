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

from tollway.config.schema import KeyConfig, Role
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
        )

    def may_use(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models


ADMIN = Principal(key_id="admin", role="admin")


class KeyRegistry:
    """Every known key by hash and by id; the hot path is one dict lookup.

    Keys come from tollway.yaml and from the keys topic (`apply`, fed by every replica's key
    sync), so a key revoked through one replica is refused by all of them within the topic's
    propagation lag. Updates swap whole dicts, so readers never see a half-applied change.
    """

    def __init__(self, keys: Iterable[KeyConfig] = (), admin_key: str | None = None) -> None:
        self._by_id: dict[str, KeyConfig] = {k.id: k for k in keys}
        self._by_hash: dict[str, tuple[KeyConfig | None, Principal]] = {
            k.hash: (k, Principal.from_key(k)) for k in self._by_id.values()
        }
        if admin_key:
            self._by_hash[hash_key(admin_key)] = (None, ADMIN)

    def resolve(self, secret: str) -> Principal | None:
        """The principal of an active key, or None; raises AuthError for revoked/expired keys."""
        found = self._by_hash.get(hash_key(secret))
        if found is None:
            return None
        key, principal = found
        if key is not None and not key.active_at(datetime.now(UTC)):
            state = "revoked" if key.revoked_at else "expired"
            raise AuthError(f"API key {key.id} is {state}")
        return principal

    def apply(self, key: KeyConfig) -> None:
        """Add, update or revoke (a record with `revoked_at`) one key."""
        by_hash = dict(self._by_hash)
        previous = self._by_id.get(key.id)
        if previous is not None and previous.hash != key.hash:
            by_hash.pop(previous.hash, None)
        by_hash[key.hash] = (key, Principal.from_key(key))
        self._by_id = {**self._by_id, key.id: key}
        self._by_hash = by_hash

    add = apply

    def get(self, key_id: str) -> KeyConfig | None:
        return self._by_id.get(key_id)

    def records(self) -> list[KeyConfig]:
        return sorted(self._by_id.values(), key=lambda k: k.id)


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
