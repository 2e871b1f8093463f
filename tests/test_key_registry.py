"""The key registry's two sources: tollway.yaml's keys, replaced as a whole on reload, and the
keys topic's records (API-created keys, revocations), which win where both know a key id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from tollway.auth import AuthError, KeyRegistry
from tollway.config.schema import KeyConfig
from tollway.ids import hash_key
from tollway.key_sync import KeySync, key_record

ADMIN = "tw-admin-secret"


def key(key_id: str, **fields: object) -> KeyConfig:
    return KeyConfig(id=key_id, hash=hash_key(f"secret-{key_id}"), business_line="ops", **fields)  # type: ignore[arg-type]


def resolves(registry: KeyRegistry, key_id: str) -> str:
    """'active', 'unknown', or the refusal's wording for a revoked or expired key."""
    try:
        principal = registry.resolve(f"secret-{key_id}")
    except AuthError as exc:
        return str(exc)
    return "unknown" if principal is None else "active"


def test_a_key_deleted_from_the_file_is_unknown_after_a_reload() -> None:
    registry = KeyRegistry([key("k_a"), key("k_b")], ADMIN)
    registry.replace_file_keys([key("k_b")])
    assert resolves(registry, "k_a") == "unknown"
    assert resolves(registry, "k_b") == "active"
    assert registry.get("k_a") is None
    assert [k.id for k in registry.records()] == ["k_b"]
    assert registry.resolve(ADMIN) is not None  # the admin key is not the file's


def test_a_reload_adds_and_changes_file_keys() -> None:
    registry = KeyRegistry([key("k_a")])
    registry.replace_file_keys([key("k_a", project="new-project"), key("k_new")])
    principal = registry.resolve("secret-k_a")
    assert principal is not None and principal.project == "new-project"
    assert resolves(registry, "k_new") == "active"


def test_a_key_revoked_through_the_topic_stays_revoked_whatever_the_file_says() -> None:
    file_key = key("k_a")
    registry = KeyRegistry([file_key])
    registry.apply(file_key.model_copy(update={"revoked_at": datetime.now(UTC)}))
    assert resolves(registry, "k_a") == "API key k_a is revoked"
    registry.replace_file_keys([key("k_a", project="edited")])  # an unrelated edit of the file
    assert resolves(registry, "k_a") == "API key k_a is revoked"


def test_keys_from_the_topic_outlive_reloads_of_the_file() -> None:
    registry = KeyRegistry([key("k_file")])
    registry.apply(key("k_api"))
    registry.replace_file_keys([])
    assert resolves(registry, "k_api") == "active"
    assert resolves(registry, "k_file") == "unknown"
    assert [k.id for k in registry.topic_records()] == ["k_api"]


def test_a_key_whose_secret_changed_in_the_file_no_longer_takes_the_old_secret() -> None:
    registry = KeyRegistry([key("k_a")])
    rotated = KeyConfig(id="k_a", hash=hash_key("rotated"), business_line="ops")
    registry.replace_file_keys([rotated])
    assert resolves(registry, "k_a") == "unknown"
    assert registry.resolve("rotated") is not None


def _rotated(old: KeyConfig, secret: str, overlap: timedelta) -> KeyConfig:
    return old.model_copy(
        update={
            "hash": hash_key(secret),
            "previous_hash": old.hash,
            "previous_valid_until": datetime.now(UTC) + overlap,
        }
    )


def test_a_rotated_key_takes_both_secrets_until_the_overlap_ends() -> None:
    registry = KeyRegistry([key("k_a", project="helpdesk")])
    registry.apply(_rotated(key("k_a", project="helpdesk"), "second", timedelta(hours=1)))
    old, new = registry.resolve("secret-k_a"), registry.resolve("second")
    assert old is not None and old == new  # one principal: the same attribution and limits
    assert old.key_id == "k_a" and old.project == "helpdesk"

    registry.apply(_rotated(key("k_a"), "second", timedelta(seconds=-1)))  # the overlap ended
    assert resolves(registry, "k_a") == "API key k_a was rotated: this secret was replaced"
    assert registry.resolve("second") is not None


def test_a_second_rotation_forgets_the_first_secret() -> None:
    registry = KeyRegistry()
    first = _rotated(key("k_a"), "second", timedelta(hours=1))
    registry.apply(first)
    registry.apply(_rotated(first, "third", timedelta(hours=1)))
    assert resolves(registry, "k_a") == "unknown"
    assert registry.resolve("second") is not None and registry.resolve("third") is not None


def test_revoking_a_rotated_key_refuses_both_secrets() -> None:
    registry = KeyRegistry()
    rotated = _rotated(key("k_a"), "second", timedelta(hours=1))
    registry.apply(rotated.model_copy(update={"revoked_at": datetime.now(UTC)}))
    assert resolves(registry, "k_a") == "API key k_a is revoked"
    with pytest.raises(AuthError, match="revoked"):
        registry.resolve("second")


def test_a_previous_secret_needs_its_end() -> None:
    with pytest.raises(ValidationError, match="go together"):
        key("k_a", previous_hash=hash_key("old"))


async def test_the_snapshot_holds_the_topics_records_only(tmp_path: Path) -> None:
    """The embedded broker's snapshot is replayed onto the topic at start-up: with the file's
    keys in it, a key deleted from the file would come back as a topic record."""
    registry = KeyRegistry([key("k_file")])
    snapshot = tmp_path / "keys.json"
    sync = KeySync("127.0.0.1:1", "tollway.keys.v1", registry, snapshot=snapshot)
    registry.apply(key("k_api"))
    sync._write_snapshot()
    assert [r["id"] for r in orjson.loads(snapshot.read_bytes())] == ["k_api"]


def test_a_key_record_leaves_out_what_is_unset_so_older_replicas_read_it() -> None:
    """A replica of an older version refuses fields it does not know (and then ignores the
    record): a revocation written with every newer field as null would never reach it."""
    older_fields = {"id", "hash", "business_line", "project", "task_type", "environment", "role",
                    "tags", "name", "allowed_models", "header_overrides", "revoked_at",
                    "created_at"}  # fmt: skip
    revoked = key("k_old", revoked_at=datetime.now(UTC), created_at=datetime.now(UTC))
    written = orjson.loads(key_record(revoked))
    assert set(written) <= older_fields
    assert KeyConfig.model_validate(written) == revoked
    private = key("k_private", log_content=False, limits={"requests_per_minute": 5})
    written = orjson.loads(key_record(private))
    assert written["log_content"] is False and written["limits"] == {"requests_per_minute": 5}
    assert KeyConfig.model_validate(written) == private
