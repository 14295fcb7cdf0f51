"""The dialogue manager: a short ordered list of policies (``app/conversation/policies.py``) over
one engine that knows how tasks run — fill slots, confirm, send and check an OTP, execute exactly
once, resume a task a digression interrupted.

Each turn the policies are asked in order; the first that answers wins:

    hand-off · offer · clarification · cancel · OTP · correction · answer-to-pending · digression
    · follow-up · nothing-pending · clarify · start-task

State (:class:`~app.conversation.frame.DialogueState`) is typed and persisted per session as JSON,
so separate ``sahayak turn`` processes continue one conversation. Handler-specific behaviour lives in
each handler's declaration (slots and their kinds, confirmation, OTP rule, ``replayable``, ``topic``,
``followup``), never here.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Mapping

from app.bank.errors import BankError
from app.bank.service import BankService
from app.conversation.frame import Awaiting, DialogueState, Frame, Topic
from app.conversation.policies import DEFAULT_POLICIES
from app.conversation.turn import STATES, Outcome, Policy, TurnInput, state_name, with_input
from app.core.ratelimit import RateLimiter
from app.core.settings import Settings
from app.text.responses import Responses, get_responses
from handlers.base import HandlerContext, HandlerServices, HandlerSpec, Reply, Risk, SlotError
from handlers.registry import get_handler

# Re-exported: callers import the turn types from the engine.
__all__ = ["DialogueManager", "Outcome", "STATES", "TurnInput", "state_name", "with_input"]


class DialogueManager:
    """Runs the policies over one session's state; handlers do the domain work."""

    def __init__(self, settings: Settings, bank: BankService, audit_ok: Callable[[], bool] | None = None,
                 services: HandlerServices | Mapping[str, Any] | None = None,
                 policies: list[Policy] | None = None, responses: Responses | None = None) -> None:
        self.settings = settings
        self.bank = bank
        # Money never moves when the audit trail cannot be written (provenance health check).
        self.audit_ok = audit_ok or (lambda: True)
        self.services = HandlerServices.coerce(services)
        self.sensitive_limiter = RateLimiter(settings.rate_limit_sensitive_per_hour, 3600)
        self.policies = list(policies or DEFAULT_POLICIES)
        self.responses = responses or get_responses()

    # ------------------------------------------------------------------ entry point
    def turn(self, state: DialogueState, inp: TurnInput) -> Outcome:
        """Advance ``state`` (mutated in place) with one message and return the reply."""
        for policy in self.policies:
            out = policy(self, state, inp)
            if out is not None:
                out.policy = out.policy or policy.__name__.removesuffix("_policy")
                state.language = inp.language
                return out
        raise AssertionError("the last policy always answers")  # start_task answers every message

    def say(self, key: str, inp: TurnInput | None, **fields: Any) -> str:
        """A response template in the customer's language."""
        return self.responses.say(key, inp.language if inp else "en", **fields)

    # ------------------------------------------------------------------ tasks
    def spec(self, task: str) -> HandlerSpec:
        spec = get_handler(task) or get_handler("Out_Of_Scope")
        assert spec is not None, "handlers/conversational.py registers Out_Of_Scope"
        return spec

    def start(self, state: DialogueState, task: str, inp: TurnInput) -> Outcome:
        """Start ``task``: fill what the message already says, then ask, confirm or execute."""
        spec = self.spec(task)
        if spec.requires_auth and inp.customer_id is None:
            return self.finish(state, Outcome(
                self.say("dialogue.login_first", inp, label=self.label(spec, inp)), "done", spec.intent, outcome="refused"))
        if spec.risk is Risk.HIGH and not self.sensitive_limiter.allow(str(inp.user_id)):
            minutes = int(self.sensitive_limiter.retry_after(str(inp.user_id)) // 60) + 1
            return self.finish(state, Outcome(
                self.say("dialogue.rate_limited_sensitive", inp, limit=self.settings.rate_limit_sensitive_per_hour,
                         minutes=minutes), "done", spec.intent, outcome="refused", data={"rate_limited": True}))
        frame = Frame(task=spec.intent)
        state.frame = frame
        errors = self.fill(spec, frame, inp, awaited=None)
        return self.advance(state, frame, spec, inp, errors)

    def advance(self, state: DialogueState, frame: Frame, spec: HandlerSpec, inp: TurnInput,
                errors: dict[str, str] | None = None, prefix: str = "") -> Outcome:
        """Ask for the next missing slot, then confirm, then OTP, then execute."""
        errors = dict(errors or {})
        ctx = self.ctx(frame, inp)
        for slot in spec.slots:
            if slot.name in frame.slots:
                continue
            # A default never overrides what the customer explicitly asked for and we rejected.
            if slot.default is not None and slot.name not in errors:
                try:
                    frame.slots[slot.name] = self.validate(slot, slot.default(ctx), ctx)
                    continue
                except SlotError as exc:
                    errors[slot.name] = str(exc)
            if slot.required:
                frame.awaiting = Awaiting("slot", slot.name)
                text = " ".join(p for p in (prefix, errors.get(slot.name, ""), self.slot_prompt(spec, slot, inp)) if p)
                return Outcome(text, "awaiting_slot", spec.intent, data={"slot": slot.name})
        if spec.confirm and not frame.confirmed:
            frame.idempotency_key = frame.idempotency_key or uuid.uuid4().hex
            frame.awaiting = Awaiting("confirmation")
            notes = " ".join(v for v in errors.values() if v)
            text = " ".join(p for p in (prefix, notes, spec.confirm(self.ctx(frame, inp))) if p)
            return Outcome(text, "awaiting_confirmation", spec.intent)
        if spec.needs_otp and spec.needs_otp(ctx) and not frame.otp_verified:
            return self.send_otp(state, frame, spec, inp, prefix=prefix)
        return self.execute(state, frame, spec, inp)

    def execute(self, state: DialogueState, frame: Frame, spec: HandlerSpec, inp: TurnInput) -> Outcome:
        """Run the handler once everything it declared is in place; the task ends."""
        if spec.risk is Risk.HIGH and not self.audit_ok():
            state.frame = None
            return self.finish(state, Outcome(self.say("dialogue.audit_down", inp), "done", spec.intent,
                                              outcome="refused", data={"offer_handoff": True}))
        ctx = self.ctx(frame, inp)
        try:
            reply = spec.fn(ctx)
        except BankError as exc:
            reply = Reply(str(exc), outcome="failed")
        state.frame = None
        if frame.idempotency_key:
            state.last_completed = {"task": spec.intent, "slots": frame.slots, "idempotency_key": frame.idempotency_key}
        self.remember(state, spec.intent, inp, reply, frame.slots)
        return self.finish(state, Outcome(reply.text, "done", spec.intent, reply.outcome, reply.data))

    @staticmethod
    def remember(state: DialogueState, task: str, inp: TurnInput, reply: Reply, slots: dict[str, Any]) -> None:
        """What this answer was about, for the follow-ups that may come ("why?", "and for RTGS?")."""
        # A task finished by the OTP turn is not "about" the code the customer typed.
        query = inp.query or ("" if inp.understanding.context == "otp" else inp.text)
        state.topic = Topic(task=task, query=query,
                            doc_ids=[c.get("doc_id") for c in reply.data.get("citations") or []][:3],
                            data={"slots": dict(slots), **{k: v for k, v in reply.data.items() if k in _TOPIC_KEYS}})

    def run_inline(self, task: str, inp: TurnInput) -> Outcome | None:
        """Answer a read-only task in passing (a balance asked in the middle of a transfer), leaving the
        task in progress untouched; None when ``task`` needs more than the message gives or changes something."""
        spec = self.spec(task)
        if spec.risk is not Risk.LOW or spec.confirm or (spec.requires_auth and inp.customer_id is None):
            return None
        frame = Frame(task=spec.intent)
        if self.fill(spec, frame, inp, awaited=None):
            return None
        ctx = self.ctx(frame, inp)
        for slot in spec.slots:
            if slot.name not in frame.slots and slot.default is not None:
                try:
                    frame.slots[slot.name] = self.validate(slot, slot.default(ctx), ctx)
                except SlotError:
                    return None
            if slot.required and slot.name not in frame.slots:
                return None
        try:
            reply = spec.fn(self.ctx(frame, inp))
        except BankError as exc:
            reply = Reply(str(exc), outcome="failed")
        data = {**reply.data, **({"query": inp.query} if inp.query else {})}  # the rewritten query is audited
        return Outcome(reply.text, "done", spec.intent, reply.outcome, data)

    def finish(self, state: DialogueState, out: Outcome) -> Outcome:
        """A task ended: resume a task suspended by a context switch, if any."""
        if state.frame is None and state.stack:
            state.frame = state.stack.pop()
            out.reply = f"{out.reply}\n\n{self.resume_line(state.frame, None)}"
            out.state = state_name(state.frame)
        return out

    def resume_line(self, frame: Frame, inp: TurnInput | None) -> str:
        return self.say("dialogue.resume", inp, label=self.label(self.spec(frame.task), inp),
                        prompt=self.prompt_for(frame, inp))

    # ------------------------------------------------------------------ OTP
    def send_otp(self, state: DialogueState, frame: Frame, spec: HandlerSpec, inp: TurnInput, *,
                 prefix: str = "", resend: bool = False) -> Outcome:
        try:
            issued = self.bank.issue_otp(inp.customer_id, purpose=spec.intent,
                                         reference=frame.idempotency_key or uuid.uuid4().hex)
        except BankError as exc:
            state.frame = None
            return self.finish(state, Outcome(self.say("otp.refused", inp, reason=str(exc)), "done", spec.intent,
                                              outcome="refused"))
        frame.otp_challenge = issued.challenge_id
        frame.awaiting = Awaiting("otp")
        text = self.say("otp.resent" if resend else "otp.sent", inp, minutes=self.settings.otp_ttl_seconds // 60)
        return Outcome(" ".join(p for p in (prefix, text) if p), "awaiting_otp", spec.intent, data={"sms": issued.sms_text})

    def check_otp(self, state: DialogueState, frame: Frame, inp: TurnInput, code: str) -> Outcome:
        spec = self.spec(frame.task)
        result = self.bank.verify_otp(inp.customer_id, frame.otp_challenge, code)
        if result.ok:
            frame.otp_verified = True
            return self.execute(state, frame, spec, inp)
        if result.locked:
            state.frame = None
            return self.finish(state, Outcome(self.say("otp.locked", inp, minutes=self.settings.otp_lockout_minutes),
                                              "done", spec.intent, outcome="refused"))
        if result.expired:
            state.frame = None
            return self.finish(state, Outcome(self.say("otp.expired", inp), "done", spec.intent, outcome="refused"))
        return Outcome(self.say("otp.wrong", inp, attempts=result.attempts_left), "awaiting_otp", spec.intent,
                       outcome="refused")

    # ------------------------------------------------------------------ slots
    def fill(self, spec: HandlerSpec, frame: Frame, inp: TurnInput, awaited: str | None, overwrite: bool = False,
             text: str | None = None) -> dict[str, str]:
        """Fill slots from entities (and the awaited slot from the free text); returns validation errors."""
        ctx = self.ctx(frame, inp)
        errors: dict[str, str] = {}
        said = spec.extract(inp.text if text is None else text) if spec.extract else {}
        for slot in spec.slots:
            if slot.name in frame.slots and not overwrite:
                continue
            value = said.get(slot.name)
            if value is None:
                value = next((inp.entities[k] for k in slot.entity_keys if inp.entities.get(k) not in (None, "")), None)
            if value is None and slot.name == awaited and slot.free_text:
                value = inp.text if text is None else text
            if value is None:
                continue
            try:
                cleaned = self.validate(slot, value, ctx)
            except SlotError as exc:
                errors[slot.name] = str(exc)
                continue
            frame.slots[slot.name] = cleaned
        return errors

    @staticmethod
    def validate(slot: Any, value: Any, ctx: HandlerContext) -> Any:
        return slot.validator(value, ctx) if slot.validator else value

    def slot_prompt(self, spec: HandlerSpec, slot: Any, inp: TurnInput | None) -> str:
        if slot.prompt_key and self.responses.has(slot.prompt_key, inp.language if inp else "en"):
            return self.say(slot.prompt_key, inp)
        return slot.prompt

    def prompt_for(self, frame: Frame, inp: TurnInput | None) -> str:
        """The question a pending frame is waiting on (to ask again or to resume)."""
        spec = self.spec(frame.task)
        if frame.awaiting is None:
            return ""
        if frame.awaiting.kind == "slot":
            slot = next((s for s in spec.slots if s.name == frame.awaiting.slot), None)
            return self.slot_prompt(spec, slot, inp) if slot else ""
        if frame.awaiting.kind == "confirmation" and spec.confirm:
            return spec.confirm(self.ctx(frame, inp))
        if frame.awaiting.kind == "otp":
            return self.say("otp.prompt", inp)
        return ""

    def reask(self, state: DialogueState, frame: Frame, inp: TurnInput) -> Outcome:
        return Outcome(self.say("dialogue.reask", inp, prompt=self.prompt_for(frame, inp)), state_name(frame),
                       frame.task)

    def cancel(self, state: DialogueState, frame: Frame, inp: TurnInput, *, declined: bool = False) -> Outcome:
        """End the pending task without doing it (cancel, or "no" to its confirmation)."""
        state.frame = None
        spec = self.spec(frame.task)
        text = (self.say("dialogue.declined", inp) if declined
                else self.say("dialogue.cancelled", inp, label=self.label(spec, inp)))
        return self.finish(state, Outcome(text, "done", frame.task, outcome="refused"))

    def label(self, spec: HandlerSpec, inp: TurnInput | None) -> str:
        key = f"tasks.{spec.intent}"
        language = inp.language if inp else "en"
        return self.say(key, inp) if self.responses.has(key, language) else (spec.description or spec.intent)

    # ------------------------------------------------------------------ handler context
    def ctx(self, frame: Frame, inp: TurnInput | None, topic: Topic | None = None) -> HandlerContext:
        return HandlerContext(
            session_id=inp.session_id if inp else "",
            user_id=inp.user_id if inp else None,
            customer_id=inp.customer_id if inp else None,
            text=(inp.query or inp.text) if inp else "",
            entities=inp.entities if inp else {},
            slots=frame.slots,
            settings=self.settings,
            bank=self.bank,
            history=inp.history if inp else [],
            idempotency_key=frame.idempotency_key,
            services=self.services,
            language=inp.language if inp else "en",
            topic=_topic_dict(topic),
        )


# Reply data a follow-up may need ("why?" after a loan decision reads its factors).
_TOPIC_KEYS = ("approved", "probability", "factors", "loan_type", "model_version", "scoring_request_id")


def _topic_dict(topic: Topic | None) -> dict[str, Any] | None:
    return None if topic is None else {"task": topic.task, "query": topic.query, "doc_ids": topic.doc_ids,
                                       **topic.data}
