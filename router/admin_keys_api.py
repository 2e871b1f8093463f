"""`/v1/admin/keys`: create, list, update (rate limits, content logging), rotate and revoke
virtual keys (role admin).

A created key's secret is returned once and never stored; the record (hash and metadata) goes
on the keys topic, which every replica follows, and is applied here at once so the replica
that created a key accepts it immediately.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from router.errors import Conflict, InvalidRequest, NotFound
from tollway.audit import admin_only, audit
from tollway.auth import Principal
from tollway.config.schema import KeyConfig, Name, RateLimits, Role, TollwayConfig
from tollway.ids import hash_key, new_key_id, new_key_secret
from tollway.key_sync import KeySync
from tollway.key_view import KeyView

router = APIRouter(prefix="/v1/admin", tags=["admin"])

Override = Literal["project", "task_type", "user", "environment", "tags"]
#: the longest overlap a rotation may give the secret it replaces
MAX_GRACE_S = 30 * 24 * 3600


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Name | None = None
    name: str = Field(default="", max_length=200)
    business_line: str = Field(min_length=1)
    project: str = ""
    task_type: str = ""
    environment: str = ""
    role: Role = "developer"
    tags: dict[str, str] = Field(default_factory=dict)
    allowed_models: list[str] = Field(default_factory=list)
    header_overrides: list[Override] | None = None
    limits: RateLimits | None = None
    log_content: bool | None = None
    expires_at: datetime | None = None
    expires_in_days: float | None = Field(default=None, gt=0)


class KeyUpdate(BaseModel):
    """What `PATCH /v1/admin/keys/{id}` may change on a key; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    limits: RateLimits | None = Field(
        default=None, description="The new rate limits; null removes them."
    )
    log_content: bool | None = Field(
        default=None,
        description="Content logging for the key's calls: true, false, or null to follow "
        "the logging policy.",
    )


class KeyRotate(BaseModel):
    """`POST /v1/admin/keys/{id}/rotate`: a new secret for the key."""

    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(
        default=0,
        ge=0,
        le=MAX_GRACE_S,
        description="How long the replaced secret keeps working (0: it stops at once).",
    )


class KeyCreated(BaseModel):
    key: str = Field(description="The secret. Shown once; tollway stores only its hash.")
    record: KeyView


def _sync(request: Request) -> KeySync:
    return request.app.state.key_sync  # type: ignore[no-any-return]


def _check_attribution(body: KeyCreate, config: TollwayConfig) -> None:
    lines = {b.name: b for b in config.organisation.business_lines}
    if lines and body.business_line not in lines:
        raise InvalidRequest(
            f"unknown business line {body.business_line!r} (known: {sorted(lines)})"
        )
    line = lines.get(body.business_line)
    if line and line.projects and body.project and body.project not in line.projects:
        raise InvalidRequest(
            f"unknown project {body.project!r} for {body.business_line} (known: {line.projects})"
        )
    types = config.organisation.task_types
    if types and body.task_type and body.task_type not in types:
        raise InvalidRequest(f"unknown task type {body.task_type!r} (known: {types})")
    names = {m.name for m in config.models} | {r.name for r in config.routes}
    unknown = [m for m in body.allowed_models if m not in names]
    if unknown:
        raise InvalidRequest(f"allowed_models names unknown models or routes: {unknown}")


@router.post("/keys", status_code=201)
async def create_key(
    body: KeyCreate,
    request: Request,
    admin: Principal = Depends(admin_only),
    sync: KeySync = Depends(_sync),
) -> KeyCreated:
    _check_attribution(body, request.app.state.config)
    key_id = body.id or new_key_id()
    if sync.registry.get(key_id) is not None:
        raise Conflict(f"a key with id {key_id!r} already exists")
    now = datetime.now(UTC)
    expires_at = body.expires_at
    if body.expires_in_days is not None:
        expires_at = now + timedelta(days=body.expires_in_days)
    secret = new_key_secret()
    fields = body.model_dump(exclude={"id", "expires_in_days", "expires_at", "header_overrides"})
    if body.header_overrides is not None:
        fields["header_overrides"] = body.header_overrides
    record = KeyConfig(
        id=key_id, hash=hash_key(secret), created_at=now, expires_at=expires_at, **fields
    )
    await sync.publish(record)
    view = KeyView.of(record)
    await audit(request, admin, "key.create", key_id, view.model_dump(mode="json"))
    return KeyCreated(key=secret, record=view)


