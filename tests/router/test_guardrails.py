"""Screening a request with the guardrails that cover it: a block refuses (naming the guardrail
and what it found, never the text), a redact rewrites every text the provider would see, a flag
only marks, and a guardrail out of scope does nothing."""

from __future__ import annotations

from typing import Any

from router.attribution import Attribution
from router.guardrails import Guardrails
from router.schemas import ChatCompletionRequest, EmbeddingsRequest
from tollway.config import load_config
from tollway.config.schema import TollwayConfig

AWS = "AKIAIOSFODNN7EXAMPLE"
SUPPORT = Attribution("support", "helpdesk", "chat", "u1", "k_support", "production")
MARKETING = Attribution("marketing", "seo", "chat", "u2", "k_marketing", "production")


def _guardrails(*rails: dict[str, Any]) -> Guardrails:
    config = load_config(None).model_dump(mode="json", exclude_none=True)
    config["guardrails"] = list(rails)
    validated = TollwayConfig.model_validate(config)
    return Guardrails(lambda: validated)


def _chat(*contents: Any, **extra: Any) -> ChatCompletionRequest:
    messages = [{"role": "user", "content": content} for content in contents]
    return ChatCompletionRequest.model_validate(
        {"model": "gpt-4o-mini", "messages": messages, **extra}
    )


NO_SECRETS = {"id": "no-secrets", "detect": ["secrets"], "action": "block"}
PII = {"id": "pii", "detect": ["email", "credit_card"], "action": "redact"}


def test_a_blocking_guardrail_refuses_without_repeating_the_secret() -> None:
    screening = _guardrails(NO_SECRETS).screen(_chat(f"why does {AWS} fail?"), SUPPORT)
    assert screening.matched == ("no-secrets",)
    refusal = screening.refusal
    assert refusal is not None and refusal.status_code == 400
    assert refusal.code == "guardrail_blocked" and refusal.details == {"guardrail": "no-secrets"}
    assert (
        refusal.message
        == "blocked by guardrail no-secrets: the request contains an AWS access key id"
    )
    assert AWS not in refusal.message


def test_redaction_reaches_every_text_the_provider_sees() -> None:
    request = _chat(
        "write to jane@example.com",
        [{"type": "text", "text": "card 4111 1111 1111 1111"}, {"type": "image_url",
         "image_url": {"url": "https://example.com/jane@example.com.png"}}],
    )  # fmt: skip
    request.messages.append(
        request.messages[0].model_validate(
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function",
                 "function": {"name": "send", "arguments": '{"to": "bob@example.org"}'}}]}
        )
    )  # fmt: skip
    screening = _guardrails(PII).screen(request, SUPPORT)
    sent = screening.request
    assert screening.refusal is None and screening.matched == ("pii",)
    assert sent.messages[0].content == "write to [REDACTED:email]"
    assert sent.messages[1].content == [
        {"type": "text", "text": "card [REDACTED:credit_card]"},
        {"type": "image_url", "image_url": {"url": "https://example.com/jane@example.com.png"}},
    ]  # an image's URL is not text the model reads as prose
    assert sent.messages[2].tool_calls[0]["function"]["arguments"] == '{"to": "[REDACTED:email]"}'  # type: ignore[index]
    assert request.messages[0].content == "write to jane@example.com"  # the caller's is intact


def test_embeddings_inputs_are_screened_too() -> None:
    request = EmbeddingsRequest(model="sim-embed", input=["hello", "mail me: a@b.io"])
    screening = _guardrails(PII).screen(request, SUPPORT)
    assert screening.request.input == ["hello", "mail me: [REDACTED:email]"]
    tokens = EmbeddingsRequest(model="sim-embed", input=[1, 2, 3])
    assert _guardrails(PII).screen(tokens, SUPPORT).request is tokens


def test_a_flag_only_marks_and_every_match_is_named() -> None:
    flag = {"id": "bluebird", "patterns": [r"(?i)project\s+bluebird"], "action": "flag"}
    rails = _guardrails(flag, PII)
    request = _chat("Project Bluebird: mail jane@example.com")
    screening = rails.screen(request, SUPPORT)
    assert screening.matched == ("bluebird", "pii")
    assert screening.request.messages[0].content == "Project Bluebird: mail [REDACTED:email]"
    nothing = _chat("hello there")
    assert rails.screen(nothing, SUPPORT).request is nothing  # untouched: the same object


def test_a_block_wins_over_a_redaction_and_scopes_choose_the_calls() -> None:
    support_only = {**NO_SECRETS, "scope": {"business_line": "support"}}
    rails = _guardrails(PII, support_only)
    request = _chat(f"{AWS} and jane@example.com")
    blocked = rails.screen(request, SUPPORT)
    assert blocked.refusal is not None and blocked.matched == ("pii", "no-secrets")
    assert blocked.request is request  # nothing is redacted in a refused call
    passed = rails.screen(request, MARKETING)  # not in the blocking guardrail's scope
    assert passed.refusal is None and passed.matched == ("pii",)
    by_model = _guardrails({**NO_SECRETS, "scope": {"model": "gpt-4o"}})
    assert by_model.screen(request, SUPPORT).matched == ()  # it asked for gpt-4o-mini


def test_a_reload_brings_new_guardrails() -> None:
    config = load_config(None)
    current = {"config": config}
    rails = Guardrails(lambda: current["config"])
    request = _chat(f"key {AWS}")
    assert rails.screen(request, SUPPORT).matched == ()
    current["config"] = TollwayConfig.model_validate(
        {**config.model_dump(mode="json", exclude_none=True), "guardrails": [NO_SECRETS]}
    )
    assert rails.screen(request, SUPPORT).refusal is not None


def test_an_answer_is_redacted_when_returned_whole_and_only_marked_when_streamed() -> None:
    on_answers = {"id": "pii-out", "detect": ["email"], "action": "redact",
                  "applies_to": ["answer"]}  # fmt: skip
    rails = _guardrails(on_answers)
    body = {"choices": [{"index": 0, "message": {"role": "assistant",
                                                   "content": "Write to ann@example.com."}}]}  # fmt: skip
    fixed, found = rails.screen_completion(body, "gpt-4o-mini", SUPPORT)
    assert fixed["choices"][0]["message"]["content"] == "Write to [REDACTED:email]."
    assert [(f.guardrail, f.action, f.label) for f in found] == [
        ("pii-out", "redact", "an email address")
    ]
    messages = [body["choices"][0]["message"]]
    kept, streamed = rails.screen_answer(messages, "gpt-4o-mini", SUPPORT, streamed=True)
    assert kept == messages and [f.guardrail for f in streamed] == ["pii-out"]
    # a guardrail on prompts only does not read answers, nor one on answers prompts
    assert _guardrails(PII).screen_completion(body, "gpt-4o-mini", SUPPORT) == (body, ())
    assert rails.screen(_chat("mail ann@example.com"), SUPPORT).matched == ()
