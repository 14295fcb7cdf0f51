"""Sahayak's customer chat (Chainlit) and the staff audit console mounted on the same server.

Run it with ``sahayak run`` (which also starts the graph server and the scoring service), or alone::

    chainlit run app/web/chat.py --host 127.0.0.1 --port 8000 --headless

(The file is not called ``app.py``: Chainlit puts this folder first on ``sys.path``, and a module
named ``app`` there would shadow the ``app`` package.)

Every customer message goes through the same pipeline as the CLI (``Assistant.handle``), in a
worker thread so the event loop stays free. The reply shows the pipeline as collapsible steps,
confirm/cancel buttons, the demo SMS for OTPs and the cited passages. What Chainlit stores (its
SQLAlchemy data layer) is redacted — see ``app/web/datalayer.py``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from app.core.environment import apply_offline_env

apply_offline_env()  # before chainlit pulls in the model libraries

import chainlit as cl  # noqa: E402
from chainlit.config import config as chainlit_config  # noqa: E402
from chainlit.server import app as server_app  # noqa: E402
from chainlit.server import sio  # noqa: E402
from fastapi import Request, Response  # noqa: E402

from app.bank.seed import DEMO_USERNAMES  # noqa: E402
from app.conversation.assistant import mask_codes  # noqa: E402
from app.conversation.frame import DialogueState  # noqa: E402
from app.conversation.wiring import serving_process  # noqa: E402
from app.core.errors import SahayakError  # noqa: E402
from app.core.types import MessageEnvelope, TurnResult  # noqa: E402
from app.web import health, security  # noqa: E402
from app.web.audit import start_graph_import, stop_graph_import  # noqa: E402
from app.web.datalayer import EPHEMERAL_ELEMENTS, flag_masked, make_data_layer  # noqa: E402
from app.web.render import citations_of, safe_markdown, scoring_of, step_outputs  # noqa: E402
from app.web.routes import mount_all  # noqa: E402
from app.web.runtime import close_assistant, get_assistant, get_bank, get_support  # noqa: E402
from privacy.redact import redact  # noqa: E402
from retrieval import get_knowledge_base  # noqa: E402

log = logging.getLogger("sahayak.web")

# The staff console, stored chat files and our logo must come before Chainlit's catch-all SPA route.
mount_all(server_app)
# Origins, CSRF token, revocation, cookies, CSP, disabled features, ownership: app/web/security.py.
security.install(server_app, sio, chainlit_config.run.host, chainlit_config.run.port)

CONFIRM, CANCEL = "sahayak_confirm", "sahayak_cancel"
FRIENDLY_ERROR = ("Sorry — something went wrong on our side and nothing was changed. "
                  "Please try again in a moment, or say \"talk to an agent\". (reference {ref})")


# --------------------------------------------------------------------------- persistence and login
@cl.data_layer
def _data_layer() -> Any:
    return make_data_layer()


@cl.password_auth_callback
async def _login(username: str, password: str) -> cl.User | None:
    """Log in against the bank's customers and staff (constant-time password check), throttled
    per account and per client address; each sign-in is recorded so that logout revokes it."""
    if not username or not password or len(username) > 64 or len(password) > 256:
        return None
    try:
        return await cl.make_async(_sign_in)(username.strip().lower(), password, security.client_address.get())
    except security.LoginRefused as exc:
        security.refuse_login(exc)
        return None


def _sign_in(username: str, password: str, address: str) -> cl.User | None:
    bank = get_bank()
    logins = bank.logins
    locked = logins.lockout(username, address)
    if locked is not None:
        log.warning("sign-in refused for %r from %s: %s locked", username, address, locked.kind)
        raise security.LoginRefused(429, (
            f"Too many failed sign-ins. Try again in {locked.minutes_left(bank.now())} minutes."))
    person = bank.authenticate(username, password)
    if person is None:
        locked = logins.record_failure(username, address)
        if locked is not None:
            raise security.LoginRefused(429, (
                f"Too many failed sign-ins. Try again in {locked.minutes_left(bank.now())} minutes."))
        return None
    logins.record_success(person.username)
    settings = bank.settings
    if (settings.production and person.username in DEMO_USERNAMES
            and password in {settings.demo_password, settings.staff_password, "demo1234", "staff1234"}):
        # A seeded demo account still has its published password: a bank must not run with it.
        log.warning("sign-in refused for demo account %r in production", person.username)
        raise security.LoginRefused(403, (
            "This is a demo account with its published password; it cannot sign in when "
            "SAHAYAK_ENV=production. An administrator must set a new password first "
            "(sahayak bank set-password)."))
    sid = logins.start(person.username, int(chainlit_config.project.user_session_timeout))
    return cl.User(identifier=person.username, display_name=person.full_name,
                   metadata={"role": person.role, "provider": "credentials", security.SID_KEY: sid})


@cl.on_logout
async def _logout(request: Request, response: Response) -> dict[str, bool]:
    """Logout revokes the sign-in on the server: the old cookie or Bearer token stops working."""
    await cl.make_async(security.revoke)(security.request_token(request.headers))
    return {"success": True}


@cl.on_app_startup
async def _startup() -> None:
    """Load the models before the first customer types (start-up, not first-message, latency)."""
    try:
        serving_process()  # torch threads for turns, before any model loads
        await cl.make_async(get_assistant().warm_up)()
        await cl.make_async(_warm_knowledge_base)()
        health.set_models_ready(True)
    except Exception as exc:  # noqa: BLE001 - the chat still starts; turns will report the problem
        log.error("warm-up failed: %s: %s", type(exc).__name__, exc)
        health.observe_error("warm_up")
        health.set_models_ready(False, f"warm-up failed: {type(exc).__name__}: {exc}")
    try:
        start_graph_import()
    except Exception as exc:  # noqa: BLE001 - the chat works without the graph; the console says so
        log.error("graph import not started: %s: %s", type(exc).__name__, exc)


def _warm_knowledge_base() -> None:
    # The first policy question should not pay for loading the index and the embedding model.
    get_knowledge_base()


@cl.on_app_shutdown
async def _shutdown() -> None:
    """Seal the provenance log (flush + checkpoint) and stop the graph importer."""
    await cl.make_async(stop_graph_import)()
    await cl.make_async(close_assistant)()


def _role(user: cl.User | None) -> str:
    if user is None:
        return "anonymous"
    # The bank is the authority on roles; the JWT's copy is only a hint.
    person = get_bank().get_customer(user.identifier)
    return person.role if person else "anonymous"


# --------------------------------------------------------------------------- chat lifecycle
@cl.set_starters
async def _starters(user: cl.User | None = None, language: str | None = None) -> list[cl.Starter]:
    if user is not None and (user.metadata or {}).get("role") == "staff":
        return []
    return [
        cl.Starter(label="Check my balance", message="What's my savings account balance?"),
        cl.Starter(label="Send money", message="Send 2500 rupees to Ravi"),
        cl.Starter(label="Block a card", message="Please block my debit card"),
        cl.Starter(label="Find a branch", message="Find a branch near 400001"),
        cl.Starter(label="NEFT timings", message="What are the NEFT timings?"),
        cl.Starter(label="Loan enquiry", message="Am I eligible for a personal loan?"),
    ]


@cl.on_chat_start
async def _chat_start() -> None:
    user = cl.user_session.get("user")
    cl.user_session.set("turns", {})
    if await cl.make_async(_role)(user) == "staff":
        await cl.Message(content=(
            f"Signed in as staff ({user.identifier}). The audit console lists sessions, the hand-off queue, "
            "low-confidence turns and each session's verified timeline: open [the audit console](/staff)."
        )).send()


@cl.on_chat_resume
async def _chat_resume(thread: dict[str, Any]) -> None:
    # The dialogue state lives in the bank's session store under the thread id, so the
    # conversation simply continues; only the feedback map is per-connection.
    cl.user_session.set("turns", {})


@cl.on_message
async def _on_message(message: cl.Message) -> None:
    # Show the customer what we keep: the masked text replaces what they typed. A code typed at the
    # OTP prompt is never kept in the chat history, in any form (issue 19).
    clean = redact(message.content or "")
    if await cl.make_async(_awaiting_otp)(cl.context.session.thread_id):
        flag_masked(message.content or "")
        clean = mask_codes(clean)
    raw = message.content
    if clean != message.content:
        message.content = clean
        await message.update()
        # The run step Chainlit wraps around this callback stores the input again when it ends.
        step = cl.context.current_step
        if step is not None and step.input == raw:
            step.input = clean
    await _process(raw, shown=clean)


async def _process(text: str, shown: str | None = None) -> None:
    """Run one customer turn through the pipeline and render the result."""
    user = cl.user_session.get("user")
    if await cl.make_async(_role)(user) != "customer":
        await cl.Message(content="The chat assistant is for customers. Staff use [the audit console](/staff).").send()
        return
    # Buttons of an earlier question must not answer a later one.
    for msg_id in list((cl.user_session.get("turns") or {}).keys()):
        await _remove_buttons(msg_id)
    envelope = MessageEnvelope(user_id=user.identifier, session_id=cl.context.session.thread_id,
                               channel="web", text=text)
    try:
        result = await cl.make_async(get_assistant().handle)(envelope)
    except SahayakError as exc:
        await cl.ErrorMessage(content=str(exc)).send()
        return
    except Exception as exc:  # noqa: BLE001 - never a traceback in the chat
        ref = uuid.uuid4().hex[:8]
        log.exception("turn failed (reference %s): %s", ref, type(exc).__name__)
        health.observe_error("turn")
        await cl.ErrorMessage(content=FRIENDLY_ERROR.format(ref=ref)).send()
        return
    health.observe_turn(result)
    await _render(result, shown if shown is not None else text)


async def _render(result: TurnResult, text: str) -> None:
    """Show one turn: its pipeline steps, then the reply with sources, demo SMS and buttons."""
    for name, body in step_outputs(result):
        async with cl.Step(name=name, type="tool", default_open=False) as step:
            step.output = body
    content, elements = _reply_content(result)
    actions: list[cl.Action] = []
    if result.state == "awaiting_confirmation":
        # Each button names the confirmation it answers; a stale one cannot confirm a later action.
        key = result.data.get("idempotency_key") or await cl.make_async(_pending_key)(result.session_id)
        actions = [cl.Action(name=CONFIRM, payload={"answer": "yes", "key": key}, label="Confirm", icon="check",
                             tooltip="Go ahead"),
                   cl.Action(name=CANCEL, payload={"answer": "no", "key": key}, label="Cancel", icon="x",
                             tooltip="Don't do it")]
    msg = cl.Message(content=content, elements=elements, actions=actions,
                     metadata={"turn_id": result.turn_id, "intent": result.intent})
    await msg.send()
    _remember_turn(msg, result, text, actions)


def _reply_content(result: TurnResult) -> tuple[str, list[cl.Element]]:
    """The reply's markdown and its elements: cited passages (side panel) and the demo SMS (inline)."""
    elements: list[cl.Element] = []
    # The reply repeats what the customer typed (a payee's name…): never live links or images.
    content = safe_markdown(result.reply)
    cites = citations_of(result)
    if cites:
        for c in cites:
            elements.append(cl.Text(name=c["doc_id"], content=c["text"], display="side"))
        content += "\n\nSources: " + ", ".join(dict.fromkeys(c["doc_id"] for c in cites))
    sms = result.data.get("sms")
    if result.state == "awaiting_otp" and sms:
        (sms_name,) = EPHEMERAL_ELEMENTS  # not persisted: it carries a one-time password
        elements.append(cl.Text(name=sms_name, content=f"Demo SMS (in a real bank this goes to your phone):\n\n{sms}",
                                display="inline"))
        content += "\n\nEnter the 6-digit code from the **Demo SMS** below."
    if scoring_of(result):
        content += "\n\n🔒 Scored on encrypted data."
    return content, elements


