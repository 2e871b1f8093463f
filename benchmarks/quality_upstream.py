"""The simulated providers of the routing simulation: one OpenAI-compatible upstream serving the
five catalogue models, each answering as well and as fast as benchmarks/routing_simulation.py's
matrix says.

Run as `python -m benchmarks.quality_upstream PORT SEED`. `POST /v1/chat/completions` reads the
model from the body and the task type and the question from the prompt (`[task:code] Q17. …
What is 347 * 29 + 12? …`), waits the model's latency for that prompt and output, and answers
`Answer: N.` — the right N with the matrix probability for (model, task type), otherwise a wrong
one — padded to the task type's output length. Whether a (model, question) pair is answered
right, its latency jitter and its output length come from a hash of the seed, the model and the
question id: the same question to the same model gets the same answer in every arm of the run
(common random numbers), and the whole run is reproducible from the seed.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import sys
from statistics import NormalDist

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from benchmarks.routing_world import LATENCY, QUALITY, TASKS, LatencyProfile
from router.tokens import estimate_text_tokens

QUESTION = re.compile(r"\[task:([a-z_]+)\] Q(\d+)\..*?What is (\d+) \* (\d+) \+ (\d+)\?", re.S)
PAD = "and the details follow as requested "


def uniform(seed: int, model: str, qid: str, what: str) -> float:
    """A uniform draw in [0, 1) fixed by the seed, the model, the question and its purpose."""
    digest = hashlib.blake2b(f"{seed}|{model}|{qid}|{what}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def latency_s(profile: LatencyProfile, prompt_tokens: int, output_tokens: int, u: float) -> float:
    """The model's latency for this call: time to first token, prefill of the prompt, generation
    of the output, times a log-normal jitter (sigma 0.25) drawn from `u`."""
    base = (
        profile.ttft_ms
        + profile.prefill_ms_per_ktok * prompt_tokens / 1000
        + 1000 * output_tokens / profile.tokens_per_s
    )
    z = NormalDist().inv_cdf(min(max(u, 1e-9), 1 - 1e-9))
    return base * math.exp(0.25 * z) * profile.scale / 1000


def app(seed: int) -> Starlette:
    async def chat_completions(request: Request) -> JSONResponse:
        body = await request.json()
        model = str(body["model"])
        prompt = "".join(
            str(m.get("content") or "") for m in body["messages"] if isinstance(m, dict)
        )
        match = QUESTION.search(prompt)
        if model not in QUALITY or match is None:
            return JSONResponse(
                {"error": {"message": f"unknown model {model!r} or no question",
                           "type": "invalid_request_error"}},
                status_code=400,
            )  # fmt: skip
        task_name, qid, a, b, c = match.groups()
        task = TASKS[task_name]
        expected = int(a) * int(b) + int(c)
        right = uniform(seed, model, qid, "answer") < QUALITY[model][task_name]
        answer = expected if right else expected + 1 + int(uniform(seed, model, qid, "miss") * 97)
        output_tokens = max(
            1, round(task.output_tokens * (0.8 + 0.4 * uniform(seed, model, qid, "length")))
        )
        prompt_tokens = 7 + estimate_text_tokens(prompt)  # the framing OpenAI counts, 1 message
        await asyncio.sleep(
            latency_s(LATENCY[model], prompt_tokens, output_tokens, uniform(seed, model, qid, "t"))
        )
        text = f"Answer: {answer}."
        pad = max(0, output_tokens * 4 - len(text) - 1)
        if pad:
            text += " " + (PAD * (pad // len(PAD) + 1))[:pad]
        return JSONResponse(
            {
                "id": f"chatcmpl-sim-{qid}",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": output_tokens,
                    "total_tokens": prompt_tokens + output_tokens,
                },
            }
        )

    return Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])


if __name__ == "__main__":
    uvicorn.run(
        app(int(sys.argv[2])),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="error",
        access_log=False,
    )
