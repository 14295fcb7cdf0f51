"""Shared data shapes passed between the pipeline stages."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class MessageEnvelope(BaseModel):
    """One incoming user message, whatever the channel."""

    user_id: str | None
    session_id: str
    channel: str = "cli"
    text: str
    timestamp: datetime = Field(default_factory=utcnow)


class Classification(BaseModel):
    """The classifier's answer for one message."""

    intent: str
    confidence: float
    ranking: list[tuple[str, float]] = Field(default_factory=list)  # top candidates, best first
    entities: dict[str, Any] = Field(default_factory=dict)
    model_version: str = ""
    latency_ms: float = 0.0


class TurnResult(BaseModel):
    """What one turn produced; the CLI prints :meth:`public` as JSON."""

    intent: str
    confidence: float
    entities: dict[str, Any]
    handler: str | None
    reply: str
    state: str  # awaiting_slot | awaiting_confirmation | awaiting_otp | awaiting_clarification | done
    data: dict[str, Any] = Field(default_factory=dict)
    turn_id: str = ""
    session_id: str = ""
    outcome: str = "success"
    timings_ms: dict[str, float] = Field(default_factory=dict)
    task: str | None = None  # what the turn was about (a "yes" inside a transfer is the transfer's turn)
    dialogue_act: str | None = None  # what the message did: request, inform, affirm, correct, …
    language: str = "en"  # en | hinglish | hi
    policy: str | None = None  # the dialogue policy that answered

    def public(self) -> dict[str, Any]:
        """The CLI's one-object JSON shape."""
        return {
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "entities": self.entities,
            "handler": self.handler,
            "reply": self.reply,
            "state": self.state,
            "task": self.task,
            "dialogue_act": self.dialogue_act,
            "language": self.language,
        }
