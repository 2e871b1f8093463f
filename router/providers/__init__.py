"""Provider adapters, one module each, built from the `providers` section of tollway.yaml."""

from __future__ import annotations

from router.providers.anthropic import AnthropicProvider
from router.providers.base import ChatChunk, ChatResult, EmbeddingResult, Provider, ProviderError
from router.providers.gemini import GeminiProvider
from router.providers.openai_compatible import OpenAICompatibleProvider
from router.providers.sim import SimProvider
from tollway.config.schema import ProviderConfig


class UnsupportedProvider(ValueError):
    """The config names a provider type this build has no adapter for."""


def build_provider(config: ProviderConfig) -> Provider:
    if config.type == "sim":
        return SimProvider(config)
    if config.type in ("openai", "openai_compatible"):
        return OpenAICompatibleProvider(config)
    if config.type == "anthropic":
        return AnthropicProvider(config)
    if config.type == "gemini":
        return GeminiProvider(config)
    raise UnsupportedProvider(
        f"provider {config.name!r}: type {config.type!r} has no adapter yet "
        "(available: sim, openai, openai_compatible, anthropic, gemini)"
    )


__all__ = [
    "ChatChunk",
    "ChatResult",
    "EmbeddingResult",
    "Provider",
    "ProviderError",
    "UnsupportedProvider",
    "build_provider",
]
