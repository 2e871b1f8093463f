"""The messages of a small topic (feedback, audit) that parse, for its sink: one that does not is
logged and skipped — a poison message must not stop the sink that follows it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def valid_messages(values: Sequence[bytes | None], model: type[M], what: str) -> list[M]:
    messages = []
    for value in values:
        try:
            messages.append(model.model_validate(orjson.loads(value or b"null")))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            log.warning("skipping an invalid %s: %s", what, exc)
    return messages
