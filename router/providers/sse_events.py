"""Server-sent events in: an incremental parser of a body arriving in byte chunks.

A streamed call's upstream body is parsed here straight from the chunks the HTTP client reads,
in one synchronous pass per chunk, and `events_of` hands the events on from one async
generator. Splitting the body into lines in one generator and the lines into events in
another cost a generator resumption per line per layer (two lines an event) and a Python loop
over every line: about a fifth of a streamed call's CPU in the proxy (benchmarks/
proxy_overhead.py), where one read usually carries several complete events.

The format follows the SSE spec (html.spec.whatwg.org, "event stream interpretation") as far
as tollway's three wire formats need it, exactly as the line-based parser it replaces did:
lines end with `\\n`, `\\r\\n` or `\\r`; a blank line dispatches the event; `:` starts a
comment; `event:` names the event (`message` when unnamed); `data:` lines are joined with
newlines; one space after the colon is dropped; other fields (`id:`, `retry:`) are ignored;
an event still open when the body ends is dispatched too. Text is UTF-8, with undecodable
bytes replaced.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

#: an event: its name (`message` when the upstream gave none) and its data
Event = tuple[str, str]


class SSEDecoder:
    """Feed it the body's chunks as they arrive; each call returns the events completed so far.

    Works on bytes: the line endings are ASCII and never occur inside a UTF-8 sequence, so an
    event's bytes can be cut out before decoding, and a multi-byte character split across two
    chunks is decoded whole once its event is complete."""

    def __init__(self) -> None:
        self._pending = b""  # the start of an event whose blank line has not arrived yet

    def feed(self, chunk: bytes) -> list[Event]:
        """The events `chunk` completes, in order."""
        text = self._pending + chunk if self._pending else chunk
        if b"\r" in text:
            # a `\r` ending the chunk may be the first half of a `\r\n`: keep it for the next
            held = text.endswith(b"\r")
            text = _unify_newlines(text[:-1] if held else text)
        else:
            held = False
        head, blank, tail = text.rpartition(b"\n\n")
        if not blank:  # no event completed yet
            self._pending = text + b"\r" if held else text
            return []
        self._pending = tail + b"\r" if held else tail
        events: list[Event] = []
        # decoded at once: an undecodable byte never swallows the ASCII newline after it, so
        # this is what decoding each line apart would give
        for block in head.decode("utf-8", "replace").split("\n\n"):
            if block.startswith("data: ") and "\n" not in block:  # the usual one-line event
                events.append(("message", block[6:]))
            elif block:
                _parse_block(block, events)
        return events

    def end(self) -> list[Event]:
        """At the end of the body: the event still open, if it has data (as browsers do not,
        but as tollway always has: an upstream may omit the last blank line)."""
        text, self._pending = _unify_newlines(self._pending), b""
        events: list[Event] = []
        if text:
            _parse_block(text.decode("utf-8", "replace"), events)
        return events


def _unify_newlines(text: bytes) -> bytes:
    return text.replace(b"\r\n", b"\n").replace(b"\r", b"\n") if b"\r" in text else text


def _parse_block(block: str, events: list[Event]) -> None:
    """The event(s) of `block`, lines separated by `\\n`, dispatched at its end. A block holds
    one event unless blank lines start it (a blank line with no data dispatches nothing)."""
    name = ""
    data: list[str] = []
    for line in block.split("\n"):
        if not line:
            if data:
                events.append((name or "message", "\n".join(data)))
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if data:
        events.append((name or "message", "\n".join(data)))


async def events_of(chunks: AsyncGenerator[bytes, None]) -> AsyncGenerator[Event, None]:
    """The server-sent events of a body read in `chunks` (an async generator, closed when the
    reader stops early: left to the event loop's finalizer, each costs a wake-up and a task)."""
    decoder = SSEDecoder()
    async with contextlib.aclosing(chunks) as body:
        async for chunk in body:
            for event in decoder.feed(chunk):
                yield event
    for event in decoder.end():
        yield event