@router.get("/keys")
async def list_keys(
    _: Principal = Depends(admin_only), sync: KeySync = Depends(_sync)
) -> dict[str, list[KeyView]]:
    return {"keys": [KeyView.of(k) for k in sync.registry.records()]}


@router.delete("/keys/{key_id}")
async def revoke_key(
    key_id: str,
    request: Request,
    admin: Principal = Depends(admin_only),
    sync: KeySync = Depends(_sync),
) -> KeyView:
    key = sync.registry.get(key_id)
    if key is None:
        raise NotFound(f"no key with id {key_id!r}")
    if key.revoked_at is None:
        key = key.model_copy(update={"revoked_at": datetime.now(UTC)})
        await sync.publish(key)
        await audit(request, admin, "key.revoke", key_id, {"revoked_at": key.revoked_at})
    return KeyView.of(key)


@router.patch("/keys/{key_id}")
async def update_key(
    key_id: str,
    body: KeyUpdate,
    request: Request,
    admin: Principal = Depends(admin_only),
    sync: KeySync = Depends(_sync),
) -> KeyView:
    """Change a key's rate limits or content logging (the fields the body names); every
    replica applies them within its poll interval."""
    key = sync.registry.get(key_id)
    if key is None:
        raise NotFound(f"no key with id {key_id!r}")
    changes = body.model_dump(include=body.model_fields_set)
    if not changes:
        raise InvalidRequest("nothing to change: give limits, log_content or both")
    details: dict[str, object] = {}  # each change with what it replaced
    if "limits" in changes:
        details |= {"limits": changes["limits"], "before": _dumped(key.limits)}
    if "log_content" in changes:
        details |= {"log_content": body.log_content, "log_content_before": key.log_content}
    key = key.model_copy(update={name: getattr(body, name) for name in changes})
    await sync.publish(key)
    await audit(request, admin, "key.update", key_id, details)
    return KeyView.of(key)


def _dumped(limits: RateLimits | None) -> dict[str, int | None] | None:
    return limits.model_dump() if limits is not None else None


@router.post("/keys/{key_id}/rotate")
async def rotate_key(
    key_id: str,
    request: Request,
    body: KeyRotate | None = None,
    admin: Principal = Depends(admin_only),
    sync: KeySync = Depends(_sync),
) -> KeyCreated:
    """A new secret for a key, shown once; the key's id, attribution, budgets and limits stay.
    The replaced secret works for `grace_seconds` more (the last rotation's only: rotating
    again ends it), so its holders can switch without an outage; a leaked one, rotated with
    no grace, is refused by every replica within the topic's propagation lag."""
    grace_s = (body or KeyRotate()).grace_seconds
    key = sync.registry.get(key_id)
    if key is None:
        raise NotFound(f"no key with id {key_id!r}")
    now = datetime.now(UTC)
    if not key.active_at(now):
        state = "revoked" if key.revoked_at else "expired"
        raise Conflict(f"key {key_id!r} is {state}: create a new key instead")
    secret = new_key_secret()
    replaced_until = now + timedelta(seconds=grace_s)
    key = key.model_copy(
        update={
            "hash": hash_key(secret),
            "previous_hash": key.hash,
            "previous_valid_until": replaced_until,
        }
    )
    await sync.publish(key)
    details = {"grace_seconds": grace_s, "previous_valid_until": replaced_until}
    await audit(request, admin, "key.rotate", key_id, details)
    return KeyCreated(key=secret, record=KeyView.of(key))
