"""The handler API: a handler is a small declared unit registered with ``@handler``.

A handler declares its intent name, the slots it needs (with validators and prompts),
whether the customer must be authenticated, its risk level and, for actions that change
something, how to confirm and whether an OTP is required. The dialogue manager does the
slot filling, re-asking, confirmation, OTP and context switching; the handler function
only runs once everything it declared is in place.

Adding a handler means adding one module under ``handlers/`` (it is discovered
automatically) and, for a new intent, a ``data/intents/<Intent>.yaml`` file of examples.
The router, the classifier code and the UI never change.

Handlers get what they use from their :class:`HandlerContext`: the settings, the bank facade
and :class:`HandlerServices` (knowledge base, scoring client, support desk), all injected by
the composition root (``app/conversation/wiring.py``) — never from process-wide singletons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from app.text.responses import get_responses

if TYPE_CHECKING:  # type hints only: the facade and the result types of the injected services
    from app.bank import BankService
    from app.core.settings import Settings
    from privacy.client import ScoreResult
    from retrieval.types import Answer


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
    ``default(ctx)`` supplies a value when the customer gave none (e.g. "savings");
    ``kind`` says what sort of answer the question expects (``amount``, ``payee``, ``account``,
    ``card``, ``period``, ``number`` or ``text``): the dialogue-act model reads each reply against it;
    ``prompt_key`` names a template in ``data/responses/<lang>.yaml`` that says ``prompt`` in the
    customer's language (``prompt`` itself is the English fallback).
    """

    name: str
    prompt: str
    entity: str | tuple[str, ...] | None = None
    validator: Callable[[Any, "HandlerContext"], Any] | None = None
    default: Callable[["HandlerContext"], Any] | None = None
    free_text: bool = False
    required: bool = True
    kind: str | None = None
    prompt_key: str | None = None

    @property
    def answer_kind(self) -> str:
        """The kind of answer expected (declared, else guessed from the slot's name and entities)."""
        if self.kind:
            return self.kind
        keys = " ".join((self.name,) + self.entity_keys)
        for kind, words in (("amount", ("amount",)), ("payee", ("beneficiary", "payee")),
                            ("account", ("account",)), ("card", ("card",)), ("period", ("period", "date")),
                            ("number", ("tenure", "income", "emi", "years", "months"))):
            if any(w in keys for w in words):
                return kind
        return "text"

    @property
    def entity_keys(self) -> tuple[str, ...]:
        """Entity names that can fill this slot, in order of preference."""
        if self.entity is None:
            return (self.name,)
        return (self.entity,) if isinstance(self.entity, str) else tuple(self.entity)


class KnowledgeBaseLike(Protocol):
    """What the FAQ handler needs of the knowledge base (:class:`retrieval.kb.KnowledgeBase`)."""

    def answer(self, question: str) -> "Answer": ...


class ScorerLike(Protocol):
    """What the loan handler needs of the encrypted scoring client (:class:`privacy.client.ScoringClient`)."""

    def score(self, features: dict[str, float]) -> "ScoreResult": ...


class SupportDeskLike(Protocol):
    """What the hand-off handler needs of the support store (:class:`app.conversation.support.SupportStore`)."""

    def create_handoff(self, session_id: str, user_id: str | None, reason: str, transcript: str) -> str: ...


class ServiceUnavailable(RuntimeError):
    """A handler asked for a service its composition root did not provide (a wiring bug)."""


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


@dataclass(frozen=True)
class HandlerServices:
    """The shared components handlers may use, injected by the composition root.

    The knowledge base and the scoring client are *getters* that load on first use, so a
    turn that never needs them never pays for building an index or generating CKKS keys.
    """

    knowledge_base_getter: Callable[[], KnowledgeBaseLike] | None = None
    scoring_getter: Callable[[], ScorerLike] | None = None
    support: SupportDeskLike | None = None

    @classmethod
    def coerce(cls, value: "HandlerServices | Mapping[str, Any] | None") -> "HandlerServices":
        """``value`` as services; a mapping names ready objects: ``{"knowledge_base": kb, "scoring": client,
        "support": store}`` (the shape callers wrote before the services were typed)."""
        if value is None:
            return cls()
        if isinstance(value, HandlerServices):
            return value
        unknown = set(value) - {"knowledge_base", "scoring", "support"}
        if unknown:
            raise TypeError(f"unknown handler services: {sorted(unknown)}")
        return cls(
            knowledge_base_getter=_constant(value["knowledge_base"]) if value.get("knowledge_base") is not None else None,
            scoring_getter=_constant(value["scoring"]) if value.get("scoring") is not None else None,
            support=value.get("support"),
        )

    def knowledge_base(self) -> KnowledgeBaseLike:
        """The knowledge base (loaded on first use by its getter)."""
        if self.knowledge_base_getter is None:
            raise ServiceUnavailable("no knowledge base was wired into this pipeline")
        return self.knowledge_base_getter()

    def scoring_client(self) -> ScorerLike:
        """The encrypted scoring client (created on first use by its getter)."""
        if self.scoring_getter is None:
            raise ServiceUnavailable("no scoring client was wired into this pipeline")
        return self.scoring_getter()

    def support_desk(self) -> SupportDeskLike:
        """Where hand-off tickets are opened."""
        if self.support is None:
            raise ServiceUnavailable("no support store was wired into this pipeline")
        return self.support


@dataclass
class HandlerContext:
    """Everything a handler may use for one execution.

    ``services`` also accepts a mapping of ready objects (see :meth:`HandlerServices.coerce`).
    """

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
    services: HandlerServices = field(default_factory=HandlerServices)  # injected shared components
    language: str = "en"  # the customer's language for this turn (en | hinglish | hi)
    topic: dict[str, Any] | None = None  # what the previous answer was about (for follow-ups)

    def __post_init__(self) -> None:
        self.services = HandlerServices.coerce(self.services)

    def say(self, key: str, **fields: Any) -> str:
        """The response template ``key`` in the customer's language, filled with ``fields``."""
        return get_responses().say(key, self.language, **fields)


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
    # A "yes" repeated after the action completed re-runs it with the same idempotency key (money
    # movements: the bank answers "already done" instead of paying twice); otherwise "already done".
    replayable: bool = False
    # Words for the knowledge base when the customer asks *about* this task ("is there a fee for this?").
    topic: str = ""
    # Answers a follow-up about this task's last result ("why?", "what if 15 years?"), or None to pass.
    followup: Callable[[HandlerContext], Reply | None] | None = None
    # Reads the whole message into slot values by slot name ("a 40 lakh home loan for a flat worth
    # 60 lakh, I earn 1.5 lakh a month": amount 40 lakh, not 60); wins over the generic entities.
    extract: Callable[[str], dict[str, Any]] | None = None
