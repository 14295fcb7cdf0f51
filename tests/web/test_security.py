"""Red-team regression tests for the web app (issue 19): each one performs the attack for real
against a running chat server on 127.0.0.1 — real HTTP, a real socket.io client with the
victim's cookie and a foreign Origin, the real bank and chat databases.

The server is the Chainlit chat alone (no graph server, no scoring service: no turn here needs
them), started the way ``sahayak run`` starts it (:mod:`app.ops.stack`)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
import json
import os
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import socketio
import sqlalchemy as sa

from app.bank.seed import seed
from app.core.net import free_port
from app.core.paths import REPO_ROOT
from app.core.settings import Settings
from app.ops.procs import tail, terminate
from app.ops.stack import _await_chat, _spawn_chat

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PASSWORD = "demo1234"
TURN_S = 90.0  # one turn on a busy 2-core machine


def _start(tmp: Path, env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    home = tmp / "home"
    settings = Settings(home=home, graph_enabled=False, scoring_port=free_port(),
                        models_home=Path(os.environ["SAHAYAK_MODELS_HOME"]).resolve())
    settings.ensure_dirs()
    seed(settings.db_url)
    port = free_port()
    proc, log_path = _spawn_chat(settings, "127.0.0.1", port, env_extra)
    child = _await_chat(proc, log_path, "127.0.0.1", port, timeout=900)
    return {"url": child.url, "port": port, "home": home, "settings": settings, "proc": proc, "log": log_path,
            "stop": child.stop_fn}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The chat server on a free loopback port with its own SAHAYAK_HOME and seeded bank."""
    dotfiles_before = (REPO_ROOT / ".files").exists()
    srv = _start(tmp_path_factory.mktemp("sec-web"))
    srv["dotfiles_before"] = dotfiles_before
    try:
        yield srv
    finally:
        srv["stop"]()


# --------------------------------------------------------------------------- helpers
def login(base: str, user: str, password: str = PASSWORD, address: str | None = None) -> httpx.Response:
    """A real sign-in through Chainlit's /login form (optionally as if from ``address`` via a proxy)."""
    headers = {"X-Forwarded-For": address} if address else {}
    return httpx.post(f"{base}/login", data={"username": user, "password": password}, headers=headers, timeout=60)


def token_of(resp: httpx.Response) -> str:
    assert resp.status_code == 200, resp.text
    return resp.cookies["access_token"]


def csrf_of(base: str, token: str) -> str:
    """What our own page gets from /sahayak/session.js: the sign-in's CSRF token."""
    js = httpx.get(f"{base}/sahayak/session.js", cookies={"access_token": token},
                   headers={"Sec-Fetch-Site": "same-origin"}, timeout=30).text
    m = re.search(r'var token = "([0-9a-f]{64})"', js)
    assert m, js
    return m.group(1)


