"""How CLI commands talk to a running tollway: base URL, admin key, friendly failures.

Commands never open the store or the broker themselves (a chDB directory belongs to the one
`tollway up` process); they call the HTTP API with a key from `--key`, else
`TOLLWAY_ADMIN_KEY`, else the admin key `tollway up` keeps in the data dir.
"""

from __future__ import annotations

from typing import Any

import httpx
import typer
from rich.console import Console

from tollway import keystore
from tollway.settings import Settings

err = Console(stderr=True)


def resolve_key(explicit: str | None, settings: Settings) -> str | None:
    if explicit:
        return explicit
    if settings.admin_key:
        return settings.admin_key.get_secret_value()
    return keystore.read_admin_key(settings.data_dir)


def fail(message: str) -> typer.Exit:
    err.print(f"[red]{message}[/red]", highlight=False, markup=True)
    return typer.Exit(code=1)


def error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return str(error.get("message") or response.text)
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}: {response.text.strip()[:500]}"


class ApiClient:
    def __init__(self, url: str | None, key: str | None, timeout: float = 60.0) -> None:
        settings = Settings()
        self.base = (url or f"http://{settings.host}:{settings.port}").rstrip("/")
        secret = resolve_key(key, settings)
        if not secret:
            raise fail(
                "no key: pass --key, set TOLLWAY_ADMIN_KEY, or run `tollway up` (it writes "
                f"{settings.data_dir / keystore.ADMIN_KEY_FILE})"
            )
        self._headers = {"Authorization": f"Bearer {secret}"}
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The response if it is a success; otherwise print why and exit 1."""
        try:
            response = httpx.request(
                method,
                f"{self.base}{path}",
                json=json,
                headers={**self._headers, **(headers or {})},
                timeout=self.timeout,
            )
        except httpx.ConnectError:
            raise fail(f"cannot reach tollway at {self.base}: is `tollway up` running?") from None
        except httpx.HTTPError as exc:
            raise fail(f"request to {self.base} failed: {exc}") from None
        if response.status_code >= 400:
            raise fail(error_message(response))
        return response
