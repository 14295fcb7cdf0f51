"""Driving the dialogue manager without the models: a message "understood" as a given task and act."""

from __future__ import annotations

from typing import Any

from app.conversation.frame import DialogueState
from app.conversation.turn import TurnInput
from app.conversation.understand import Understanding
from models.acts import ActPrediction


def understood(state: DialogueState, text: str, intent: str, confidence: float = 0.95, act: str = "request",
               entities: dict[str, Any] | None = None, customer_id: int | None = None) -> TurnInput:
    """The TurnInput of ``text`` read as ``intent`` (calibrated ``confidence``) doing ``act``."""
    u = Understanding(text=text, model_text=text, language="en", context=state.context(), task=intent,
                      confidence=confidence, ranking=[(intent, confidence)], label=intent,
                      act=ActPrediction(act, 0.99, ((act, 0.99),)), entities=dict(entities or {}))
    return TurnInput("s1", None, customer_id, text, u, dict(entities or {}), [])