def _remember_turn(msg: cl.Message, result: TurnResult, text: str, actions: list[cl.Action]) -> None:
    """Keep what feedback and buttons need about this reply (per connection, text redacted)."""
    turns: dict[str, Any] = cl.user_session.get("turns") or {}
    info = {"turn_id": result.turn_id, "intent": result.intent, "text": redact(text),
            "actions": [(a.name, a.id) for a in actions]}
    turns[msg.id] = info
    # Chainlit attaches thumbs to the run step that wraps the callback (the message's parent).
    if msg.parent_id:
        turns[msg.parent_id] = {k: v for k, v in info.items() if k != "actions"}
    cl.user_session.set("turns", turns)


@cl.action_callback(CONFIRM)
async def _confirm(action: cl.Action) -> None:
    await _answer_action(action, "yes", "Yes")


@cl.action_callback(CANCEL)
async def _cancel(action: cl.Action) -> None:
    await _answer_action(action, "no", "No")


def _awaiting_otp(session_id: str) -> bool:
    """Whether this session's next message answers the OTP prompt."""
    session = get_assistant().sessions.load(session_id)
    return bool(session) and DialogueState.from_dict(session.state).context() == "otp"


def _pending_key(session_id: str) -> str | None:
    """The idempotency key of the confirmation this session is waiting for, else None."""
    session = get_assistant().sessions.load(session_id)
    frame = DialogueState.from_dict(session.state).frame if session else None
    if frame is None or frame.awaiting is None or frame.awaiting.kind != "confirmation":
        return None
    return frame.idempotency_key


