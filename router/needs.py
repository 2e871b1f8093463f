"""What a request needs from the model that serves it, read off the request itself."""

from __future__ import annotations

from router.choice import Needs
from router.schemas import ChatCompletionRequest
from router.tokens import estimate_prompt_tokens

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
