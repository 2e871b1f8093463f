"""Keys that live in the data dir rather than in tollway.yaml.

`tollway up` keeps two secrets there, readable only by their owner: the admin key (unless
`TOLLWAY_ADMIN_KEY` is set) that `tollway sql` uses on the same machine, and — with the demo
config — a first virtual key, so a new user can call the proxy at once. Only hashes are
handed to the proxy; the secret files exist so the same keys survive a restart.
"""

from __future__ import annotations

import os
from pathlib import Path

from tollway.config.schema import KeyConfig
from tollway.ids import hash_key, new_key_secret

ADMIN_KEY_FILE = "admin-key"
DEMO_KEY_FILE = "demo-key"

DEMO_KEY = {
    "id": "k_demo",
    "business_line": "marketing",
    "project": "campaigns",
    "task_type": "chat",
    "role": "developer",
}


def _read_or_create_secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = new_key_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


def admin_key(data_dir: Path, configured: str | None) -> str:
    return configured or _read_or_create_secret(data_dir / ADMIN_KEY_FILE)


def read_admin_key(data_dir: Path) -> str | None:
    path = data_dir / ADMIN_KEY_FILE
    return path.read_text().strip() if path.exists() else None


def demo_key(data_dir: Path) -> tuple[str, KeyConfig]:
    secret = _read_or_create_secret(data_dir / DEMO_KEY_FILE)
    return secret, KeyConfig(hash=hash_key(secret), **DEMO_KEY)  # type: ignore[arg-type]
