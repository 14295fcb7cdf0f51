"""One turn's types: what the dialogue reads (:class:`TurnInput`) and what it answers (:class:`Outcome`),
shared by the engine (``dialogue.py``) and the policies (``policies.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

from app.conversation.frame import DialogueState, Frame
from app.conversation.understand import Understanding

if TYPE_CHECKING:  # only for the Policy type; the engine imports this module
    from app.conversation.dialogue import DialogueManager

STATES = {"slot": "awaiting_slot", "confirmation": "awaiting_confirmation", "otp": "awaiting_otp"}


@dataclass
class Outcome:
    """The dialogue's answer for one turn.

    ``handler`` ran (or asked) this turn; ``task`` is what the message was about (a "yes" inside a
    transfer is the transfer's turn); ``state`` is where the conversation now waits.
    """

    reply: str
    state: str  # awaiting_slot | awaiting_confirmation | awaiting_otp | awaiting_clarification | done
    handler: str | None
    outcome: str = "success"
    data: dict[str, Any] = field(default_factory=dict)
    task: str | None = None
    policy: str = ""

    def __post_init__(self) -> None:
        if self.task is None:
            self.task = self.handler


@dataclass
class TurnInput:
    """The current message, understood, and who sent it."""

    session_id: str
    user_id: str | None
    customer_id: int | None
    text: str
    understanding: Understanding
    entities: dict[str, Any]
    history: list[dict[str, str]]
    query: str | None = None  # the rewritten question for the knowledge base (follow-ups, digressions)

    @property
    def u(self) -> Understanding:
        return self.understanding

    @property
    def act(self) -> str:
        return self.understanding.act.act

    @property
    def language(self) -> str:
        return self.understanding.language


Policy = Callable[["DialogueManager", DialogueState, TurnInput], "Outcome | None"]


def state_name(frame: Frame | None) -> str:
    """The public state of a pending frame: ``awaiting_slot`` / ``awaiting_confirmation`` / ``awaiting_otp``."""
    if frame is None or frame.awaiting is None:
        return "done"
    return STATES.get(frame.awaiting.kind, "done")


def with_input(inp: TurnInput, **changes: Any) -> TurnInput:
    """A copy of ``inp`` with some fields changed (e.g. the entities of a clarified request)."""
    return replace(inp, **changes)
