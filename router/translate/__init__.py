"""Pure translations between the wire formats tollway speaks and its one internal shape.

The gateway only knows OpenAI chat completions (requests, bodies, stream chunks). Each module
here maps one other protocol to and from that shape — requests, responses, stop reasons, usage
and stream events — with no I/O, so every mapping is unit-testable on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError

from router.errors import InvalidRequest
from router.schemas import ChatCompletionRequest

B = TypeVar("B")


def to_internal(translate: Callable[[B], ChatCompletionRequest], body: B) -> ChatCompletionRequest:
    """`translate(body)`, the caller's request in the internal shape. Content the caller's
    schema let through but that makes no chat request (an empty block list, a tool without a
    name) is the caller's error: a 400 that says what is wrong, never a 500."""
    try:
        return translate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise InvalidRequest(f"invalid request: {problems}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidRequest(f"invalid request: malformed content ({type(exc).__name__})") from None
