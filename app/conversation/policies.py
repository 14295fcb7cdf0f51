"""The dialogue policies, in the order they are asked (after Rasa's policy ensemble and CALM's
conversation-repair patterns). Each reads the typed state and the understood message and either
answers the turn or passes (``None``); :data:`DEFAULT_POLICIES` fixes the order.

Every policy is a plain function ``(dm, state, inp) -> Outcome | None``, so each can be tested alone.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from app.conversation.followup import asks_why, looks_like_followup, rewrite
from app.conversation.frame import Clarification, DialogueState, Frame, Offer, Topic
from app.conversation.turn import Outcome, TurnInput, state_name, with_input
from app.text.entities import extract_entities
from handlers.base import HandlerSpec, Risk
from handlers.registry import all_handlers

if TYPE_CHECKING:  # the engine imports the policies; they only call its methods
    from app.conversation.dialogue import DialogueManager

# How sure the act model must be before an act overrides everything else.
ACT_SURE = 0.5
# An action starts only on a request this likely; below it the customer is asked.
ACTION_SURE = 0.7
_DIGITS = re.compile(r"^\D{0,12}?((?:\d[\s-]?){4,8})\D{0,3}$")
_CORRECTION_LEAD = re.compile(
    r"^\s*(?:(?:no|nope|nahi|nahin|na|sorry|oops|oh|wait|actually|hold on|arre|arey|galti se|it should go to|"
    r"it should be|should be|send it to|it's|its|"
    r"make it|make that|change (?:it|that) to|change to|i meant|i mean|rather|instead)\b[\s,.!—–-]*)+", re.I)
# Words that ask for a person outright ("… this is ridiculous, get me a human").
_PERSON = re.compile(r"\b(?:human|real person|a person|agent|representative|someone real|customer care|manager|"
                     r"insaan|kisi insaan|kisi se baat|banda|staff)\b", re.I)
_ANAPHOR = re.compile(r"\b(?:this|that|it|these|those|iske|iska|iski|ismein|isme|is\s+pe|is\s+par|ye|yeh)\b", re.I)
_NOT_TAIL = re.compile(r"(?:[,;]\s*|\s+)(?:not|nahi|instead\s+of)\s+[^,;.!?]{1,25}[.!?]?\s*$", re.I)
_NOT_THIS = re.compile(r"^\s*not\s+[^,—–\-]{1,30}?(?:[,—–-]+|\s+but\s+)\s*", re.I)


def is_action(spec: HandlerSpec) -> bool:
    """Tasks that change something (money, cards, requests): they start only when asked for."""
    return spec.risk is not Risk.LOW or spec.confirm is not None


# ---------------------------------------------------------------------------------------------- repairs
def handoff_policy(dm: DialogueManager, state: DialogueState, inp: TurnInput) -> Outcome | None:
    """A request for a person is honoured at any point; frustration gets the offer of one."""
    act = inp.u.act
    u = inp.u
    asked = act.act == "handoff" and act.confidence >= ACT_SURE
    # "representative please" at a slot question reads like an answer; the intent model knows better.
    asked = asked or (u.task == "Human_Handoff" and u.confidence >= 0.8 and act.act not in ("affirm", "deny", "otp"))
    # Angry *and* asking for a person ("this is ridiculous, get me a human"): no need to offer first.
    asked = asked or (act.act == "frustration" and (act.p("handoff") >= 0.15 or bool(_PERSON.search(inp.text))))
    if asked:
        state.frame, state.stack, state.clarify, state.offer = None, [], None, None
        return dm.start(state, "Human_Handoff", inp)
    if act.act == "frustration" and act.confidence >= ACT_SURE and state.offer is None:
        state.clarify = None
        state.offer = Offer("Human_Handoff", inp.text)
        return Outcome(dm.say("dialogue.offer_person", inp), "awaiting_confirmation", None, task="Human_Handoff")
    return None


def offer_policy(dm: DialogueManager, state: DialogueState, inp: TurnInput) -> Outcome | None:
    """The answer to a yes/no offer ("Shall I connect you to a colleague?")."""
    offer = state.offer
    if offer is None:
        return None
    state.offer = None
    if inp.act in ("affirm", "choose_first"):
        return dm.start(state, offer.task, with_input(inp, text=offer.text or inp.text))
    if inp.act == "deny":
        text = dm.say("dialogue.declined_offer", inp)
        if state.frame is not None:  # carry on with the task in hand, without a "back to where we were"
            text = dm.say("dialogue.carry_on", inp, prompt=dm.prompt_for(state.frame, inp))
        return Outcome(text, state_name(state.frame), None, task=offer.task)
    return None


def clarification_policy(dm: DialogueManager, state: DialogueState, inp: TurnInput) -> Outcome | None:
    """The answer to "Did you want to 1) … or 2) …?"."""
    c = state.clarify
    if c is None:
        return None
    chosen = None
    if inp.act == "choose_first" or (inp.act == "affirm" and len(c.candidates) >= 1):
        chosen = c.candidates[0]
    elif inp.act == "choose_second" and len(c.candidates) > 1:
        chosen = c.candidates[1]
    elif inp.u.task in c.candidates and inp.u.confidence >= 0.4:
        chosen = inp.u.task
    if chosen is None and inp.act == "deny":
        state.clarify = None
        return Outcome(dm.say("dialogue.clarify_none", inp), "done", None, outcome="clarify")
    state.clarify = None
    if chosen is None:
        return None
    merged = {**c.entities, **inp.entities}
    return dm.start(state, chosen, with_input(inp, entities=merged, text=c.text, query=c.text))


def cancel_policy(dm: DialogueManager, state: DialogueState, inp: TurnInput) -> Outcome | None:
    if inp.act != "cancel" or inp.u.act.confidence < ACT_SURE:
        return None
    if state.frame is not None:
        return dm.cancel(state, state.frame, inp)
    return Outcome(dm.say("dialogue.declined_offer", inp), "done", None, outcome="refused")


# ---------------------------------------------------------------------------------------------- inside a task
def otp_policy(dm: DialogueManager, state: DialogueState, inp: TurnInput) -> Outcome | None:
    frame = state.frame
    if frame is None or frame.awaiting is None or frame.awaiting.kind != "otp":
        return None
    if inp.act == "resend":
        return dm.send_otp(state, frame, dm.spec(frame.task), inp, resend=True)
    code = inp.entities.get("otp")
    if not code and (m := _DIGITS.match(inp.text)):
        code = re.sub(r"\D", "", m.group(1))
    if code and inp.act not in ("correct", "question", "request"):
        return dm.check_otp(state, frame, inp, str(code))
    return None


def _correction_text(text: str) -> str:
    """What a correction changes to: "no, 4000" → "4000", "not Ravi — Priya" → "Priya",
    "23000, not 25" → "23000", "take it from current account, not savings" → "take it from current account"."""
    text = _NOT_THIS.sub("", _CORRECTION_LEAD.sub("", text.strip()))  # "sorry not Vikram — Priya"
    text = _NOT_TAIL.sub("", text)
    return _CORRECTION_LEAD.sub("", text).strip(" ,.!")


def correction_policy(dm: DialogueManager, state: DialogueState, inp: TurnInput) -> Outcome | None:
    """A correction is never a cancel: it changes the slot, voids any confirmation or OTP, asks again."""
    frame = state.frame
    if frame is None or frame.awaiting is None:
        return None
    if frame.awaiting.kind == "slot" and inp.act != "correct":
        return None
    if inp.act not in ("correct", "inform", "deny", "affirm") and inp.u.act.p("correct") < 0.2:
        return None
    spec = dm.spec(frame.task)
    remainder = _correction_text(inp.text)
    entities = {**inp.entities, **extract_entities(remainder)} if remainder else dict(inp.entities)
    changed_inp = with_input(inp, entities=entities)
    before = dict(frame.slots)
    errors = dm.fill(spec, frame, changed_inp, awaited=None, overwrite=True)
    if frame.slots == before and remainder and inp.act == "correct":
        # A bare name or account ("not Ravi — Priya"): offer it to the free-text slots of its kind. The last
        # clause carries the new value ("oh he's not added? ok then priya").
        value = re.split(r"[?.!,;]", remainder)[-1].strip() or remainder
        for slot in spec.slots:
            if slot.free_text and slot.answer_kind in ("payee", "account", "card") and len(value.split()) <= 4:
                errors.update(dm.fill(spec, frame, changed_inp, awaited=slot.name, overwrite=True, text=value))
                if frame.slots != before:
                    break
    if frame.slots == before:
        if errors:
            # "no, to Rohit" and Rohit is not a payee: the old value is not what they want either; ask for it.
            for name in errors:
                frame.slots.pop(name, None)
            frame.void_confirmation()
            return dm.advance(state, frame, spec, inp, errors)
        if inp.act == "correct":
            return dm.reask(state, frame, inp)
        return None
    had_otp = frame.otp_challenge is not None
    frame.void_confirmation()
    prefix = dm.say("dialogue.changed", inp) + (" " + dm.say("otp.voided", inp) if had_otp else "")
    return dm.advance(state, frame, spec, inp, errors, prefix=prefix)


def answer_policy(dm: DialogueManager, state: DialogueState, inp: TurnInput) -> Outcome | None:
    """The answer to what was just asked: the pending slot, or yes/no to the confirmation."""
    frame = state.frame
    if frame is None or frame.awaiting is None:
        return None
    spec = dm.spec(frame.task)
    if frame.awaiting.kind == "confirmation":
        # Money moves on a clear yes only: an unrelated aside must never read as one.
        if inp.act == "affirm" and inp.u.act.confidence >= ACT_SURE:
            frame.confirmed = True
            return dm.advance(state, frame, spec, inp)
        if inp.act == "deny" and inp.u.act.confidence >= ACT_SURE:
            return dm.cancel(state, frame, inp, declined=True)
        return None
    if frame.awaiting.kind != "slot":
        return None
    awaited = frame.awaiting.slot
    # The raw reply fills a free-text slot only when it reads as an answer, not as a new question
    # (nor a bare "yes": it answers nothing that was asked).
    answering = inp.act in ("inform", "correct") or inp.u.act.confidence < ACT_SURE
    before = dict(frame.slots)
    errors = dm.fill(spec, frame, inp, awaited=None)
    if awaited not in frame.slots and frame.slots == before and answering:
        # Nothing the message says fits another slot ("500" while the payee is asked fills the amount).
        errors.update(dm.fill(spec, frame, inp, awaited=awaited))
    if awaited in frame.slots or (frame.slots != before and answering):
        return dm.advance(state, frame, spec, inp, errors)
    if awaited in errors and answering:
        return dm.advance(state, frame, spec, inp, errors)
    return None


def digression_policy(dm: DialogueManager, state: DialogueState, inp: TurnInput) -> Outcome | None:
    """A question or another request in the middle of a task: answer it, then resume the task."""
    frame = state.frame
    if frame is None:
        return None
    spec = dm.spec(frame.task)
    u = inp.u
    if inp.act == "question":
        # "is there a fee for this?", "why do you need an OTP?": about the task in hand, unless it names another.
        about_other = u.task not in (frame.task, "FAQ", "Out_Of_Scope") and u.confidence >= 0.6
        # "is there a fee for this?" leans on the task; "why do you need an OTP?" stands alone.
        query = f"{inp.text} {spec.topic}".strip() if not about_other and _ANAPHOR.search(inp.text) else inp.text
        out = dm.run_inline("FAQ", with_input(inp, query=query))
        if out is not None:
            return _resumed(dm, state, inp, out)
    if u.task == "Out_Of_Scope" and u.confidence >= 0.5 and inp.act in ("question", "chitchat", "request"):
        out = dm.run_inline("Out_Of_Scope", inp)  # "is it going to rain today?" mid-transfer
        if out is not None:
            return _resumed(dm, state, inp, out)
    if inp.act in ("request", "question") and u.task not in (frame.task, "Out_Of_Scope", "Greeting") \
            and u.confidence >= dm.settings.clarify_threshold:
        out = dm.run_inline(u.task, inp)
        if out is not None:
            return _resumed(dm, state, inp, out)
        if inp.act == "request":
            state.stack.append(frame)
            state.frame = None
            return dm.start(state, u.task, inp)
    return None


def _resumed(dm: DialogueManager, state: DialogueState, inp: TurnInput, out: Outcome) -> Outcome:
    out.reply = f"{out.reply}\n\n{dm.resume_line(state.frame, inp)}"
    out.state = state_name(state.frame)
    return out


def pending_policy(dm: DialogueManager, state: DialogueState, inp: TurnInput) -> Outcome | None:
    """Still inside a task and the message was none of the above: ask again."""
    if state.frame is None:
        return None
    return dm.reask(state, state.frame, inp)


# ---------------------------------------------------------------------------------------------- nothing pending
def stray_answer_policy(dm: DialogueManager, state: DialogueState, inp: TurnInput) -> Outcome | None:
    """A "yes" or "no" with nothing pending: a retried confirmation is replayed idempotently."""
    if inp.act == "affirm" and inp.u.act.confidence >= ACT_SURE:
        last = state.last_completed
        if last and last.get("idempotency_key"):
            spec = dm.spec(last["task"] if "task" in last else last["intent"])
            if not spec.replayable:
                return Outcome(dm.say("dialogue.already_done", inp), "done", spec.intent)
            frame = Frame(task=spec.intent, slots=dict(last["slots"]), confirmed=True, otp_verified=True,
                          idempotency_key=last["idempotency_key"])
            return dm.execute(state, frame, spec, inp)
        return Outcome(dm.say("dialogue.nothing_pending", inp), "done", None)
    if inp.act == "deny" and inp.u.act.confidence >= ACT_SURE:
        return Outcome(dm.say("dialogue.declined_offer", inp), "done", None)
    return None


def followup_policy(dm: DialogueManager, state: DialogueState, inp: TurnInput) -> Outcome | None:
    """A short question that leans on the last answer: the task's own follow-up, or a rewritten FAQ query."""
    topic = state.topic
    if topic is None or not looks_like_followup(inp.text):
        return None
    if inp.act in ("greet", "goodbye", "chitchat", "cancel", "frustration") and inp.u.act.confidence >= ACT_SURE:
        return None  # "ok thanks, that's all" after an answer closes the chat
    u = inp.u
    if u.confidence >= 0.85 and u.task not in ("FAQ", topic.task) and inp.act == "request":
        return None  # a clear new request ("send 500 to ravi") is not a follow-up
    spec = dm.spec(topic.task)
    if spec.followup is not None:
        frame = _topic_frame(topic)
        reply = spec.followup(dm.ctx(frame, inp, topic))
        if reply is not None:
            if reply.data.get("scoring_request_id") or reply.data.get("citations"):  # a new result to follow up on
                dm.remember(state, spec.intent, inp, reply, frame.slots)
            return Outcome(reply.text, "done", spec.intent, reply.outcome, reply.data)
    if topic.task != "FAQ" and u.task != "FAQ":
        return None  # "and 1.5 lakh to priya" after a transfer is a new transfer, not a knowledge question
    if topic.task == "FAQ" or not asks_why(inp.text):
        query = rewrite(inp.text, topic.query)
        out = dm.run_inline("FAQ", with_input(inp, query=query))
        if out is not None:
            state.topic.query = query
            return out
    return None


