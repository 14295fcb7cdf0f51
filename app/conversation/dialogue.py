"""The dialogue manager: multi-turn slot filling, clarification, confirmation, OTP,
correction, cancel and context switching around the declared handlers.

State is a plain JSON-able dict persisted per session in the bank database, so separate
``sahayak turn`` processes continue the same conversation:

```
{"frame": {...} | None,         # the task in progress
 "stack": [{...}, ...],         # tasks suspended by a context switch, resumed afterwards
 "clarify": {...} | None,       # candidates offered when confidence was low
 "last_completed": {...} | None # the last confirmed action, so a retried "yes" is idempotent
}
```
A frame is ``{"intent", "slots", "awaiting", "idempotency_key", "otp_challenge", "confirmed"}``
where ``awaiting`` is ``"slot:<name>"``, ``"confirmation"`` or ``"otp"``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from app.bank.errors import BankError
from app.bank.service import BankService
from app.core.ratelimit import RateLimiter
from app.core.settings import Settings
from app.core.types import Classification
from handlers.base import HandlerContext, HandlerServices, HandlerSpec, Reply, Risk, SlotError
from handlers.registry import get_handler

AFFIRM = re.compile(
    r"^\s*(yes|yeah|yep|yup|y|ok|okay|sure|confirm(ed)?|go ahead|do it|proceed|haan|ha|haa|han|ji|ji haan|theek hai|"
    r"thik hai|correct|right|please do|yes please|send it|block it)\b[\s.!]*",
    re.I,
)
DENY = re.compile(r"^\s*(no|nope|nah|n|nahi|nahin|mat|don'?t|do not|stop|wrong)\b", re.I)
CANCEL = re.compile(r"\b(cancel|abort|forget it|never ?mind|rehne do|band karo|chhodo|quit)\b", re.I)
ORDINALS = {"1": 0, "one": 0, "first": 0, "pehla": 0, "2": 1, "two": 1, "second": 1, "doosra": 1}

AWAITING_STATES = {"slot": "awaiting_slot", "confirmation": "awaiting_confirmation", "otp": "awaiting_otp"}
# Mid-task, a "hi" or an unrecognised message is an answer attempt, not a reason to suspend the task.
SWITCH_EXEMPT = {"Greeting", "Out_Of_Scope"}


@dataclass
class Outcome:
    """The dialogue's answer for one turn."""

    reply: str
    state: str  # awaiting_slot | awaiting_confirmation | awaiting_otp | awaiting_clarification | done
    handler: str | None
    outcome: str = "success"
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class TurnInput:
    """What the dialogue manager needs to know about the current message."""

    session_id: str
    user_id: str | None
    customer_id: int | None
    text: str
    classification: Classification
    entities: dict[str, Any]
    history: list[dict[str, str]]


