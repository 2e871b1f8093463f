"""Quality feedback: scored through the API, on Kafka, into the `feedback` table."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import openai
import pytest

from tollway.config import load_config
from tollway.config.schema import KeyConfig
from tollway.ids import hash_key, new_key_secret
from tollway.server import serving
from tollway.service import Runtime, build_app
from tollway.settings import Settings

pytestmark = pytest.mark.integration


async def test_feedback_reaches_the_feedback_table(
    kafka_bootstrap: str, namespace: str, store, tmp_path: Path
) -> None:
    secret = new_key_secret()
    key = KeyConfig(id="k_fb", hash=hash_key(secret), business_line="support", project="helpdesk")
    settings = Settings(topic_namespace=namespace, data_dir=tmp_path, kafka_session_timeout_s=3.0)
    runtime = Runtime(
        settings=settings, config=load_config(None), bootstrap=kafka_bootstrap,
        extra_keys=[key], store=store,
    )  # fmt: skip
    async with serving(build_app(runtime)) as base:
        client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0)
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "classify this ticket"}]
        )
        event_id = raw.headers["x-tollway-event-id"]
        auth = {"authorization": f"Bearer {secret}"}
        async with httpx.AsyncClient(base_url=base, headers=auth) as http:
            accepted = await http.post(
                "/v1/feedback", json={"event_id": event_id, "score": 0.25, "label": "wrong_queue"}
            )
            assert accepted.status_code == 202, accepted.text
            bad = await http.post("/v1/feedback", json={"event_id": event_id, "score": 1.5})
            assert bad.status_code == 400
            assert bad.json()["error"]["type"] == "invalid_request_error"
            not_an_id = await http.post("/v1/feedback", json={"event_id": "x", "score": 1})
            assert not_an_id.status_code == 400
            anonymous = await http.post(
                "/v1/feedback",
                json={"event_id": str(uuid.uuid4()), "score": 1},
                headers={"authorization": ""},
            )
            assert anonymous.status_code == 401

        deadline = time.monotonic() + 30
        rows: list[dict[str, object]] = []
        while time.monotonic() < deadline and not rows:
            rows = (
                await store.query(
                    "SELECT toString(event_id) AS id, score, label, key_id FROM feedback"
                )
            ).rows
            await asyncio.sleep(0.3)
    assert rows == [{"id": event_id, "score": 0.25, "label": "wrong_queue", "key_id": "k_fb"}]
