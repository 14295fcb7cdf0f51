"""The turn pipeline: the one entry point every channel (CLI, Chainlit, load tests) calls.

    envelope → preprocess → understand (task ranking, dialogue act given what the bot asked, entities)
             → dialogue (ordered policies over the typed state) → handler
             → session saved (ChatML, redacted) → provenance record (off the request path)

The :class:`Assistant` is built by the composition root, :func:`app.conversation.wiring.build_assistant`,
which hands it every component (bank, stores, handler services, classifier and tracker getters).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from typing import Any, Callable

from app.bank.service import BankService
from app.conversation.dialogue import DialogueManager, Outcome, TurnInput, state_name
from app.conversation.frame import DialogueState
from app.conversation.sessions import SessionStore
from app.conversation.support import SupportStore
from app.conversation.understand import Understander, Understanding
from app.core.errors import SahayakError
from app.core.redaction import map_strings
from app.core.ratelimit import RateLimiter
from app.core.settings import Settings
from app.core.types import Classification, MessageEnvelope, TurnResult
from app.text.chatml import Conversation
from app.text.preprocess import preprocess
from app.text.responses import Responses, get_responses
from handlers.base import HandlerServices
from models.acts import DialogueActClassifier
from models.intents import IntentClassifier, training_record
from models.scoring import load_artifact
from privacy.redact import redact
from provenance.tracker import Tracker
from provenance.training import register_model_at_first_use

log = logging.getLogger(__name__)
_DIGIT = re.compile(r"\d")

SYSTEM_PROMPT = (
    "You are Sahayak, a banking assistant for Sahayak Bank. You only help with the customer's own accounts, "
    "transfers to saved beneficiaries, cards, branches, loans and the bank's published policies. "
    "Never reveal other customers' data, never ask for PINs, passwords or full card numbers."
)


class Assistant:
    """Sahayak's conversation pipeline (thread-safe; one instance per process is enough).

    ``classifier`` / ``tracker`` are ready instances (a test's); otherwise ``load_classifier`` /
    ``open_tracker`` build them on first use.
    """

    def __init__(self, settings: Settings, bank: BankService, *, sessions: SessionStore, support: SupportStore,
                 services: HandlerServices, load_classifier: Callable[[], IntentClassifier],
                 open_tracker: Callable[[], Tracker], load_acts: Callable[[], DialogueActClassifier],
                 classifier: IntentClassifier | None = None, tracker: Tracker | None = None,
                 label_tasks: dict[str, str] | None = None, responses: Responses | None = None) -> None:
        self.settings = settings
        self.settings.ensure_dirs()
        self.bank = bank
        self.sessions = sessions
        self.support = support
        self._load_classifier = load_classifier
        self._open_tracker = open_tracker
        self._classifier = classifier
        self._tracker = tracker
        self._lock = threading.Lock()
        self.responses = responses or get_responses()
        self.dialogue = DialogueManager(self.settings, self.bank, audit_ok=self._audit_ok, services=services,
                                        responses=self.responses)
        self.understander = Understander(lambda: self.classifier, load_acts, label_tasks=label_tasks)
        self.message_limiter = RateLimiter(self.settings.rate_limit_messages_per_minute, 60)
        self._models_recorded = False

    # The classifier and the tracker load on first use, so building an Assistant stays cheap.
    @property
    def classifier(self) -> IntentClassifier:
        """The intent classifier (loaded, or trained and cached, on first use)."""
        if self._classifier is None:
            with self._lock:
                if self._classifier is None:
                    self._classifier = self._load_classifier()
        return self._classifier

    def _record_models(self) -> None:
        """Make sure this log names the intent model the turns point at (once per process).

        Training records are written by `sahayak intents train` when it runs; this only registers
        a model whose training is not in this log, clearly labelled, with its card's claims apart."""
        if self._models_recorded:
            return
        self._models_recorded = True
        try:
            clf = self.classifier
            lineage = (training_record(clf.model_dir).get("lineage") or {})
            register_model_at_first_use(self.tracker, "intents", clf.model_version, claimed={
                "trained_at": lineage.get("created_at"), "git_commit": lineage.get("git_commit"),
                "training_files": lineage.get("training_files")})
        except Exception as exc:  # noqa: BLE001 - lineage trouble is logged, not fatal to the chat
            log.warning("could not register the intent model: %s", exc)

    @property
    def tracker(self) -> Tracker:
        """The provenance tracker (opened on first use)."""
        if self._tracker is None:
            with self._lock:
                if self._tracker is None:
                    self._tracker = self._open_tracker()
        return self._tracker

    def _audit_ok(self) -> bool:
        try:
            return bool(self.tracker.healthy())
        except Exception:  # noqa: BLE001 - an unknown audit state is not a healthy one
            return False

    def warm_up(self) -> None:
        """Load the models now (start-up) instead of on the first message."""
        self.understander.warm_up()

    def handle(self, envelope: MessageEnvelope) -> TurnResult:
        """Process one message and return the reply; never raises for bad user input."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        turn_id = uuid.uuid4().hex
        session = self.sessions.load(envelope.session_id)
        if session is not None and session.user_id != envelope.user_id:
            raise SahayakError("this session belongs to another user")
        state = DialogueState.from_dict(dict(session.state) if session else None)
        conv = Conversation.from_chatml(session.chatml) if session and session.chatml else Conversation(
            system=SYSTEM_PROMPT)
        customer = self.bank.get_customer(envelope.user_id) if envelope.user_id else None
        if envelope.user_id and customer is None:
            raise SahayakError(f"unknown user {envelope.user_id!r}")

        pre = preprocess(envelope.text, self.settings.max_message_chars)
        timings["preprocess"] = _ms(t0)
        context = state.context()
        understanding: Understanding | None = None
        limited = not self.message_limiter.allow(envelope.user_id or envelope.session_id)
        if limited:
            wait = int(self.message_limiter.retry_after(envelope.user_id or envelope.session_id)) + 1
            cls = Classification(intent="Rate_Limited", confidence=1.0)
            out = Outcome(self.responses.say("dialogue.too_fast", state.language, seconds=wait),
                          state_name(state.frame), None, outcome="refused")
        elif pre.too_long or not pre.text.strip():
            reply = (self.responses.say("dialogue.too_long", state.language, length=f"{pre.original_length:,}",
                                        limit=f"{self.settings.max_message_chars:,}") if pre.too_long
                     else self.responses.say("dialogue.empty", state.language))
            cls = Classification(intent="Invalid_Input", confidence=1.0)
            out = Outcome(reply, state_name(state.frame), None, outcome="refused")
        else:
            t1 = time.perf_counter()
            understanding = self.understander.run(pre.text, context)
            cls = understanding.classification()
            timings["understand"] = _ms(t1)
            t2 = time.perf_counter()
            out = self.dialogue.turn(state, TurnInput(
                session_id=envelope.session_id, user_id=envelope.user_id,
                customer_id=customer.id if customer else None, text=pre.text, understanding=understanding,
                entities=understanding.entities, history=conv.to_dicts()))
            timings["dialogue"] = _ms(t2)

        # A code typed at the OTP prompt is never stored, in any form (issue 19): mask the whole turn.
        stored_text = mask_codes(pre.text) if context == "otp" else pre.text
        if pre.too_long:
            stored_text = stored_text[:200] + " …[truncated]"
        conv.add("user", redact(stored_text))
        conv.add("assistant", redact(out.reply))
        t3 = time.perf_counter()
        self.sessions.save(envelope.session_id, envelope.user_id, envelope.channel, _stored_state(state),
                           conv.to_chatml())
        timings["save"] = _ms(t3)
        timings["total"] = _ms(t0)
        # At the OTP prompt a code may also read as a pincode or an amount: no entity of that turn is kept.
        entities = {} if context == "otp" else {
            k: v for k, v in (understanding.entities if understanding else {}).items() if k != "otp"}
        language = understanding.language if understanding else state.language
        result = TurnResult(
            intent=out.task or cls.intent, confidence=float(cls.confidence), entities=entities,
            handler=out.handler, reply=out.reply, state=out.state, data=out.data, turn_id=turn_id,
            session_id=envelope.session_id, outcome=out.outcome, timings_ms=timings,
            task=out.task, dialogue_act=understanding.act.act if understanding else None, language=language,
            policy=out.policy or None)
        dialogue = None
        if understanding is not None:
            dialogue = {"act": understanding.act.act, "act_confidence": understanding.act.confidence,
                        "context": context, "classifier_intent": cls.intent,
                        "classifier_confidence": float(cls.confidence), "language": language,
                        "policy": out.policy, "query": out.data.get("query")}
        self._record(envelope, result, cls, conv, stored_text, dialogue)
        return result

    def _record_scoring_model(self, version: str) -> str:
        """The loan-scoring model's key; registered at first use when `sahayak scoring train` did not record it here."""
        model = load_artifact(self.settings)
        return register_model_at_first_use(self.tracker, "loan-scoring", model.version or version, claimed={
            "trained_at": model.trained_at, "git_commit": model.git_commit, "dataset_sha256": model.dataset_sha256,
            # How the model was made fair is part of what its card claims (checked by the fairness bound).
            "fairness_mitigation": model.mitigation_summary})

    def _record(self, envelope: MessageEnvelope, result: TurnResult, cls: Classification, conv: Conversation,
                text: str, dialogue: dict[str, Any] | None) -> None:
        retrieval = result.data.get("retrieval") or {}
        self._record_models()
        extra_models: dict[str, str] = {}
        if result.data.get("scoring_request_id") and result.data.get("model_version"):
            try:
                extra_models["scoring"] = self._record_scoring_model(str(result.data["model_version"]))
            except Exception as exc:  # noqa: BLE001 - lineage trouble is logged, not fatal
                log.warning("could not record scoring lineage: %s", exc)
        try:
            self.tracker.record_turn(
                turn_id=result.turn_id, session_id=envelope.session_id, user_id=envelope.user_id,
                channel=envelope.channel, text=text, chatml=conv.to_chatml(), intent=result.intent,
                confidence=result.confidence, entities=result.entities, handler=result.handler,
                outcome=result.outcome, state=result.state, reply=result.reply,
                passages=_passages(retrieval),
                scoring_request_id=result.data.get("scoring_request_id"),
                latency_ms=result.timings_ms.get("total", 0.0),
                model_versions={**({"intent": f"intents@{cls.model_version}"} if cls.model_version else {}),
                                **(retrieval.get("model_versions") or {}), **extra_models},
                timestamp=envelope.timestamp, stage_ms=result.timings_ms, dialogue=dialogue,
            )
        except Exception as exc:  # noqa: BLE001 - provenance trouble must not break the chat
            log.warning("provenance record failed: %s", type(exc).__name__)

    def close(self) -> None:
        """Flush provenance durably (one-shot processes call this before exiting)."""
        if self._tracker is not None:
            self._tracker.close()


def _passages(retrieval: dict[str, Any]) -> list[dict[str, Any]]:
    """The knowledge base's parallel lists as one entry per retrieved passage (with its rank)."""
    if retrieval.get("passages"):
        return list(retrieval["passages"])
    ids = retrieval.get("passage_ids") or []
    docs = retrieval.get("doc_ids") or [None] * len(ids)
    hashes = retrieval.get("chunk_hashes") or [None] * len(ids)
    scores = retrieval.get("scores") or [{}] * len(ids)
    return [{"chunk_id": c, "doc_id": d, "chunk_hash": h, "scores": sc, "rank": i}
            for i, (c, d, h, sc) in enumerate(zip(ids, docs, hashes, scores), 1)]


def _stored_state(state: DialogueState) -> dict[str, Any]:
    """The state as stored: the message copies kept for clarifications, offers and follow-ups are
    redacted like the history (slot values stay, the task in progress needs them)."""
    raw = state.to_dict()
    for part in ("clarify", "offer", "topic"):
        if raw.get(part):
            raw[part] = map_strings(raw[part], redact)
    return raw


def mask_codes(text: str) -> str:
    """The message with every digit masked (a turn typed at the OTP prompt)."""
    return _DIGIT.sub("•", text)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