async def _answer_action(action: cl.Action, text: str, shown: str) -> None:
    """A button press is the customer saying yes/no: same pipeline, shown as their message.

    Only the buttons of the confirmation now pending count: the action must carry its
    idempotency key (an old button, replayed or left on screen, is refused before any "yes")."""
    await _remove_buttons(action.forId)
    key = (action.payload or {}).get("key")
    pending = await cl.make_async(_pending_key)(cl.context.session.thread_id)
    if not key or not isinstance(key, str) or key != pending:
        log.warning("refused a stale or unknown confirmation button (session %s)", cl.context.session.thread_id)
        await cl.Message(content="That button belongs to an earlier request, so I did nothing. "
                                 "Please use the buttons of the latest message.").send()
        return
    user = cl.user_session.get("user")
    await cl.Message(content=shown, author=user.identifier if user else "You", type="user_message").send()
    await _process(text)


async def _remove_buttons(for_id: str | None) -> None:
    info = (cl.user_session.get("turns") or {}).get(for_id) if for_id else None
    for name, action_id in (info or {}).get("actions", []):
        await cl.Action(name=name, payload={}, id=action_id, forId=for_id).remove()
    if info:
        info["actions"] = []


@cl.on_feedback
async def _feedback(feedback: Any) -> None:
    """Thumbs up/down are stored in the bank for retraining (`sahayak intents export-feedback`)."""
    turns: dict[str, Any] = cl.user_session.get("turns") or {}
    info = turns.get(feedback.forId)
    user = cl.user_session.get("user")
    if info is None or user is None:
        return
    await cl.make_async(get_support().add_feedback)(
        cl.context.session.thread_id, info["turn_id"], 1 if feedback.value else -1, user_id=user.identifier,
        text=info.get("text", ""), predicted_intent=info["intent"],
        comment=redact(feedback.comment) if feedback.comment else None)

