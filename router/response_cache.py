"""tollway's exact-match response cache: the same request from the same scope within `ttl_s`
is answered from memory — no provider call, nothing billed.

Off by default, as zero data retention asks: `cache: {enabled: true}` in tollway.yaml turns it
on. Answers are kept in this proxy process's memory only (never on disk, never in events),
least recently used first out, up to `max_entries`, and an answer larger than
`max_entry_bytes` is not kept. Chat completions, messages, responses, completions and
embeddings, plain or streamed: a stream's answer is kept whole once it ended normally, and a
kept answer is replayed as a stream (router/cached_streams.py).

Who shares an answer is the `scope`: one key (the default), a business line, or everyone. The
cache key is a SHA-256 over the scope and the request as the gateway hands it to a provider
(the OpenAI-shaped request whichever protocol it came in, serialised with sorted keys), less
what does not change an answer: `user`, `stream` and `stream_options` (so a streamed and a
plain call share their answer). A caller steers it per
request with `x-tollway-cache`: `skip` (neither read nor written) or `refresh` (not read; the
new answer replaces the old).

A hit is a call like any other for keys, rate limits and budgets — admitted, then it spends
nothing — and its event says `cache_hit`, with the cached answer's model, provider and tokens
at cost 0 under price version `cache`: the ledger shows the tokens the cache saved.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

import orjson
from prometheus_client import Counter
from pydantic import BaseModel
from starlette.datastructures import Headers

from router.attribution import Attribution
from router.errors import InvalidRequest
from router.schemas import Usage
from tollway.config.schema import ResponseCache as CacheSettings

CacheMode = Literal["use", "refresh", "skip"]
MODES: tuple[CacheMode, ...] = ("use", "refresh", "skip")
HEADER = "x-tollway-cache"

#: the price version of an answer served from the cache (at cost 0)
CACHE_PRICE_VERSION = "cache"

#: what never changes an answer, left out of the cache key
IGNORED_FIELDS = frozenset({"user", "stream", "stream_options"})

LOOKUPS = Counter(
    "tollway_response_cache_lookups_total", "Response cache lookups", ["outcome"]
)  # hit, miss


@dataclass(frozen=True)
class Cached:
    body: bytes  # the answer as JSON: every hit decodes its own copy, nobody shares a dict
    usage: Usage
    model: str  # the catalogue model that answered
    provider: str
    streamable: bool = True  # False with extended thinking (router/cached_streams.py)

    @classmethod
    def of(cls, body: dict[str, Any], usage: Usage, model: str, provider: str) -> Cached:
        streamable = not any(
            (c.get("message") or {}).keys() & {"thinking_blocks", "reasoning_content"}
            for c in body.get("choices") or []
        )
        return cls(orjson.dumps(body), usage, model, provider, streamable)

    def answer(self) -> dict[str, Any]:
        return orjson.loads(self.body)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Lookup:
    key: bytes
    read: bool  # False for `refresh`: ask a provider, keep its answer


class ResponseCache:
    def __init__(
        self,
        settings: Callable[[], CacheSettings],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings  # followed on reload
        self.clock = clock
        self._entries: OrderedDict[bytes, tuple[float, Cached]] = OrderedDict()

    def mode(self, headers: Headers) -> CacheMode:
        """The caller's `x-tollway-cache`, read only when the cache is on; a value it does not
        know is a 400, not a silent default."""
        if not self.settings().enabled:
            return "skip"
        value = headers.get(HEADER, "use").strip().lower()
        if value not in MODES:
            raise InvalidRequest(f"{HEADER} must be one of {', '.join(MODES)}, not {value!r}")
        return cast(CacheMode, value)

    def lookup(self, who: Attribution, request: BaseModel, mode: CacheMode) -> Lookup | None:
        """Where this request's answer is kept, or None when the cache is not to be used."""
        settings = self.settings()
        if mode == "skip" or not settings.enabled:
            return None
        scope = {"key": who.key_id, "business_line": who.business_line, "global": ""}
        fields = request.model_dump(exclude=set(IGNORED_FIELDS), exclude_none=True)
        digest = hashlib.sha256(type(request).__name__.encode())
        digest.update(scope[settings.scope].encode() + b"\0")
        digest.update(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS))
        if betas := getattr(request, "anthropic_betas", ()):  # features that change the answer
            digest.update(b"\0betas:" + ",".join(betas).encode())
        return Lookup(digest.digest(), read=mode == "use")

    def get(self, lookup: Lookup, stream: bool = False) -> Cached | None:
        """The answer kept for `lookup`, if still fresh (and, for a `stream`, replayable)."""
        if not lookup.read:
            return None
        entry = self._entries.get(lookup.key)
        if entry is not None and stream and not entry[1].streamable:
            entry = None
        elif entry is not None and entry[0] > self.clock():
            self._entries.move_to_end(lookup.key)
            LOOKUPS.labels("hit").inc()
            return entry[1]
        if entry is not None:
            del self._entries[lookup.key]
        LOOKUPS.labels("miss").inc()
        return None

    def put(self, lookup: Lookup, answer: Cached) -> None:
        settings = self.settings()
        if len(answer.body) > settings.max_entry_bytes:
            return
        self._entries[lookup.key] = (self.clock() + settings.ttl_s, answer)
        self._entries.move_to_end(lookup.key)
        while len(self._entries) > settings.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
