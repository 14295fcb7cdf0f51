"""The conversation's state, typed: the task in progress (its frame), tasks suspended by a digression,
a pending clarification or offer, and what the last answer was about (for follow-ups).

Sessions store it as JSON (``DialogueState.to_dict``/``from_dict``); an older dict state written by
the previous dialogue manager (``"awaiting": "slot:amount"`` strings) loads too, so a deploy never
breaks a conversation in progress.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

AwaitKind = Literal["slot", "confirmation", "otp"]

# What the bot is waiting for, as the dialogue-act model sees it (models/acts).
CONTEXT_NONE = "none"


@dataclass
class Awaiting:
    """What the bot last asked inside a task."""

    kind: AwaitKind
    slot: str | None = None  # the slot's name when kind == "slot"

    def label(self) -> str:
        return f"slot:{self.slot}" if self.kind == "slot" else self.kind


@dataclass
class Frame:
    """One task in progress: its handler (by task name), the slots filled so far and what is pending."""

    task: str
    slots: dict[str, Any] = field(default_factory=dict)
    awaiting: Awaiting | None = None
    idempotency_key: str | None = None
    otp_challenge: str | None = None
    confirmed: bool = False
    otp_verified: bool = False

    def void_confirmation(self) -> None:
        """A change after confirmation or OTP: the customer confirms again, and any OTP sent is void."""
        self.confirmed = False
        self.otp_verified = False
        self.otp_challenge = None
        self.idempotency_key = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Frame":
        awaiting = raw.get("awaiting")
        if isinstance(awaiting, str):  # the previous manager's "slot:name" / "confirmation" / "otp"
            kind, _, slot = awaiting.partition(":")
            awaiting = Awaiting(kind, slot or None) if kind in ("slot", "confirmation", "otp") else None  # type: ignore[arg-type]
        elif isinstance(awaiting, dict):
            awaiting = Awaiting(**awaiting)
        return cls(task=raw.get("task") or raw["intent"], slots=dict(raw.get("slots") or {}), awaiting=awaiting,
                   idempotency_key=raw.get("idempotency_key"), otp_challenge=raw.get("otp_challenge"),
                   confirmed=bool(raw.get("confirmed")), otp_verified=raw.get("otp_verified") is True)


@dataclass
class Clarification:
    """Two (or so) candidate tasks offered because the message was unclear."""

    candidates: list[str]
    text: str
    entities: dict[str, Any] = field(default_factory=dict)


@dataclass
class Offer:
    """A yes/no offer the bot made ("Shall I connect you to a colleague?"): ``task`` runs on yes."""

    task: str
    text: str = ""


@dataclass
class Topic:
    """What the last answer was about, so that "and for RTGS?" or "why?" can be understood."""

    task: str
    query: str = ""  # the (rewritten) question the last FAQ answer was for
    doc_ids: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # e.g. a loan decision's inputs and factors


@dataclass
class DialogueState:
    """Everything the dialogue remembers about one session between turns."""

    frame: Frame | None = None
    stack: list[Frame] = field(default_factory=list)
    clarify: Clarification | None = None
    offer: Offer | None = None
    last_completed: dict[str, Any] | None = None  # the last confirmed action, so a retried "yes" is idempotent
    topic: Topic | None = None
    language: str = "en"

    def context(self) -> str:
        """What the bot is waiting for, in the dialogue-act model's vocabulary."""
        if self.offer is not None:
            return "offer"
        if self.clarify is not None:
            return "clarification"
        if self.frame is not None and self.frame.awaiting is not None:
            return self.frame.awaiting.label()
        return CONTEXT_NONE

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame.to_dict() if self.frame else None,
            "stack": [f.to_dict() for f in self.stack],
            "clarify": asdict(self.clarify) if self.clarify else None,
            "offer": asdict(self.offer) if self.offer else None,
            "last_completed": self.last_completed,
            "topic": asdict(self.topic) if self.topic else None,
            "language": self.language,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> "DialogueState":
        raw = raw or {}
        return cls(
            frame=Frame.from_dict(raw["frame"]) if raw.get("frame") else None,
            stack=[Frame.from_dict(f) for f in raw.get("stack") or []],
            clarify=Clarification(**raw["clarify"]) if raw.get("clarify") else None,
            offer=Offer(**raw["offer"]) if raw.get("offer") else None,
            last_completed=raw.get("last_completed"),
            topic=Topic(**raw["topic"]) if raw.get("topic") else None,
            language=raw.get("language") or "en",
        )
