"""What a request needs from the model that serves it, read off the request itself, and what
admission knows of a call whichever endpoint it came through (`Ask`)."""

from __future__ import annotations

from dataclasses import dataclass

from router.choice import Needs
from router.schemas import ChatCompletionRequest, EmbeddingsRequest, Usage
from router.tokens import embedding_input_tokens, estimate_prompt_tokens

#: output tokens assumed for a call that does not cap them, when reserving budget
DEFAULT_OUTPUT_ESTIMATE = 1000

#: output tokens assumed for a call that does not cap them, before any statistics exist
DEFAULT_OUTPUT_TOKENS = 512

IMAGE_PARTS = {"image_url", "image", "input_image"}
JSON_FORMATS = {"json_object", "json_schema"}


def needs_of(request: ChatCompletionRequest, task_type: str = "") -> Needs:
    """Capabilities (tools, vision, JSON mode), prompt size, output cap, task type and the
    number of choices asked for."""
    capabilities: set[str] = set()
    if request.tools or (request.model_extra or {}).get("functions"):
        capabilities.add("tools")
    if any(_has_image(message.content) for message in request.messages):
        capabilities.add("vision")
    response_format = (request.model_extra or {}).get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in JSON_FORMATS:
        capabilities.add("json")
    cap = request.output_limit
    return Needs(
        capabilities=frozenset(capabilities),
        prompt_tokens=estimate_prompt_tokens(request.messages),
        output_tokens=cap or DEFAULT_OUTPUT_TOKENS,
        output_capped=cap is not None,
        task_type=task_type,
        choices=request.n or 1,
    )


def _has_image(content: object) -> bool:
    return isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") in IMAGE_PARTS for part in content
    )


def embedding_needs(input_tokens: list[int], task_type: str = "") -> Needs:
    """An embeddings model whose context holds the longest input (each input is embedded on
    its own); nothing to generate."""
    return Needs(
        capabilities=frozenset({"embeddings"}),
        prompt_tokens=max(input_tokens, default=0),
        output_tokens=0,
        output_capped=True,
        task_type=task_type,
    )


@dataclass(frozen=True)
class Ask:
    """What admission needs to know of a call, whichever endpoint it came through."""

    model: str  # the catalogue model or route the caller named
    needs: Needs
    reserve: Usage  # the most the call may use: what a budget holds as pending until it is billed
    stream: bool = False

    @classmethod
    def chat(cls, request: ChatCompletionRequest, task_type: str) -> Ask:
        needs = needs_of(request, task_type)
        output = request.output_limit or DEFAULT_OUTPUT_ESTIMATE
        reserve = Usage(input_tokens=needs.prompt_tokens, output_tokens=output)
        return cls(request.model, needs, reserve, request.stream)

    @classmethod
    def embeddings(cls, request: EmbeddingsRequest, task_type: str) -> Ask:
        tokens = embedding_input_tokens(request.inputs)
        needs = embedding_needs(tokens, task_type)
        return cls(request.model, needs, Usage(input_tokens=sum(tokens)))