def _topic_frame(topic: Topic) -> Frame:
    """A throwaway frame carrying the last task's slots, for its follow-up handler."""
    return Frame(task=topic.task, slots=dict(topic.data.get("slots") or {}))


def question_about_action_policy(dm: DialogueManager, state: DialogueState, inp: TurnInput) -> Outcome | None:
    """"How does blocking a card work?" is answered; it never starts blocking a card."""
    u = inp.u
    spec = dm.spec(u.task)
    if inp.act != "question" or not is_action(spec):
        return None
    query = f"{inp.text} {spec.topic}".strip()
    out = dm.run_inline("FAQ", with_input(inp, query=query))
    if out is None:
        return None
    out.reply = dm.say("dialogue.question_about_action", inp, answer=out.reply, label=dm.label(spec, inp))
    return out


def clarify_policy(dm: DialogueManager, state: DialogueState, inp: TurnInput) -> Outcome | None:
    """Unclear, or an action not clearly asked for: offer the two likeliest readings."""
    u = inp.u
    ranked = [t for t, _ in u.ranking if t not in ("Out_Of_Scope",) and t in _handled()]
    if u.task == "Out_Of_Scope":
        runner = next(((t, p) for t, p in u.ranking if t != "Out_Of_Scope"), None)
        # Out of scope only when nothing banking comes close; otherwise ask.
        if runner and runner[1] >= 0.25 and runner[0] not in ("Greeting", "Goodbye"):
            return _clarify(dm, state, inp, [runner[0]] + [t for t in ranked if t != runner[0]][:1])
        return None
    spec = dm.spec(u.task)
    unsure = u.confidence < dm.settings.clarify_threshold
    unasked = is_action(spec) and (u.confidence < ACTION_SURE or inp.act not in ("request", "inform", "correct"))
    if not (unsure or unasked):
        return None
    candidates = ranked[:2]
    if unasked and not unsure and u.task in candidates and "FAQ" not in candidates[:1]:
        candidates = [u.task, "FAQ"]  # "do it" or "tell me about it"
    if len(candidates) < 2:
        return None
    return _clarify(dm, state, inp, candidates)