class Chat:
    """A socket.io client speaking Chainlit's protocol, as the browser page does."""

    def __init__(self, base: str, token: str, origin: str | None, csrf: str | None) -> None:
        self.base, self.token, self.origin, self.csrf = base, token, origin, csrf
        self.session_id = str(uuid.uuid4())
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.thread_id: str | None = None
        for name in ("new_message", "update_message", "action", "remove_action", "task_start", "task_end",
                     "first_interaction"):
            self.sio.on(name, self._recorder(name))

    def _recorder(self, name: str):
        async def record(data: Any = None) -> None:
            self.events.append((name, data))
            if name == "first_interaction":
                self.thread_id = data.get("thread_id")
        return record

    async def connect(self) -> None:
        headers = {"Cookie": f"access_token={self.token}"}
        if self.origin:
            headers["Origin"] = self.origin
        env = {"sahayak_csrf": self.csrf} if self.csrf else {}
        await self.sio.connect(self.base, headers=headers, socketio_path="/ws/socket.io", transports=["websocket"],
                               auth={"sessionId": self.session_id, "clientType": "webapp", "threadId": "",
                                     "userEnv": json.dumps(env), "chatProfile": ""}, wait_timeout=30)
        await self.sio.emit("connection_successful")
        await asyncio.sleep(0.5)  # on_chat_start runs

    def replies(self) -> list[dict[str, Any]]:
        return [d for n, d in self.events if n == "new_message" and d.get("type") == "assistant_message"]

    def actions(self) -> list[dict[str, Any]]:
        return [d for n, d in self.events if n == "action"]

    async def _turn(self, start: Any, task: bool = True) -> dict[str, Any]:
        """Run ``start`` and wait for the turn it causes: a new reply, then (for a message) the task's end.

        An action is over when its HTTP call returns (Chainlit sends no task events for it)."""
        mark = len(self.events)
        await start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TURN_S
        while loop.time() < deadline:
            later = [n for n, d in self.events[mark:]
                     if n == "task_end" or (n == "new_message" and d.get("type") == "assistant_message")]
            if "new_message" in later and (not task or later[-1] == "task_end"):
                reply = self.replies()[-1]
                self.thread_id = self.thread_id or reply.get("threadId")
                return reply
            await asyncio.sleep(0.1)
        raise AssertionError(f"no reply within {TURN_S}s: {self.events[mark:]}")

    async def say(self, text: str) -> dict[str, Any]:
        """Send a customer message; returns the assistant's reply (a Chainlit step dict)."""
        msg = {"id": str(uuid.uuid4()), "threadId": self.thread_id or "", "name": "user", "type": "user_message",
               "output": text, "createdAt": datetime.now(timezone.utc).isoformat()}
        self.last_user_message = msg
        return await self._turn(lambda: self.sio.emit("client_message", {"message": msg, "fileReferences": None}))

    async def press(self, action: dict[str, Any]) -> dict[str, Any]:
        """Press an action button the way the page does (POST /project/action)."""
        async def post() -> None:
            async with httpx.AsyncClient(cookies={"access_token": self.token}, timeout=TURN_S) as http:
                r = await http.post(f"{self.base}/project/action", json={"sessionId": self.session_id, "action": action})
                assert r.status_code == 200, r.text
        return await self._turn(post, task=False)

    async def close(self) -> None:
        await self.sio.disconnect()


def run(coro: Any) -> Any:
    """Run ``coro`` on a loop of its own thread: the browser tests' Playwright loop may hold this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _bank(srv: dict[str, Any]):
    from app.bank.service import BankService

    return BankService(srv["settings"].db_url)


def _transfers(srv: dict[str, Any]) -> int:
    engine = sa.create_engine(srv["settings"].db_url)
    try:
        with engine.connect() as c:
            return c.execute(sa.text("SELECT count(*) FROM transfers")).scalar_one()
    finally:
        engine.dispose()


def _chat_db(srv: dict[str, Any], query: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(f"sqlite:///{srv['home'] / 'chainlit.db'}")
    try:
        with engine.connect() as c:
            return list(c.execute(sa.text(query), params))
    finally:
        engine.dispose()


def _await_thread(srv: dict[str, Any], thread_id: str) -> None:
    """Chainlit writes the thread row in a background task: wait (bounded) until it has its owner."""
    for _ in range(150):
        if _chat_db(srv, 'SELECT 1 FROM threads WHERE "id" = :t AND "userIdentifier" IS NOT NULL', t=thread_id):
            return
        time.sleep(0.2)
    raise AssertionError(f"thread {thread_id} was never stored")


# --------------------------------------------------------------------------- 1. CSWSH
def _say_once(server: dict[str, Any], user: str, text: str, address: str) -> str:
    """Sign ``user`` in (as if from ``address``), chat from the server's own origin, return the reply."""
    token = token_of(login(server["url"], user, address=address))

    async def go() -> str:
        chat = Chat(server["url"], token, server["url"], csrf_of(server["url"], token))
        await chat.connect()
        try:
            return (await chat.say(text))["output"]
        finally:
            await chat.close()
    return run(go())


def test_own_origin_with_csrf_token_can_chat(server) -> None:
    reply = _say_once(server, "asha", "What's my savings account balance?", "10.0.1.1")
    assert re.search(r"savings account X+\d{4}: ₹[\d,]+\.\d\d", reply), reply


@pytest.mark.parametrize("foreign", ["http://127.0.0.1:{other}", "http://localhost:{port}", "http://localhost:{other}",
                                     "http://evil.example"])
