"""`POST /v1/feedback`: a quality score for one call, on its way to the routing statistics.

Accepted (202) once the broker has the message; the worker writes it to `feedback`. A score
for a call this proxy routed also counts for its routing decisions at once.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from tollway.auth import Principal, authenticate
from tollway.feedback import Feedback, FeedbackIn

router = APIRouter(tags=["feedback"])


class FeedbackAccepted(BaseModel):
    accepted: bool = True
    event_id: str


@router.post("/v1/feedback", status_code=202)
async def post_feedback(
    body: FeedbackIn, request: Request, principal: Principal = Depends(authenticate)
) -> FeedbackAccepted:
    feedback = Feedback(
        **body.model_dump(), key_id=principal.key_id, user=request.headers.get("x-tollway-user", "")
    )
    producer: AIOKafkaProducer = request.app.state.feedback_producer
    await producer.send_and_wait(
        request.app.state.feedback_topic, feedback.encode(), key=str(feedback.event_id).encode()
    )
    request.app.state.gateway.scored(feedback.event_id, feedback.score)
    return FeedbackAccepted(event_id=str(feedback.event_id))