def _handled() -> set[str]:
    return set(all_handlers())


def _clarify(dm: DialogueManager, state: DialogueState, inp: TurnInput, candidates: list[str]) -> Outcome:
    state.clarify = Clarification(candidates=candidates, text=inp.text, entities=inp.entities)
    joiner = dm.say("dialogue.clarify_joiner", inp)
    options = joiner.join(dm.say("dialogue.clarify_option", inp, n=n, label=dm.label(dm.spec(c), inp))
                          for n, c in enumerate(candidates, 1))
    return Outcome(dm.say("dialogue.clarify", inp, options=options), "awaiting_clarification", None,
                   outcome="clarify", data={"candidates": candidates}, task=candidates[0])


def start_task_policy(dm: DialogueManager, state: DialogueState, inp: TurnInput) -> Outcome:
    """Everything else: start the task the message asks for."""
    task = inp.u.task
    # "shukriya" / "thanks, that's all" close the chat even when the intent model reads a greeting.
    social = inp.act in _SOCIAL and (
        (inp.u.act.confidence >= ACT_SURE and task in _SOCIAL.values())
        or (inp.u.act.confidence >= 0.8 and task in ("FAQ", "Out_Of_Scope")))
    if social:
        task = _SOCIAL[inp.act]
    return dm.start(state, task, inp)


_SOCIAL = {"greet": "Greeting", "goodbye": "Goodbye"}


DEFAULT_POLICIES = [
    handoff_policy, offer_policy, clarification_policy, cancel_policy,
    otp_policy, correction_policy, answer_policy, digression_policy, pending_policy,
    stray_answer_policy, followup_policy, question_about_action_policy, clarify_policy, start_task_policy,
]
