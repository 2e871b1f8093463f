"""One streamed call after its first chunk: relay the chunks, keep the account, publish once.

A stream is billed however it ends:
- normally: on the usage the upstream reported (tollway always asks for it);
- the upstream fails mid-stream: on the tokens generated so far, status `error`;
- the caller goes away: on the tokens generated so far, status `ok`, `http_status` 499 and
  `error_code` `client_disconnected` (Nginx's convention for a request the client closed).

"So far" is the upstream's own partial usage where it sent one (Anthropic's `message_start`
carries the prompt size, Gemini's chunks carry running totals), completed with the estimator
over the text actually streamed; such usage is marked `usage_estimated`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from router.cached_streams import Collector, replayed
from router.content_log import content_fields
from router.errors import GatewayError, UpstreamError
from router.response_cache import CACHE_PRICE_VERSION, Cached
from router.schemas import ChatCompletionRequest, Usage
from router.tokens import estimate_prompt_tokens, tokens_for_chars
from router.upstream import ChatChunk, ProviderError
from tollway.events import CallEvent
from tollway.pricing import Costing

log = logging.getLogger(__name__)

CLIENT_CLOSED_STATUS = 499


class UpstreamStreamError(UpstreamError):
    """The upstream failed after the first chunk reached the caller: no fallback is possible
    any more, so the caller gets an error event inside the stream."""

    type = "upstream_error"


class ChatStream:
    """Relays one upstream stream and publishes its CallEvent exactly once."""

    def __init__(
        self,
        *,
        request: ChatCompletionRequest,
        event: CallEvent,
        first: ChatChunk,
        upstream: AsyncIterator[ChatChunk],
        clock: float,
        started: datetime,
        price: Callable[[str, datetime, Usage], Costing],
        publish: Callable[[CallEvent], None],
        keep: Callable[[dict[str, Any], Usage], None] | None = None,
        content_limit: int | None = None,
        read_answer: Callable[[list[dict[str, Any]], CallEvent], CallEvent] | None = None,
    ) -> None:
        """`keep`: given the whole answer of a stream that ended normally (the response
        cache's; router/cached_streams.py). `content_limit`: how much of the prompt and answer
        the event carries, None: none (router/content_log.py). `read_answer`: the
        guardrails that read answers, given what streamed and the final event."""
        self.request = request
        self.event = event  # provider, model and attempts set; usage and outcome pending
        self.model = event.model
        self._first: ChatChunk | None = first
        self._upstream = upstream
        self._clock = clock
        self._started = started
        self._price = price
        self._publish = publish
        self.id = str((first.data or {}).get("id") or "")
        self.created = int((first.data or {}).get("created") or time.time())
        self._chars = 0
        self._ttft_ms: int | None = None
        self._reported: Usage | None = None
        self._final: Usage | None = None
        self._finished = False
        self._relay = self._relay_chunks()
        self._keep = keep
        self._content_limit = content_limit
        self._read_answer = read_answer
        wanted = keep is not None or content_limit is not None or read_answer is not None
        self._collector = Collector() if wanted else None

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def usage(self) -> Usage:
        """The usage to bill: the upstream's final report, or an estimate of what streamed."""
        if self._final is not None:
            return self._final
        reported = self._reported or Usage()
        return Usage(
            input_tokens=reported.input_tokens or estimate_prompt_tokens(self.request.messages),
            output_tokens=max(reported.output_tokens, tokens_for_chars(self._chars)),
            cached_input_tokens=reported.cached_input_tokens,
            reasoning_tokens=reported.reasoning_tokens,
            cache_write_tokens=reported.cache_write_tokens,
            estimated=True,
        )

    def chunks(self) -> AsyncIterator[dict[str, Any]]:
        """The caller's chunks (OpenAI `chat.completion.chunk`, model = catalogue name).

        Raises `UpstreamStreamError` (after publishing the event) if the upstream fails."""
        return self._relay

    async def _relay_chunks(self) -> AsyncIterator[dict[str, Any]]:
        try:
            if self._first is not None:
                first, self._first = self._first, None
                data = self._take(first)
                if data is not None:
                    yield data
            async for item in self._upstream:
                data = self._take(item)
                if data is not None:
                    yield data
        except ProviderError as exc:
            self._finish(status="error", http_status=502, error_code="upstream_error", error=exc)
            raise UpstreamStreamError(f"the upstream stream failed: {exc}") from None
        except GatewayError:
            self._finish(status="error", http_status=502, error_code="upstream_error")
            raise
        except Exception:
            log.exception("stream of event %s failed", self.event.event_id)
            self._finish(status="error", http_status=500, error_code="internal_error")
            raise GatewayError("internal error (logged on the server)") from None
        self._finish(status="ok", http_status=200, error_code="")

    def _take(self, item: ChatChunk) -> dict[str, Any] | None:
        if item.usage is not None:
            if item.final:
                self._final = item.usage
            else:
                self._reported = item.usage
        if item.data is None:
            return None
        data = {**item.data, "model": self.model}
        if self._collector is not None:
            self._collector.take(data)
        for choice in data.get("choices") or []:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            chars = len(content) if isinstance(content, str) else 0
            chars += len((delta.get("thinking") or {}).get("thinking") or "")  # billed as output
            for call in delta.get("tool_calls") or []:
                function = call.get("function") or {}
                chars += len(function.get("arguments") or "") + len(function.get("name") or "")
            if chars and self._ttft_ms is None:
                self._ttft_ms = _ms_since(self._clock)
            self._chars += chars
        return data

    async def aclose(self) -> None:
        """End of the response, whatever happened: bill a stream the caller left early, then
        release the upstream connection."""
        if not self._finished:
            self._finish(
                status="ok", http_status=CLIENT_CLOSED_STATUS, error_code="client_disconnected"
            )
        try:
            await self._relay.aclose()  # type: ignore[attr-defined]
            await self._upstream.aclose()  # type: ignore[attr-defined]
        except (ProviderError, RuntimeError) as exc:
            log.debug("closing the upstream stream: %s", type(exc).__name__)

    def _finish(
        self,
        *,
        status: str,
        http_status: int,
        error_code: str,
        error: ProviderError | None = None,
    ) -> None:
        if self._finished:
            return
        self._finished = True
        usage = self.usage
        costing = self._price(self.model, self._started, usage)
        attempts = list(self.event.attempts)
        if error is not None and attempts:
            attempts[-1] = attempts[-1].model_copy(
                update={"status": "error", "error": str(error)[:300], "http_status": error.status}
            )
        event = self.event.model_copy(
            update={
                "duration_ms": _ms_since(self._clock),
                "ttft_ms": self._ttft_ms,
                "attempts": attempts,
                **usage.event_counts(),
                "usage_estimated": usage.estimated,
                "cost_usd": costing.cost_usd,
                "price_version": costing.price_version,
                "status": status,
                "http_status": http_status,
                "error_code": error_code,
            }
        )
        readers = self._content_limit is not None or self._read_answer is not None
        if self._collector is not None and readers:  # the content log, answer guardrails
            streamed = self._collector.messages()
            if self._content_limit is not None:
                fields = content_fields(self._content_limit, self.request, streamed)
                event = event.model_copy(update=fields)
            if self._read_answer is not None:
                event = self._read_answer(streamed, event)
        self.event = event
        self._publish(event)
        if self._keep is not None and self._collector is not None and http_status == 200:
            answer = self._collector.answer(self.model, usage)
            if answer is not None and status == "ok":
                self._keep(answer, usage)


async def first_chunk(upstream: AsyncIterator[ChatChunk], provider: str) -> ChatChunk:
    """A stream's first chunk, which decides whether the attempt worked (retries and fallbacks
    are still possible until it reaches the caller)."""
    try:
        return await anext(upstream)
    except StopAsyncIteration:
        raise ProviderError(f"{provider}: the stream ended before any chunk", status=502) from None


def replayed_stream(
    request: ChatCompletionRequest,
    hit: Cached,
    chunks: list[ChatChunk],
    event: CallEvent,
    clock: float,
    started: datetime,
    publish: Callable[[CallEvent], None],
    content_limit: int | None,
) -> ChatStream:
    """A cached answer replayed as a stream (router/cached_streams.py): billed at 0, with
    `cache_hit` and the model and provider that answered it first in its event."""
    return ChatStream(
        request=request,
        event=event.model_copy(
            update={"provider": hit.provider, "model": hit.model, "cache_hit": True}
        ),
        first=chunks[0],
        upstream=replayed(chunks[1:]),
        clock=clock,
        started=started,
        price=lambda model, at, usage: Costing(Decimal(0), CACHE_PRICE_VERSION),
        publish=publish,
        content_limit=content_limit,
    )


def _ms_since(clock: float) -> int:
    return int((time.perf_counter() - clock) * 1000)
