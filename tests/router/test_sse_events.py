"""`SSEDecoder`, the parser of upstream event streams: the same events however the body is cut
into chunks, every line ending the SSE spec allows, and the fields tollway reads or skips —
checked against a line-by-line reference parser written straight from the spec."""

from __future__ import annotations

import random

import httpx

from router.providers.base import sse_data
from router.providers.sse_events import Event, SSEDecoder

BODY = (
    b": keep-alive comment\n\n"
    b'data: {"x": 1}\n\n'
    b"event: message_start\n"
    b'data: {"type": "message_start"}\n\n'
    b"data: line1\ndata: line2\r\n\r\n"
    b"id: 7\nretry: 10\ndata:no space\n\n"
    b"data:  two spaces\n\n"
    b"data\n\n"
    b"event: named\n\n"  # no data: dispatches nothing, and the name does not carry over
    b"\n\n\n"
    b"data: after blank lines\r\rdata: cr only\r\r"
    b"data: caf\xc3\xa9 \xe2\x82\xac\n\n"
    b"data: [DONE]\n\n"
)

EXPECTED: list[Event] = [
    ("message", '{"x": 1}'),
    ("message_start", '{"type": "message_start"}'),
    ("message", "line1\nline2"),
    ("message", "no space"),
    ("message", " two spaces"),
    ("message", ""),
    ("message", "after blank lines"),
    ("message", "cr only"),
    ("message", "café €"),
    ("message", "[DONE]"),
]


def decode(chunks: list[bytes]) -> list[Event]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.end()


def reference(body: bytes) -> list[Event]:
    """The spec's algorithm, one line at a time (plus tollway's dispatch of an event still open
    at the end of the body)."""
    text = body.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    events: list[Event] = []
    name = ""
    data: list[str] = []
    for line in text.split("\n"):
        if not line:
            if data:
                events.append((name or "message", "\n".join(data)))
            name, data = "", []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
    if data:
        events.append((name or "message", "\n".join(data)))
    return events


def test_a_body_in_one_chunk() -> None:
    assert decode([BODY]) == EXPECTED == reference(BODY)


def test_every_cut_into_two_chunks_gives_the_same_events() -> None:
    # includes a `\r` ending one chunk and its `\n` starting the next, and a UTF-8 character
    # cut in two
    for cut in range(len(BODY) + 1):
        assert decode([BODY[:cut], BODY[cut:]]) == EXPECTED, cut


def test_a_body_arriving_byte_by_byte() -> None:
    assert decode([BODY[i : i + 1] for i in range(len(BODY))]) == EXPECTED


def test_an_event_is_handed_on_as_soon_as_its_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b") == [("message", "a")]
    assert decoder.feed(b"\n\n") == [("message", "b")]
    assert decoder.end() == []


def test_an_event_left_open_at_the_end_is_still_dispatched() -> None:
    assert decode([b"data: a\n\ndata: b"]) == [("message", "a"), ("message", "b")]
    assert decode([b"event: e\ndata: b\n"]) == [("e", "b")]
    assert decode([b"data: a\r"]) == [("message", "a")]
    assert decode([b"data: a\n\n: only a comment"]) == [("message", "a")]


def test_only_cr_and_lf_end_lines() -> None:
    # JSON may carry U+2028, U+2029 and U+0085 unescaped: they are text, not line ends
    text = "a\u2028b\u2029c\x85d\x0be\x0cf"
    body = f'data: {{"content": "{text}"}}\n\n'.encode()
    assert decode([body]) == [("message", f'{{"content": "{text}"}}')]


def test_undecodable_bytes_are_replaced() -> None:
    assert decode([b"data: a\xff\xc3\n\ndata: b\n\n"]) == [
        ("message", "a\ufffd\ufffd"),
        ("message", "b"),
    ]


def test_random_bodies_cut_at_random_match_the_reference() -> None:
    pieces = [b"data: x", b"data:y", b"data", b"event: e", b": c", b"id: 1", b"\xc3\xa9", b"z"]
    endings = [b"\n", b"\r\n", b"\r"]
    rng = random.Random(7)
    for _ in range(500):
        body = b"".join(
            rng.choice(pieces) + rng.choice(endings) * rng.choice((1, 1, 2, 3))
            for _ in range(rng.randrange(1, 12))
        )
        cuts = sorted(rng.sample(range(len(body) + 1), min(len(body) + 1, rng.randrange(1, 5))))
        chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        assert decode(chunks) == reference(body), (body, cuts)


async def test_sse_data_parses_any_body_with_aiter_bytes() -> None:
    response = httpx.Response(200, content=BODY)
    assert [event async for event in sse_data(response)] == EXPECTED