def test_foreign_origin_cannot_hijack_the_socket(server, foreign: str) -> None:
    """A page on another port or host name, with the victim's cookie (and even her CSRF token),
    tries to read her balance: the socket is refused and no turn runs."""
    token = token_of(login(server["url"], "asha", address="10.0.1.2"))
    origin = foreign.format(other=free_port(), port=server["port"])
    before = _chat_db(server, 'SELECT count(*) FROM steps')[0][0]

    async def go() -> None:
        chat = Chat(server["url"], token, origin, csrf_of(server["url"], token))
        with pytest.raises(socketio.exceptions.ConnectionError):
            await chat.connect()
            await chat.say("what's my balance")
    run(go())
    # Also over plain HTTP long-polling (what socket.io falls back to).
    r = httpx.get(f"{server['url']}/ws/socket.io/?EIO=4&transport=polling",
                  headers={"Origin": origin, "Cookie": f"access_token={token}"}, timeout=30)
    assert r.status_code in (400, 403), r.text
    assert _chat_db(server, 'SELECT count(*) FROM steps')[0][0] == before


def test_socket_needs_the_logins_csrf_token(server) -> None:
    """Same origin and a valid cookie, but no CSRF token (or another login's): refused."""
    token = token_of(login(server["url"], "asha", address="10.0.1.3"))
    other = token_of(login(server["url"], "asha", address="10.0.1.3"))

    async def go(csrf: str | None) -> None:
        chat = Chat(server["url"], token, server["url"], csrf)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await chat.connect()
    run(go(None))
    run(go(csrf_of(server["url"], other)))


def test_session_script_never_hands_the_token_cross_site(server) -> None:
    token = token_of(login(server["url"], "asha", address="10.0.1.4"))
    r = httpx.get(f"{server['url']}/sahayak/session.js", cookies={"access_token": token},
                  headers={"Sec-Fetch-Site": "same-site"}, timeout=30)
    assert "var token = null" in r.text
    assert r.headers["cross-origin-resource-policy"] == "same-origin"


