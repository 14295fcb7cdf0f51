"""The handler API: a handler is a small declared unit registered with ``@handler``.

A handler declares its intent name, the slots it needs (with validators and prompts),
whether the customer must be authenticated, its risk level and, for actions that change
something, how to confirm and whether an OTP is required. The dialogue manager does the
slot filling, re-asking, confirmation, OTP and context switching; the handler function
only runs once everything it declared is in place.

Adding a handler means adding one module under ``handlers/`` (it is discovered
automatically) and, for a new intent, a ``data/intents/<Intent>.yaml`` file of examples.
The router, the classifier code and the UI never change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # imported for type hints only, to keep handler modules light
    from app.bank.service import BankService
    from app.core.settings import Settings


class Risk(str, Enum):
    """How much harm a wrong execution could do; drives confirmation, OTP and audit."""

    LOW = "low"  # read-only or conversational
    MEDIUM = "medium"  # creates a request (application, hand-off)
    HIGH = "high"  # moves money or changes a card


class SlotError(ValueError):
    """Raised by a slot validator; its message is said to the customer before re-asking."""


class HandlerError(Exception):
    """Raised by a handler for an expected failure; the message is the reply."""


@dataclass(frozen=True)
class Slot:
    """One piece of information a handler needs.

    ``entity`` names the extracted entity (or entities) that fill the slot (default ``name``);
    ``free_text`` lets the raw reply fill it when it is the slot being asked for;
    ``validator(value, ctx)`` returns the cleaned value or raises :class:`SlotError`;
    ``default(ctx)`` supplies a value when the customer gave none (e.g. "savings").
    """

    name: str
    prompt: str
    entity: str | tuple[str, ...] | None = None
    validator: Callable[[Any, "HandlerContext"], Any] | None = None
    default: Callable[["HandlerContext"], Any] | None = None
    free_text: bool = False
    required: bool = True

    @property
    def entity_keys(self) -> tuple[str, ...]:
        """Entity names that can fill this slot, in order of preference."""
        if self.entity is None:
            return (self.name,)
        return (self.entity,) if isinstance(self.entity, str) else tuple(self.entity)


@dataclass
class HandlerContext:
    """Everything a handler may use for one execution."""

    session_id: str
    user_id: str | None  # username of the authenticated customer, None if anonymous
    customer_id: int | None
    text: str  # the normalised current message
    entities: dict[str, Any]
    slots: dict[str, Any]
    settings: "Settings"
    bank: "BankService"
    history: list[dict[str, str]] = field(default_factory=list)  # ChatML messages so far
    idempotency_key: str | None = None  # set for confirmed actions; reused on retries
    services: dict[str, Any] = field(default_factory=dict)  # optional shared components


@dataclass
class Reply:
    """What a handler returns.

    ``outcome`` is recorded in provenance and monitoring: success | refused | failed | handoff.
    ``data`` carries structured extras for the UI and provenance (citations, retrieval
    scores, scoring request id, transfer reference, SMS text, …).
    """

    text: str
    outcome: str = "success"
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HandlerSpec:
    """A registered handler."""

    intent: str
    fn: Callable[[HandlerContext], Reply]
    slots: tuple[Slot, ...] = ()
    requires_auth: bool = False
    risk: Risk = Risk.LOW
    description: str = ""
    # Returns the confirmation question (e.g. "Send ₹2,500 to Ravi?"); None = no confirmation.
    confirm: Callable[[HandlerContext], str] | None = None
    # Returns True when this execution needs an OTP (e.g. amount above the threshold).
    needs_otp: Callable[[HandlerContext], bool] | None = None
