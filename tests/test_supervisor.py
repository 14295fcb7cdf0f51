"""`sahayak run`'s supervision, for real: the graph server and the scoring service run as child
processes on loopback; each is killed with SIGKILL and must come back on its old port, while the
conversation pipeline (a long-lived `sahayak turn --jsonl` process, as the chat holds it) keeps
answering — a loan enquiry says scoring is unavailable meanwhile, and scores again afterwards.
A frozen graph (SIGSTOP) gives the staff console a clear "graph unavailable", not a hang."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.bank.seed import seed
from app.core.net import free_port, port_open
from app.core.paths import restarts_path
from app.core.settings import Settings, reset_settings
from app.ops.stack import Backoff, Stack, start_stack
from privacy.service_process import wait_healthy
from provenance.graph_server import reachable
from tests.conftest import ROOT

pytestmark = [pytest.mark.graph, pytest.mark.timeout(900)]

LOAN = ["am I eligible for a car loan?", "6 lakh", "3 years", "80000", "none"]


def _until(stack: Stack, name: str, restarts: int, within_s: float = 240.0) -> None:
    """Run supervision passes (as `sahayak run` does every second) until ``name`` has been
    restarted ``restarts`` times; fails the test after ``within_s``."""
    deadline = time.monotonic() + within_s
    while stack.restarts().get(name, 0) < restarts:
        assert not stack.supervise(), "the stack gave up on a component"
        assert time.monotonic() < deadline, f"{name} was not restarted; log: {stack.log_path.read_text()}"
        time.sleep(0.5)


def _child(stack: Stack, name: str):
    return next(c for c in stack.children if c.name == name)


@pytest.fixture()
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Graph server and scoring service of one stack (no chat), on free loopback ports."""
    settings = Settings(home=tmp_path, scoring_port=free_port(), neo4j_uri=f"bolt://127.0.0.1:{free_port()}",
                        models_home=Path(os.environ["SAHAYAK_MODELS_HOME"]))
    settings.ensure_dirs()
    seed(settings.db_url)
    for key, value in {"SAHAYAK_HOME": str(tmp_path), "SAHAYAK_SCORING_PORT": str(settings.scoring_port),
                       "SAHAYAK_NEO4J_URI": settings.neo4j_uri}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SAHAYAK_DATABASE_URL", raising=False)
    monkeypatch.delenv("SAHAYAK_SCORING_URL", raising=False)
    reset_settings()
    lines: list[str] = []
    stack = start_stack(settings=settings, report=lines.append, chat=False)
    stack.backoff = Backoff(base_s=0.5, max_s=2.0)
    try:
        yield stack, lines
    finally:
        for c in stack.children:  # a test that failed while the graph was frozen must not leave it so
            if c.pid:
                try:
                    os.kill(c.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        stack.stop()
        reset_settings()


class Conversation:
    """A long-lived `sahayak turn --jsonl` process: one conversation pipeline, like the chat's."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "turn", "--jsonl"], cwd=ROOT, env=env,
                                     text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def say(self, session: str, text: str) -> dict:
        self.proc.stdin.write(json.dumps({"user": "asha", "session": session, "text": text}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the conversation process died: {self.proc.stderr.read()}"
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=120)


def test_killed_scoring_service_is_restarted_and_the_conversation_keeps_answering(services):
    stack, lines = services
    talk = Conversation({**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for text in LOAN[:-1]:
            assert talk.say("before", text)["state"] == "awaiting_slot"
        old = _child(stack, "scoring service")
        os.kill(old.pid, signal.SIGKILL)
        old.proc.wait(timeout=30)
        # Scoring is down: the last answer says so, in the existing friendly words.
        down = talk.say("before", LOAN[-1])
        assert down["handler"] == "Loan_Enquiry" and "scoring service isn't responding" in down["reply"]
        # Everything else still works meanwhile.
        assert talk.say("other", "what's my balance")["task"] == "Check_Balance"

        _until(stack, "scoring service", 1)
        new = _child(stack, "scoring service")
        assert new.pid != old.pid and new.alive() and wait_healthy(new.url, timeout=5)
        assert new.url == old.url  # same port: the chat's settings still point at it
        # The same process scores again (its client registers afresh with the new service).
        for text in LOAN[:-1]:
            talk.say("after", text)
        assert "8.95" in talk.say("after", LOAN[-1])["reply"]
    finally:
        talk.close()
    log = stack.log_path.read_text(encoding="utf-8")
    assert "scoring service stopped unexpectedly (exit code -9)" in log and "scoring service restarted" in log
    assert any("scoring service restarted" in m for m in lines)
    # The count the chat's /metrics exports (sahayak_component_restarts_total).
    counts = json.loads(restarts_path(stack.settings.home).read_text(encoding="utf-8"))
    assert counts["scoring service"] == stack.restarts()["scoring service"] >= 1


def test_killed_graph_server_is_restarted_on_its_port(services):
    stack, _ = services
    s = stack.settings
    old = _child(stack, "graph server")
    os.kill(old.pid, signal.SIGKILL)
    old.proc.wait(timeout=30)
    assert not reachable(s.neo4j_uri, s.neo4j_user, s.graph_secret, timeout=2.0)
    _until(stack, "graph server", 1)
    new = _child(stack, "graph server")
    assert new.pid != old.pid and new.url == old.url
    assert reachable(s.neo4j_uri, s.neo4j_user, s.graph_secret)
    assert "graph server restarted" in stack.log_path.read_text(encoding="utf-8")


def _process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc)."""
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return tree


def _freeze(pid: int, within_s: float = 5.0) -> list[int]:
    """SIGSTOP the graph server and anything it started, and return once the kernel reports all of
    them stopped (state T): a query sent before the stop lands would still be answered."""
    tree = _process_tree(pid)
    for p in tree:
        os.kill(p, signal.SIGSTOP)
    deadline = time.monotonic() + within_s
    while not all(Path(f"/proc/{p}/stat").read_text().split(") ", 1)[1][0] == "T" for p in tree):
        assert time.monotonic() < deadline, "the graph server did not stop"
        time.sleep(0.02)
    return tree


def test_frozen_graph_gives_the_staff_console_a_clear_graph_unavailable(services, monkeypatch):
    from app.web.audit import overview
    from provenance.graph import GraphUnavailable
    from provenance.queries import Audit

    stack, _ = services
    monkeypatch.setenv("SAHAYAK_GRAPH_QUERY_TIMEOUT_S", "2")
    reset_settings()
    graph = _child(stack, "graph server")
    with Audit() as audit:
        audit.inferences(limit=1)  # a pooled connection, as the console has after its first page
        frozen = _freeze(graph.pid)
        try:
            with pytest.raises(GraphUnavailable, match="graph unavailable: .* did not answer within 2s"):
                audit.inferences(limit=1)
            # A fresh console request (new driver, new connection) ends the same way, and the rest
            # of the console (the hand-off queue, from the bank database) is still served.
            page = overview()
            assert any(p.startswith("audit graph: graph unavailable") for p in page["problems"]), page["problems"]
            assert isinstance(page["handoffs"], list)
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
    # Thawed, the graph answers again and the stack never restarted it (it was not dead).
    with Audit() as audit:
        assert isinstance(audit.inferences(limit=1), list)
    assert stack.supervise() == [] and stack.restarts().get("graph server", 0) == 0


def test_sahayak_run_restarts_a_killed_child_and_the_chat_stays_up(tmp_path: Path):
    """The real `sahayak run` (chat included): SIGKILL its scoring service; the command keeps
    running, restarts the service, and the chat answers /health throughout."""
    import httpx

    port, scoring = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAHAYAK_")}
    env.update(SAHAYAK_HOME=str(tmp_path), SAHAYAK_MODELS_HOME=os.environ["SAHAYAK_MODELS_HOME"],
               SAHAYAK_SCORING_PORT=str(scoring), SAHAYAK_NEO4J_URI=f"bolt://127.0.0.1:{free_port()}",
               PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", COLUMNS="200")
    out = tmp_path / "run.out"
    with open(out, "w") as sink:
        run = subprocess.Popen([sys.executable, "-m", "app.cli", "run", "--port", str(port)], cwd=tmp_path,
                               env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    chat = f"http://127.0.0.1:{port}/health"

    def wait_for(text: str, within_s: float) -> str:
        deadline = time.monotonic() + within_s
        while text not in (seen := out.read_text(errors="replace")):
            assert run.poll() is None, f"sahayak run exited ({run.returncode}):\n{seen[-3000:]}"
            assert time.monotonic() < deadline, f"no {text!r} from sahayak run:\n{seen[-3000:]}"
            time.sleep(0.5)
        return seen

    try:
        seen = wait_for("Sahayak is running", 900)
        pid = int(seen.split("scoring service healthy at", 1)[1].split("(pid ", 1)[1].split(",", 1)[0])
        os.kill(pid, signal.SIGKILL)
        assert httpx.get(chat, timeout=10).status_code == 200  # the chat does not go down with it
        wait_for("scoring service restarted", 240)
        assert run.poll() is None
        assert httpx.get(chat, timeout=10).status_code == 200
        assert wait_healthy(f"http://127.0.0.1:{scoring}", timeout=10)
        assert "scoring service restarted" in (tmp_path / "logs" / "stack.log").read_text(encoding="utf-8")
    finally:
        if run.poll() is None:
            # Twice, as an impatient operator does: the second must not cut the shutdown short.
            run.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            run.send_signal(signal.SIGTERM)
            try:
                run.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait(timeout=30)
    assert run.returncode == 0, out.read_text(errors="replace")[-3000:]
    assert "all services stopped" in out.read_text(errors="replace")
    deadline = time.monotonic() + 20
    while (port_open("127.0.0.1", port) or port_open("127.0.0.1", scoring)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not port_open("127.0.0.1", port) and not port_open("127.0.0.1", scoring)  # no orphaned child