def test_login_cookie_is_samesite_strict_and_secure_over_tls(server) -> None:
    r = login(server["url"], "asha", address="10.0.1.5")
    cookie = r.headers["set-cookie"]
    assert "samesite=strict" in cookie.lower() and "httponly" in cookie.lower(), cookie
    assert "secure" not in cookie.lower().replace("samesite", "")  # plain HTTP on loopback
    # Behind a TLS proxy (X-Forwarded-Proto from a trusted loopback proxy) the cookie is Secure.
    tls = httpx.post(f"{server['url']}/login", data={"username": "asha", "password": PASSWORD},
                     headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.0.1.5"}, timeout=60)
    assert re.search(r";\s*secure\b", tls.headers["set-cookie"].lower()), tls.headers["set-cookie"]


# --------------------------------------------------------------------------- 5. logout revokes
def test_logout_revokes_cookie_bearer_and_socket(server) -> None:
    base = server["url"]
    token = token_of(login(base, "ravi", address="10.0.5.1"))
    csrf = csrf_of(base, token)
    assert httpx.get(f"{base}/user", cookies={"access_token": token}, timeout=30).status_code == 200
    assert httpx.get(f"{base}/user", headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 200
    assert httpx.get(f"{base}/staff", cookies={"access_token": token}, timeout=30).status_code == 403  # a customer
    r = httpx.post(f"{base}/logout", cookies={"access_token": token}, timeout=30)
    assert r.status_code == 200
    assert httpx.get(f"{base}/user", cookies={"access_token": token}, timeout=30).status_code == 401
    assert httpx.get(f"{base}/user", headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 401
    assert httpx.post(f"{base}/auth/jwt", headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 401
    assert httpx.post(f"{base}/project/threads", cookies={"access_token": token}, timeout=30,
                      json={"pagination": {"first": 5}, "filter": {}}).status_code == 401
    # The staff console sees nobody logged in (it sends you to the login page).
    staff = httpx.get(f"{base}/staff", cookies={"access_token": token}, timeout=30)
    assert staff.status_code == 303 and staff.headers["location"] == "/login"

    async def go() -> None:
        chat = Chat(base, token, base, csrf)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await chat.connect()
    run(go())


# --------------------------------------------------------------------------- 6. throttling
def test_account_lockout_after_repeated_failures_is_recorded(server) -> None:
    base, settings = server["url"], server["settings"]
    codes = [login(base, "meera", "wrong-password", address=f"10.0.6.{i}").status_code
             for i in range(settings.login_max_failures)]
    assert codes[:-1] == [401] * (settings.login_max_failures - 1) and codes[-1] == 429, codes
    # Locked: even the right password is refused for a while, from any address.
    r = login(base, "meera", "staff1234", address="10.0.6.99")
    assert r.status_code == 429 and "Too many failed sign-ins" in r.json()["detail"], r.text
    rows = _bank(server).db.read
    with rows() as s:
        locks = s.execute(sa.text("SELECT kind, key, failures FROM login_lockouts WHERE key = 'meera'")).all()
    assert locks and locks[0][0] == "account" and locks[0][2] >= settings.login_max_failures
    assert "sign-in lockout: account 'meera'" in server["log"].read_text(errors="replace")
    # Another customer is not affected.
    assert login(base, "asha", address="10.0.6.100").status_code == 200


def test_address_lockout_stops_guessing_across_accounts(server) -> None:
    base, settings = server["url"], server["settings"]
    address = "10.0.7.7"
    codes = [login(base, f"nobody{i}", "guess", address=address).status_code
             for i in range(settings.login_address_max_failures)]
    assert codes[-1] == 429 and set(codes[:-1]) == {401}, codes
    assert login(base, "asha", PASSWORD, address=address).status_code == 429
    assert login(base, "asha", PASSWORD, address="10.0.7.8").status_code == 200
    with _bank(server).db.read() as s:
        assert s.execute(sa.text("SELECT count(*) FROM login_lockouts WHERE kind = 'address' AND key = :a"),
                         {"a": address}).scalar_one() == 1


# --------------------------------------------------------------------------- 7. stale Confirm button
def test_stale_confirm_button_cannot_confirm_a_later_transfer(server) -> None:
    base = server["url"]
    token = token_of(login(base, "asha", address="10.0.8.1"))
    transfers_before = _transfers(server)

    async def go() -> tuple[str, str, dict, dict]:
        chat = Chat(base, token, base, csrf_of(base, token))
        await chat.connect()
        try:
            a = await chat.say("Send 500 rupees to Ravi")
            a_confirm = next(x for x in chat.actions() if x["forId"] == a["id"] and x["name"] == "sahayak_confirm")
            b = await chat.say("Send 700 rupees to Ravi")  # a new transfer while A's buttons are still out
            assert "Please confirm" in b["output"] and "700" in b["output"], b["output"]
            refused = await chat.press(a_confirm)  # A's old button, replayed
            forged = await chat.press({**a_confirm, "payload": {"answer": "yes"}})  # no key at all
            return a["output"], b["output"], refused, forged
        finally:
            await chat.close()
    a_text, b_text, refused, forged = run(go())
    assert "Please confirm" in a_text, a_text
    assert "earlier request" in refused["output"] and "earlier request" in forged["output"], refused
    assert _transfers(server) == transfers_before  # neither A nor B was executed


def test_current_confirm_button_still_works(server) -> None:
    base = server["url"]
    token = token_of(login(base, "asha", address="10.0.8.2"))
    before = _transfers(server)

    async def go() -> str:
        chat = Chat(base, token, base, csrf_of(base, token))
        await chat.connect()
        try:
            a = await chat.say("Send 300 rupees to Ravi")
            confirm = next(x for x in chat.actions() if x["forId"] == a["id"] and x["name"] == "sahayak_confirm")
            return (await chat.press(confirm))["output"]
        finally:
            await chat.close()
    done = run(go())
    assert re.search(r"Reference TXN\w+", done), done
    assert _transfers(server) == before + 1


# --------------------------------------------------------------------------- 10. disabled features
def test_edit_message_is_refused_server_side(server) -> None:
    """Editing "hello" into "yes" used to confirm a pending transfer."""
    base = server["url"]
    token = token_of(login(base, "asha", address="10.0.10.1"))
    before = _transfers(server)

    async def go() -> str:
        chat = Chat(base, token, base, csrf_of(base, token))
        await chat.connect()
        try:
            await chat.say("hello")
            hello = chat.last_user_message
            pending = await chat.say("Send 400 rupees to Ravi")
            mark = len(chat.events)
            await chat.sio.emit("edit_message", {"message": {**hello, "output": "yes"}})
            await asyncio.sleep(5)  # an honoured edit starts a task at once and runs a whole turn
            assert not [n for n, _ in chat.events[mark:] if n in ("task_start", "new_message")], chat.events[mark:]
            return pending["output"]
        finally:
            await chat.close()
    assert "Please confirm" in run(go())
    assert _transfers(server) == before


def test_thread_sharing_is_refused(server) -> None:
    base = server["url"]
    token = token_of(login(base, "asha", address="10.0.10.2"))

    async def go() -> str:
        chat = Chat(base, token, base, csrf_of(base, token))
        await chat.connect()
        try:
            await chat.say("What are the NEFT timings?")
            return chat.thread_id
        finally:
            await chat.close()
    thread_id = run(go())
    assert thread_id
    _await_thread(server, thread_id)
    r = httpx.put(f"{base}/project/thread/share", cookies={"access_token": token},
                  json={"threadId": thread_id, "isShared": True}, timeout=30)
    assert r.status_code == 403, r.text
    meta = _chat_db(server, 'SELECT "metadata" FROM threads WHERE "id" = :t', t=thread_id)[0][0] or ""
    assert "is_shared" not in meta
    assert httpx.get(f"{base}/project/share/{thread_id}", timeout=30).status_code == 404


def test_file_upload_is_refused(server) -> None:
    token = token_of(login(server["url"], "asha", address="10.0.10.3"))
    r = httpx.post(f"{server['url']}/project/file", params={"session_id": str(uuid.uuid4())},
                   cookies={"access_token": token}, files={"file": ("card.txt", b"4111 1111 1111 1111", "text/plain")},
                   timeout=30)
    assert r.status_code == 403, r.text
    assert not list((server["home"] / "chainlit" / ".files").rglob("card.txt"))


# --------------------------------------------------------------------------- 11. feedback ownership
def test_feedback_only_on_your_own_messages(server) -> None:
    base = server["url"]
    asha = token_of(login(base, "asha", address="10.0.11.1"))
    ravi = token_of(login(base, "ravi", address="10.0.11.2"))

    async def go() -> tuple[str, str, str]:
        a_chat = Chat(base, asha, base, csrf_of(base, asha))
        r_chat = Chat(base, ravi, base, csrf_of(base, ravi))
        await a_chat.connect()
        await r_chat.connect()
        try:
            reply = await a_chat.say("Find a branch near 400001")
            return reply["id"], a_chat.thread_id, r_chat.session_id, a_chat.session_id
        finally:
            await a_chat.close()
            await r_chat.close()
    step_id, thread_id, ravi_session, asha_session = run(go())
    _await_thread(server, thread_id)
    fb = {"forId": step_id, "value": 0, "threadId": thread_id, "comment": "ravi was here"}
    r = httpx.put(f"{base}/feedback", cookies={"access_token": ravi}, json={"feedback": fb, "sessionId": ravi_session},
                  timeout=30)
    assert r.status_code == 404, r.text
    # Nor through the victim's chat session id.
    r = httpx.put(f"{base}/feedback", cookies={"access_token": ravi}, json={"feedback": fb, "sessionId": asha_session},
                  timeout=30)
    assert r.status_code == 404, r.text
    assert not _chat_db(server, 'SELECT 1 FROM feedbacks WHERE "forId" = :s', s=step_id)
    # The owner can rate her own message; the other customer cannot delete that rating.
    own = httpx.put(f"{base}/feedback", cookies={"access_token": asha}, timeout=30,
                    json={"feedback": {**fb, "value": 1, "comment": None}, "sessionId": asha_session})
    assert own.status_code == 200, own.text
    fid = own.json()["feedbackId"]
    assert httpx.request("DELETE", f"{base}/feedback", cookies={"access_token": ravi}, json={"feedbackId": fid},
                         timeout=30).status_code == 404
    assert _chat_db(server, 'SELECT "value" FROM feedbacks WHERE "id" = :f', f=fid) == [(1,)]


# --------------------------------------------------------------------------- 12. echoed markdown, CSP
def test_payee_name_is_not_rendered_as_a_link_or_image(server) -> None:
    base = server["url"]
    token = token_of(login(base, "asha", address="10.0.12.1"))

    async def go() -> list[str]:
        chat = Chat(base, token, base, csrf_of(base, token))
        await chat.connect()
        try:
            outs = [(await chat.say("Send 200 rupees to ![x](http://evil.example/x.png)"))["output"]]
            await chat.say("cancel")
            outs.append((await chat.say("Send 200 rupees to [click](http://evil.example)"))["output"])
            await chat.say("cancel")
            return outs
        finally:
            await chat.close()
    for out in run(go()):
        # No markdown image or link can form: its brackets are escaped, the URL is a code span.
        assert not re.search(r"(?<!\\)!?(?<!\\)\[[^\]]*(?<!\\)\]\(", out), out
        if "evil.example" in out:
            assert "`http://evil.example" in out, out
    stored = _chat_db(server, 'SELECT "output" FROM steps WHERE "type" = \'assistant_message\'')
    assert not any(re.search(r"(?<!\\)\]\(http://evil", o or "") for (o,) in stored)


@pytest.mark.parametrize("typed", ["![x](http://evil.example/x.png)", "[click](http://evil.example)",
                                   "<http://evil.example>", "www.evil.example", "[a]: http://evil.example",
                                   "`[x](y)`", "\\[x](http://evil.example)"])
def test_safe_markdown_leaves_no_link_or_image(typed: str) -> None:
    from markdown_it import MarkdownIt

    from app.web.render import safe_markdown

    # CommonMark links and images; remark-gfm (Chainlit) also links bare URLs, so those must be code.
    html = MarkdownIt("commonmark").render(f"Send ₹200 to {safe_markdown(typed)}?\n\n[a]\n")
    assert "<a " not in html and "<img" not in html, html
    for url in re.findall(r"(?:https?://|www\.)[^\s<>`]+", html):
        assert re.search(r"<code>[^<]*" + re.escape(url), html), html


def test_chat_pages_send_a_csp(server) -> None:
    r = httpx.get(f"{server['url']}/", timeout=30)
    csp = r.headers["content-security-policy"]
    assert "img-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-eval'" not in csp, csp
    assert "script-src 'self' 'sha256-" in csp, csp
    assert r.headers["x-frame-options"] == "DENY"
    assert "/sahayak/session.js" in r.text


# --------------------------------------------------------------------------- 13. small exposures
@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_api_docs_are_not_served(server, path: str) -> None:
    assert httpx.get(server["url"] + path, timeout=30).status_code == 404
    token = token_of(login(server["url"], "asha", address="10.0.13.1"))
    assert httpx.get(server["url"] + path, cookies={"access_token": token}, timeout=30).status_code == 404


def test_unknown_and_foreign_threads_both_answer_404(server) -> None:
    base = server["url"]
    asha = token_of(login(base, "asha", address="10.0.13.2"))
    ravi = token_of(login(base, "ravi", address="10.0.13.3"))

    async def go() -> str:
        chat = Chat(base, asha, base, csrf_of(base, asha))
        await chat.connect()
        try:
            await chat.say("Find a branch near 411001")
            return chat.thread_id
        finally:
            await chat.close()
    thread_id = run(go())
    _await_thread(server, thread_id)
    mine = httpx.get(f"{base}/project/thread/{thread_id}", cookies={"access_token": asha}, timeout=30)
    assert mine.status_code == 200
    unknown = httpx.get(f"{base}/project/thread/{uuid.uuid4()}", cookies={"access_token": ravi}, timeout=30)
    foreign = httpx.get(f"{base}/project/thread/{thread_id}", cookies={"access_token": ravi}, timeout=30)
    assert unknown.status_code == foreign.status_code == 404
    assert unknown.json() == foreign.json()
    assert "Traceback" not in unknown.text + foreign.text


# --------------------------------------------------------------------------- 14. nothing in the repository
def test_chainlit_writes_under_sahayak_home_only(server) -> None:
    root = server["home"] / "chainlit"
    assert (root / ".chainlit" / "config.toml").exists()
    assert (root / ".files").is_dir()  # Chainlit's upload folder, while it runs
    if not server["dotfiles_before"]:
        assert not (REPO_ROOT / ".files").exists()


# --------------------------------------------------------------------------- 6. production demo accounts
def test_production_refuses_demo_accounts_with_published_passwords(tmp_path: Path) -> None:
    srv = _start(tmp_path, {"SAHAYAK_ENV": "production"})
    try:
        r = login(srv["url"], "asha")
        assert r.status_code == 403 and "demo account" in r.json()["detail"], r.text
        assert "access_token" not in r.cookies
    except BaseException:
        print(tail(srv["log"], 40))
        raise
    finally:
        srv["stop"]()
        terminate(srv["proc"])


# --------------------------------------------------------------------------- 1. in a real browser
ATTACK_PAGE = """<!doctype html><meta charset="utf-8"><title>cat pictures</title><script>
// What the red team served from another origin: talk to the victim's chat with her cookies.
const ws = new WebSocket("ws://{target}/ws/socket.io/?EIO=4&transport=websocket");
window.verdict = "pending";
ws.onmessage = (e) => {{
  if (e.data.startsWith("0")) ws.send('40' + JSON.stringify({{sessionId: crypto.randomUUID(), clientType: "webapp",
                                        threadId: "", userEnv: "{{}}", chatProfile: ""}}));
  else if (e.data.startsWith("40")) window.verdict = "connected";
  else if (e.data.startsWith("44")) window.verdict = "refused";
}};
ws.onerror = () => {{ window.verdict = "refused"; }};
ws.onclose = () => {{ if (window.verdict === "pending") window.verdict = "refused"; }};
</script>"""


@pytest.fixture(scope="module")
def chromium(server, chromium_browser) -> Any:
    """The session's Chromium (one sync Playwright per thread; see tests/web/conftest.py)."""
    return chromium_browser


def _serve_attack_page(host: str, target: str) -> tuple[Any, str]:
    import http.server
    import threading

    body = ATTACK_PAGE.format(target=target).encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Page)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://{host}:{port}/"


@pytest.mark.browser
def test_browser_customer_chats_and_attack_page_is_refused(server, chromium) -> None:
    """The real page (CSP, boot script, CSRF token) still chats; a page on another port of the
    same host, opened in the same logged-in browser, cannot open the chat socket."""
    from playwright.sync_api import expect

    from tests.web.driver import ChatPage

    context = chromium.new_context(base_url=server["url"])
    context.set_default_timeout(90_000)
    errors: list[str] = []
    try:
        page = context.new_page()
        # Third-party stylesheets Chainlit links (a CDN's KaTeX CSS) are meant to be blocked; nothing
        # of the chat itself (scripts, socket, images, styles from our origin) may be.
        page.on("console", lambda m: errors.append(m.text)
                if "Content Security Policy" in m.text and "cdn.jsdelivr.net" not in m.text else None)
        chat = ChatPage(page)
        chat.login_ok("asha", PASSWORD)
        reply = chat.send("What's my savings account balance?")
        assert re.search(r"savings account X+\d{4}: ₹[\d,]+\.\d\d", reply), reply
        assert not errors, errors
        for host in ("127.0.0.1", "localhost"):
            attacker, url = _serve_attack_page(host, f"127.0.0.1:{server['port']}")
            try:
                evil = context.new_page()
                evil.goto(url)
                evil.wait_for_function("window.verdict !== 'pending'", timeout=30_000)
                assert evil.evaluate("window.verdict") == "refused", host
                evil.close()
            finally:
                attacker.shutdown()
        expect(page.locator("#chat-input")).to_be_visible()
    finally:
        context.close()


# --------------------------------------------------------------------------- health and metrics
def test_health_and_metrics_of_a_serving_worker_carry_no_customer_data(server) -> None:
    """Liveness and readiness answer; /metrics counts the turn by task and outcome, times its stages,
    and says nothing about who asked what."""
    reply = _say_once(server, "asha", "What's my savings account balance?", "10.0.1.9")
    assert httpx.get(f"{server['url']}/health/live", timeout=10).json() == {"status": "alive"}
    ready = httpx.get(f"{server['url']}/health/ready", timeout=10)
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    m = httpx.get(f"{server['url']}/metrics", timeout=10)
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    text = m.text
    turns = re.search(r'^sahayak_turns_total\{outcome="success",task="Check_Balance"\} (\d+)\.0$', text, re.M)
    assert turns and int(turns.group(1)) >= 1, text[:2000]
    assert re.search(r'^sahayak_turn_stage_seconds_count\{stage="understand"\} [1-9]', text, re.M)
    assert "sahayak_handoffs_total" in text and "sahayak_errors_total" in text
    assert "sahayak_component_restarts_total" in text or "sahayak_component_restarts" in text
    balance = re.search(r"₹[\d,]+\.\d\d", reply).group(0)
    for private in ("asha", "Asha", balance, "savings account X"):
        assert private not in text
