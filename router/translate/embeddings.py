"""Embeddings in OpenAI's shape, from vectors tollway or another provider produced.

OpenAI answers `POST /v1/embeddings` with a `list` of `embedding` objects, each vector a list
of floats or, with `encoding_format: "base64"`, the base64 of its little-endian float32 bytes
(what the official SDKs ask for by default, and decode themselves). Gemini's
`batchEmbedContents` takes one request per text and answers `{"embeddings": [{"values": …}]}`.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any

from router.schemas import Usage


def encode_vector(vector: Sequence[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return list(vector)


def decode_vector(encoded: list[float] | str) -> list[float]:
    """The floats of an encoded vector (the inverse of `encode_vector`)."""
    if isinstance(encoded, str):
        raw = base64.b64decode(encoded)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return encoded


def openai_embeddings(
    vectors: Sequence[Sequence[float]], model: str, usage: Usage, encoding_format: str
) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode_vector(v, encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens},
    }


def gemini_embed_request(
    texts: Sequence[str], model: str, dimensions: int | None
) -> dict[str, Any]:
    """A `batchEmbedContents` body: one `EmbedContentRequest` per text."""
    requests = []
    for text in texts:
        request: dict[str, Any] = {
            "model": f"models/{model}",
            "content": {"parts": [{"text": text}]},
        }
        if dimensions:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return {"requests": requests}


def gemini_vectors(answer: Any) -> list[list[float]]:
    """The vectors of a `batchEmbedContents` answer; ValueError when it has none or a
    malformed one."""
    embeddings = answer.get("embeddings") if isinstance(answer, dict) else None
    if not isinstance(embeddings, list):
        raise ValueError("no embeddings in the answer")
    vectors = []
    for item in embeddings:
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list):
            raise ValueError("an embedding without values")
        vectors.append(values)
    return vectors