class DialogueManager:
    """Drives one session's state machine; handlers do the domain work."""

    def __init__(self, settings: Settings, bank: BankService, audit_ok: Callable[[], bool] | None = None,
                 services: HandlerServices | Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self.bank = bank
        # Money never moves when the audit trail cannot be written (provenance health check).
        self.audit_ok = audit_ok or (lambda: True)
        self.services = HandlerServices.coerce(services)
        self.sensitive_limiter = RateLimiter(settings.rate_limit_sensitive_per_hour, 3600)

    # ------------------------------------------------------------------ entry point
    def turn(self, state: dict[str, Any], inp: TurnInput) -> Outcome:
        """Advance ``state`` (mutated in place) with one message and return the reply."""
        state.setdefault("stack", [])
        frame = state.get("frame")
        cls = inp.classification

        if frame and CANCEL.search(inp.text):
            return self._cancel(state, frame)

        if frame:
            awaiting = frame.get("awaiting", "")
            if awaiting == "otp":
                out = self._on_otp(state, frame, inp)
            elif awaiting == "confirmation":
                out = self._on_confirmation(state, frame, inp)
            else:
                out = self._on_slot(state, frame, inp)
            if out is not None:
                return out
            # Not an answer to what we asked: a confident different intent is a context switch.
            if self._is_switch(cls, frame):
                state["stack"].append(frame)
                state["frame"] = None
                return self._start(state, cls.intent, inp)
            return self._reask(state, frame, inp)

        if state.get("clarify"):
            chosen = self._resolve_clarification(state["clarify"], inp)
            original = state.pop("clarify")
            if chosen:
                merged = dict(original.get("entities", {}))
                merged.update(inp.entities)
                return self._start(state, chosen, _with(inp, entities=merged, text=original.get("text", inp.text)))

        if AFFIRM.fullmatch(inp.text.strip()):
            # A bare "yes" with nothing pending: most likely a retried confirmation.
            if state.get("last_completed", {}).get("idempotency_key"):
                return self._replay(state, inp)
            return Outcome("There's nothing waiting for your confirmation right now. How can I help?", "done", None)

        if cls.intent == "Out_Of_Scope":
            return self._start(state, "Out_Of_Scope", inp)
        if cls.confidence < self.settings.clarify_threshold:
            return self._clarify(state, inp)
        return self._start(state, cls.intent, inp)

    # ------------------------------------------------------------------ frames
    def _start(self, state: dict[str, Any], intent: str, inp: TurnInput) -> Outcome:
        spec = get_handler(intent) or get_handler("Out_Of_Scope")
        assert spec is not None
        if spec.requires_auth and inp.customer_id is None:
            return self._finish(state, Outcome(
                f"Please log in first so I can {spec.description or 'help with that'}.", "done", spec.intent,
                outcome="refused"))
        if spec.risk is Risk.HIGH and not self.sensitive_limiter.allow(str(inp.user_id)):
            minutes = int(self.sensitive_limiter.retry_after(str(inp.user_id)) // 60) + 1
            return self._finish(state, Outcome(
                f"For your security I can only start {self.settings.rate_limit_sensitive_per_hour} transfers or card "
                f"changes per hour. Please try again in about {minutes} minutes, or ask for a colleague.", "done",
                spec.intent, outcome="refused", data={"rate_limited": True}))
        frame = {"intent": spec.intent, "slots": {}, "awaiting": "", "idempotency_key": None,
                 "otp_challenge": None, "confirmed": False}
        state["frame"] = frame
        errors = self._fill(spec, frame, inp, awaited=None)
        return self._advance(state, frame, spec, inp, errors)

    def _advance(self, state: dict[str, Any], frame: dict[str, Any], spec: HandlerSpec, inp: TurnInput,
                 errors: dict[str, str] | None = None) -> Outcome:
        """Ask for the next missing slot, then confirm, then OTP, then execute."""
        ctx = self._ctx(frame, inp)
        for slot in spec.slots:
            if slot.name in frame["slots"]:
                continue
            # A default never overrides what the customer explicitly asked for and we rejected.
            if slot.default is not None and slot.name not in (errors or {}):
                try:
                    frame["slots"][slot.name] = self._validate(slot, slot.default(ctx), ctx)
                    continue
                except SlotError as exc:
                    errors = {**(errors or {}), slot.name: str(exc)}
            if slot.required:
                frame["awaiting"] = f"slot:{slot.name}"
                prefix = (errors or {}).get(slot.name, "")
                return Outcome(f"{prefix} {slot.prompt}".strip(), "awaiting_slot", spec.intent,
                               data={"slot": slot.name})
        if spec.confirm and not frame["confirmed"]:
            frame["idempotency_key"] = frame["idempotency_key"] or uuid.uuid4().hex
            frame["awaiting"] = "confirmation"
            prefix = " ".join(v for v in (errors or {}).values())
            return Outcome(f"{prefix} {spec.confirm(self._ctx(frame, inp))}".strip(), "awaiting_confirmation",
                           spec.intent)
        if spec.needs_otp and spec.needs_otp(ctx) and frame.get("otp_verified") is not True:
            return self._send_otp(state, frame, spec, inp)
        return self._execute(state, frame, spec, inp)

    def _execute(self, state: dict[str, Any], frame: dict[str, Any], spec: HandlerSpec, inp: TurnInput) -> Outcome:
        if spec.risk is Risk.HIGH and not self.audit_ok():
            state["frame"] = None
            return self._finish(state, Outcome(
                "I can't do that right now: our audit log is unavailable, and I never move money or change cards "
                "without a record. Please try again shortly or ask for a colleague.", "done", spec.intent,
                outcome="refused", data={"offer_handoff": True}))
        ctx = self._ctx(frame, inp)
        try:
            reply = spec.fn(ctx)
        except BankError as exc:
            reply = Reply(str(exc), outcome="failed")
        state["frame"] = None
        if frame.get("idempotency_key"):
            state["last_completed"] = {"intent": spec.intent, "slots": frame["slots"],
                                       "idempotency_key": frame["idempotency_key"]}
        return self._finish(state, Outcome(reply.text, "done", spec.intent, reply.outcome, reply.data))

    def _finish(self, state: dict[str, Any], out: Outcome) -> Outcome:
        """A task ended: resume a task suspended by a context switch, if any."""
        if state.get("frame") is None and state.get("stack"):
            frame = state["stack"].pop()
            state["frame"] = frame
            spec = get_handler(frame["intent"])
            resume = self._prompt_for(frame, spec)
            label = spec.description if spec else frame["intent"]
            out.reply = f"{out.reply}\n\nNow, back to where we were ({label}): {resume}"
            out.state = state_name(frame)
        return out

    # ------------------------------------------------------------------ awaiting handlers
    def _on_slot(self, state: dict[str, Any], frame: dict[str, Any], inp: TurnInput) -> Outcome | None:
        spec = get_handler(frame["intent"])
        assert spec is not None
        awaited = frame["awaiting"].split(":", 1)[1] if frame["awaiting"].startswith("slot:") else None
        # As in form-filling dialogue systems: an answer that validates as the value we asked
        # for fills the slot ("3 years", "80000", "none"), whatever the classifier thinks;
        # only a message that does not answer the question can switch to another task.
        errors = self._fill(spec, frame, inp, awaited=awaited)
        if awaited and awaited in frame["slots"]:
            return self._advance(state, frame, spec, inp, errors)
        if self._is_switch(inp.classification, frame):
            return None
        if awaited in errors:
            return self._advance(state, frame, spec, inp, errors)
        if inp.classification.intent == frame["intent"] and any(
                k in inp.entities for s in spec.slots for k in s.entity_keys):
            return self._advance(state, frame, spec, inp, errors)
        return None

    def _on_confirmation(self, state: dict[str, Any], frame: dict[str, Any], inp: TurnInput) -> Outcome | None:
        spec = get_handler(frame["intent"])
        assert spec is not None
        # A correction ("no, make it 3000") changes a slot and asks again; it wins over a bare "no".
        before = dict(frame["slots"])
        errors = self._fill(spec, frame, inp, awaited=None, overwrite=True)
        if frame["slots"] != before or errors:
            frame["idempotency_key"] = None  # a different transfer is a different idempotent action
            return self._advance(state, frame, spec, inp, errors)
        if AFFIRM.match(inp.text):
            frame["confirmed"] = True
            return self._advance(state, frame, spec, inp)
        if DENY.match(inp.text):
            return self._cancel(state, frame)
        return None

    def _on_otp(self, state: dict[str, Any], frame: dict[str, Any], inp: TurnInput) -> Outcome | None:
        spec = get_handler(frame["intent"])
        assert spec is not None
        code = inp.entities.get("otp") or (inp.text.strip() if re.fullmatch(r"\d{4,8}", inp.text.strip()) else None)
        if not code:
            return None
        result = self.bank.verify_otp(inp.customer_id, frame["otp_challenge"], str(code))
        if result.ok:
            frame["otp_verified"] = True
            return self._execute(state, frame, spec, inp)
        if result.locked:
            state["frame"] = None
            return self._finish(state, Outcome(
                f"That code was wrong too many times, so I've cancelled this and locked OTPs for "
                f"{self.settings.otp_lockout_minutes} minutes. Nothing was sent.", "done", spec.intent,
                outcome="refused"))
        if result.expired:
            state["frame"] = None
            return self._finish(state, Outcome(
                "That code has expired, so I've cancelled this. Nothing was sent — you can start again.", "done",
                spec.intent, outcome="refused"))
        return Outcome(f"That code is incorrect. {result.attempts_left} attempt(s) left. Please enter the OTP again, "
                       "or say cancel.", "awaiting_otp", spec.intent, outcome="refused")

    # ------------------------------------------------------------------ helpers
    def _send_otp(self, state: dict[str, Any], frame: dict[str, Any], spec: HandlerSpec, inp: TurnInput) -> Outcome:
        try:
            issued = self.bank.issue_otp(inp.customer_id, purpose=spec.intent, reference=frame["idempotency_key"])
        except BankError as exc:
            state["frame"] = None
            return self._finish(state, Outcome(f"{exc} Nothing was sent.", "done", spec.intent, outcome="refused"))
        frame["otp_challenge"] = issued.challenge_id
        frame["awaiting"] = "otp"
        return Outcome(
            f"For your security I've sent a 6-digit OTP to your registered mobile number. Please enter it here "
            f"(valid {self.settings.otp_ttl_seconds // 60} minutes).", "awaiting_otp", spec.intent,
            data={"sms": issued.sms_text})

    def _fill(self, spec: HandlerSpec, frame: dict[str, Any], inp: TurnInput, awaited: str | None,
              overwrite: bool = False) -> dict[str, str]:
        """Fill slots from entities (and the awaited slot from free text); returns validation errors."""
        ctx = self._ctx(frame, inp)
        errors: dict[str, str] = {}
        for slot in spec.slots:
            if slot.name in frame["slots"] and not overwrite:
                continue
            value = next((inp.entities[k] for k in slot.entity_keys if inp.entities.get(k) not in (None, "")), None)
            if value is None and slot.name == awaited and slot.free_text:
                value = inp.text
            if value is None:
                continue
            try:
                frame["slots"][slot.name] = self._validate(slot, value, ctx)
            except SlotError as exc:
                errors[slot.name] = str(exc)
        return errors

    @staticmethod
    def _validate(slot: Any, value: Any, ctx: HandlerContext) -> Any:
        return slot.validator(value, ctx) if slot.validator else value

    def _is_switch(self, cls: Classification, frame: dict[str, Any]) -> bool:
        return (cls.intent != frame["intent"] and cls.intent not in SWITCH_EXEMPT
                and cls.confidence >= self.settings.clarify_threshold and get_handler(cls.intent) is not None)

    def _reask(self, state: dict[str, Any], frame: dict[str, Any], inp: TurnInput) -> Outcome:
        spec = get_handler(frame["intent"])
        prompt = self._prompt_for(frame, spec)
        return Outcome(f"Sorry, I didn't get that. {prompt} (You can also say cancel.)", state_name(frame),
                       frame["intent"])

    def _prompt_for(self, frame: dict[str, Any], spec: HandlerSpec | None) -> str:
        awaiting = frame.get("awaiting", "")
        if spec is None:
            return ""
        if awaiting.startswith("slot:"):
            name = awaiting.split(":", 1)[1]
            return next((s.prompt for s in spec.slots if s.name == name), "")
        if awaiting == "confirmation" and spec.confirm:
            return spec.confirm(self._ctx(frame, None))
        if awaiting == "otp":
            return "Please enter the 6-digit OTP sent to your phone."
        return ""

    def _cancel(self, state: dict[str, Any], frame: dict[str, Any]) -> Outcome:
        state["frame"] = None
        spec = get_handler(frame["intent"])
        label = spec.description if spec else frame["intent"]
        return self._finish(state, Outcome(f"Okay, I've cancelled that ({label}). Nothing was changed.", "done",
                                           frame["intent"], outcome="refused"))

    def _clarify(self, state: dict[str, Any], inp: TurnInput) -> Outcome:
        candidates = [i for i, _ in inp.classification.ranking if i not in {"Out_Of_Scope"} and get_handler(i)][:2]
        if not candidates:
            return self._start(state, "Out_Of_Scope", inp)
        state["clarify"] = {"candidates": candidates, "text": inp.text, "entities": inp.entities}
        options = " or ".join(f"{n}) {get_handler(c).description}" for n, c in enumerate(candidates, 1))
        return Outcome(f"I'm not sure I understood. Did you want to {options}? You can also rephrase.",
                       "awaiting_clarification", None, outcome="clarify", data={"candidates": candidates})

    def _resolve_clarification(self, clarify: dict[str, Any], inp: TurnInput) -> str | None:
        candidates = clarify["candidates"]
        words = inp.text.lower().strip(" .!?").split()
        for w in words[:3]:
            if w in ORDINALS and ORDINALS[w] < len(candidates):
                return candidates[ORDINALS[w]]
        if AFFIRM.fullmatch(inp.text.strip()) or AFFIRM.match(inp.text) and len(words) <= 2:
            return candidates[0]
        for c in candidates:
            desc = (get_handler(c).description or "").lower()
            if any(w in desc.split() and len(w) > 3 for w in words):
                return c
        if inp.classification.intent in candidates:
            return inp.classification.intent
        return None

    def _replay(self, state: dict[str, Any], inp: TurnInput) -> Outcome:
        """A confirmation arrived again after the action completed: re-run it idempotently."""
        last = state["last_completed"]
        spec = get_handler(last["intent"])
        assert spec is not None
        frame = {"intent": last["intent"], "slots": last["slots"], "awaiting": "", "confirmed": True,
                 "idempotency_key": last["idempotency_key"], "otp_verified": True}
        if last["intent"] != "Fund_Transfer":
            return Outcome("That's already done — nothing more to confirm.", "done", spec.intent)
        return self._execute(state, frame, spec, inp)

    def _ctx(self, frame: dict[str, Any], inp: TurnInput | None) -> HandlerContext:
        return HandlerContext(
            session_id=inp.session_id if inp else "",
            user_id=inp.user_id if inp else None,
            customer_id=inp.customer_id if inp else None,
            text=inp.text if inp else "",
            entities=inp.entities if inp else {},
            slots=frame["slots"],
            settings=self.settings,
            bank=self.bank,
            history=inp.history if inp else [],
            idempotency_key=frame.get("idempotency_key"),
            services=self.services,
        )


def state_name(frame: dict[str, Any]) -> str:
    """The public state of a pending frame: ``awaiting_slot`` / ``awaiting_confirmation`` / ``awaiting_otp``."""
    awaiting = frame.get("awaiting", "")
    return AWAITING_STATES.get(awaiting.split(":", 1)[0], "done")


def _with(inp: TurnInput, **changes: Any) -> TurnInput:
    return TurnInput(**{**inp.__dict__, **changes})
