"""Virtual keys across replicas: created on one, usable on the other; revoked on one, refused
on both; expired keys refused; secrets shown once and never listed. Real Tansu broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.pipeline import chat_status, eventually
from tollway.config import load_config
from tollway.config.loader import dump_config
from tollway.config.schema import KeyConfig
from tollway.ids import hash_key, new_key_secret
from tollway.server import serving
from tollway.service import Runtime, build_app
from tollway.settings import Settings

pytestmark = pytest.mark.integration

ADMIN = "tw-test-admin-keys"


def _proxy(bootstrap: str, namespace: str, tmp_path: Path, extra: list[KeyConfig] = ()):  # type: ignore[no-untyped-def,assignment]
    settings = Settings(topic_namespace=namespace, data_dir=tmp_path)
    return build_app(
        Runtime(
            settings=settings,
            config=load_config(None),
            bootstrap=bootstrap,
            roles=frozenset({"proxy"}),
            admin_key=ADMIN,
            extra_keys=list(extra),
        )
    )


@contextlib.asynccontextmanager
async def _two_replicas(
    bootstrap: str, namespace: str, tmp_path: Path
) -> AsyncIterator[tuple[str, str, httpx.AsyncClient]]:
    """Two proxy replicas on one keys topic, and a client."""
    async with (
        serving(_proxy(bootstrap, namespace, tmp_path / "a")) as a,
        serving(_proxy(bootstrap, namespace, tmp_path / "b")) as b,
        httpx.AsyncClient() as http,
    ):
        yield a, b, http


async def test_keys_propagate_and_revocation_reaches_every_replica(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    admin = {"authorization": f"Bearer {ADMIN}"}
    async with _two_replicas(kafka_bootstrap, namespace, tmp_path) as (a, b, http):
        created = await http.post(
            f"{a}/v1/admin/keys",
            headers=admin,
            json={"business_line": "support", "project": "helpdesk", "name": "bot"},
        )
        assert created.status_code == 201, created.text
        secret, key_id = created.json()["key"], created.json()["record"]["id"]
        assert "hash" not in created.json()["record"]

        assert await chat_status(a, secret) == 200  # at once on the replica that created it
        assert await eventually(lambda: chat_status(b, secret), 200) == 200  # and soon on the other

        listed = (await http.get(f"{b}/v1/admin/keys", headers=admin)).json()["keys"]
        assert [k["id"] for k in listed] == [key_id]
        assert secret not in str(listed)

        revoked = await http.delete(f"{b}/v1/admin/keys/{key_id}", headers=admin)
        assert revoked.json()["state"] == "revoked"
        assert await chat_status(b, secret) == 401
        assert await eventually(lambda: chat_status(a, secret), 401) == 401

        refused = await http.post(
            f"{a}/v1/chat/completions",
            headers={"authorization": f"Bearer {secret}"},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        )
        assert refused.json()["error"]["type"] == "authentication_error"
        assert "revoked" in refused.json()["error"]["message"]

        # only admins manage keys; bad input is a clear 4xx
        assert (await http.get(f"{a}/v1/admin/keys")).status_code == 401
        assert (
            await http.post(f"{a}/v1/admin/keys", headers=admin, json={"business_line": "nope"})
        ).status_code == 400
        assert (await http.delete(f"{a}/v1/admin/keys/k_missing", headers=admin)).status_code == 404


async def test_a_rotated_key_switches_secrets_on_every_replica(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """A rotation with a grace period: both secrets work on both replicas until it ends; one
    without: the replaced secret is refused at once where it was rotated and soon everywhere.
    The key keeps its id and attribution throughout."""
    admin = {"authorization": f"Bearer {ADMIN}"}
    async with _two_replicas(kafka_bootstrap, namespace, tmp_path) as (a, b, http):
        created = await http.post(
            f"{a}/v1/admin/keys", headers=admin, json={"business_line": "support", "id": "k_rot"}
        )
        first = created.json()["key"]
        assert await eventually(lambda: chat_status(b, first), 200) == 200

        rotated = await http.post(
            f"{b}/v1/admin/keys/k_rot/rotate", headers=admin, json={"grace_seconds": 600}
        )
        assert rotated.status_code == 200, rotated.text
        second, record = rotated.json()["key"], rotated.json()["record"]
        assert (record["id"], record["business_line"], record["state"]) == (
            "k_rot", "support", "active",
        )  # fmt: skip
        assert record["previous_valid_until"] and "hash" not in str(record)
        assert [await chat_status(b, s) for s in (first, second)] == [200, 200]
        assert await eventually(lambda: chat_status(a, second), 200) == 200
        assert await chat_status(a, first) == 200  # the grace period holds on every replica

        rotated = await http.post(f"{a}/v1/admin/keys/k_rot/rotate", headers=admin)  # no grace
        third = rotated.json()["key"]
        assert await chat_status(a, second) == 401  # refused at once where it was rotated
        assert await eventually(lambda: chat_status(b, second), 401) == 401  # and soon on b
        assert await chat_status(a, first) == 401  # a second rotation ends the first's grace
        assert await eventually(lambda: chat_status(b, third), 200) == 200

        refused = await http.post(
            f"{a}/v1/chat/completions",
            headers={"authorization": f"Bearer {second}"},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        )
        assert refused.json()["error"]["type"] == "authentication_error"
        assert "k_rot was rotated" in refused.json()["error"]["message"]

        # what cannot be rotated is a clear 4xx
        await http.delete(f"{a}/v1/admin/keys/k_rot", headers=admin)
        statuses = [
            (await http.post(f"{a}{path}", headers=admin, json=body)).status_code
            for path, body in (
                ("/v1/admin/keys/k_rot/rotate", {}),  # revoked
                ("/v1/admin/keys/k_missing/rotate", {}),
                ("/v1/admin/keys/k_rot/rotate", {"grace_seconds": -1}),
                ("/v1/admin/keys/k_rot/rotate", {"grace": 60}),
            )
        ]
        assert statuses == [409, 404, 400, 400]


async def test_an_analytics_server_follows_keys_created_and_revoked_on_a_proxy(
    kafka_bootstrap: str, namespace: str, store: object, tmp_path: Path
) -> None:
    """In the distributed setup the analytics role runs apart from the proxies: a finops key
    created through a proxy's admin API must open the analytics API too, until revoked."""
    (tmp_path / "analytics").mkdir()
    analytics = Runtime(
        settings=Settings(topic_namespace=namespace, data_dir=tmp_path / "analytics"),
        config=load_config(None), bootstrap=kafka_bootstrap, roles=frozenset({"analytics"}),
        admin_key=ADMIN, store=store,
    )  # fmt: skip
    admin = {"authorization": f"Bearer {ADMIN}"}
    async with (
        serving(_proxy(kafka_bootstrap, namespace, tmp_path / "proxy")) as proxy,
        serving(build_app(analytics)) as reports,
        httpx.AsyncClient() as http,
    ):
        created = await http.post(
            f"{proxy}/v1/admin/keys", headers=admin,
            json={"business_line": "support", "role": "finops", "id": "k_finops"},
        )  # fmt: skip
        finops = {"authorization": f"Bearer {created.json()['key']}"}

        async def cost_status() -> int:
            return (await http.get(f"{reports}/v1/analytics/cost", headers=finops)).status_code

        assert await eventually(cost_status, 200) == 200
        await http.delete(f"{proxy}/v1/admin/keys/k_finops", headers=admin)
        assert await eventually(cost_status, 401) == 401


async def test_keys_follow_an_edited_file_and_revocations_stick(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """Deleting a key from tollway.yaml refuses it on the next reload; a file key revoked
    through the API stays revoked when the file is edited again and still lists it."""
    keys = {name: KeyConfig(id=name, hash=hash_key(f"secret-{name}"), business_line="support")
            for name in ("k_keep", "k_drop", "k_revoked")}  # fmt: skip
    path = tmp_path / "tollway.yaml"
    config = load_config(None)
    path.write_text(dump_config(config.model_copy(update={"keys": list(keys.values())})))
    settings = Settings(
        config=path, config_reload_s=0.1, topic_namespace=namespace, data_dir=tmp_path
    )
    runtime = Runtime(
        settings=settings, config=load_config(path), bootstrap=kafka_bootstrap,
        roles=frozenset({"proxy"}), admin_key=ADMIN,
    )  # fmt: skip
    async with serving(build_app(runtime)) as base, httpx.AsyncClient() as http:
        assert [await chat_status(base, f"secret-{name}") for name in keys] == [200, 200, 200]
        revoked = await http.delete(
            f"{base}/v1/admin/keys/k_revoked", headers={"authorization": f"Bearer {ADMIN}"}
        )
        assert revoked.json()["state"] == "revoked"

        kept = [keys["k_keep"], keys["k_revoked"]]
        path.write_text(dump_config(config.model_copy(update={"keys": kept})))
        assert await eventually(lambda: chat_status(base, "secret-k_drop"), 401) == 401
        assert await chat_status(base, "secret-k_keep") == 200
        assert await chat_status(base, "secret-k_revoked") == 401
        listed = await http.get(
            f"{base}/v1/admin/keys", headers={"authorization": f"Bearer {ADMIN}"}
        )
        states = {k["id"]: k["state"] for k in listed.json()["keys"]}
        assert states == {"k_keep": "active", "k_revoked": "revoked"}


async def test_an_expired_key_is_refused(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    secret = new_key_secret()
    expired = KeyConfig(
        id="k_old",
        hash=hash_key(secret),
        business_line="marketing",
        expires_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    async with serving(_proxy(kafka_bootstrap, namespace, tmp_path, [expired])) as base:
        assert await chat_status(base, secret) == 401


async def test_the_cli_creates_lists_and_revokes(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    async def tollway(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tollway.cli.main", "keys", *args, "--url", base,
            env={**os.environ, "TOLLWAY_ADMIN_KEY": ADMIN, "COLUMNS": "200"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate()
        return process.returncode or 0, output.decode()

    async with serving(_proxy(kafka_bootstrap, namespace, tmp_path)) as base:
        code, output = await tollway(
            "create", "--business-line", "marketing", "--project", "seo", "--id", "k_cli"
        )
        assert code == 0, output
        secret = next(w for w in output.split() if w.startswith("tw-"))
        assert await chat_status(base, secret) == 200

        code, output = await tollway("list")
        assert code == 0 and "k_cli" in output and "active" in output and secret not in output

        code, output = await tollway("limit", "k_cli", "--rpm", "100", "--max-parallel", "2")
        assert code == 0 and "100 req/min, 2 in flight" in output, output
        code, output = await tollway("content", "k_cli", "off")
        assert code == 0 and "content logging of k_cli: off" in output, output
        code, output = await tollway("list", "--json")
        [listed] = json.loads(output)
        assert listed["log_content"] is False
        assert listed["limits"]["requests_per_minute"] == 100  # the limits stay
        code, output = await tollway("limit", "k_cli")
        assert code == 0 and "limits of k_cli: none" in output, output

        code, output = await tollway("rotate", "k_cli", "--grace-hours", "1")
        assert code == 0 and "works until" in output, output
        rotated = next(w for w in output.split() if w.startswith("tw-"))
        assert [await chat_status(base, s) for s in (secret, rotated)] == [200, 200]

        code, output = await tollway("revoke", "k_cli")
        assert code == 0 and "revoked" in output
        assert [await chat_status(base, s) for s in (secret, rotated)] == [401, 401]

        code, output = await tollway("create", "--business-line", "nowhere")
        assert code == 1 and "unknown business line" in output
