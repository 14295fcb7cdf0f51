"""The blind real-user evaluation (data/eval/realuser/): routing per category, conversations
handled right, unrequested action prompts and turn latency.

The set was written by helpers who never saw the training data or the tests (see its README).
The same script scores any checkout, so the baseline is today's code on the same set in the
same run:

    python bench/realuser.py [--out bench/results/realuser.json]
    python bench/realuser.py --root /tmp/old-checkout --label baseline   # an older commit

It talks to the pipeline through ``Assistant.handle`` only (the API every channel uses), with a
fresh seeded SQLite bank per conversation, and reads OTPs from the demo SMS outbox as a
customer reads their phone.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
EVAL_DIR = HERE / "data" / "eval" / "realuser"
# Tasks that change something: starting one that nobody asked for is an "unrequested action prompt".
ACTIONS = {"Fund_Transfer", "Own_Account_Transfer", "Card_Block", "PIN_Reset", "Card_Bill_Payment",
           "Cheque_Book_Request", "Dispute", "Update_Contact", "Close_Account", "Open_Account"}
RAVI_PAYEES = {"Asha Menon", "Landlord Deshpande", "Sunita Kumar"}
OTP_RE = re.compile(r"\b(\d{6})\b")


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


def _start_scoring(root: Path) -> subprocess.Popen | None:
    """The encrypted scoring service on a free loopback port (loan turns score for real), or None."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen([sys.executable, "-m", "privacy.service", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    atexit.register(proc.terminate)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/v1/health", timeout=2):
                os.environ["SAHAYAK_SCORING_URL"] = url
                return proc
        except OSError:
            time.sleep(0.3)
    print("warning: the scoring service did not start; loan turns will report it unavailable", file=sys.stderr)
    return None


class Harness:
    """One process, one pipeline; a fresh bank per conversation."""

    def __init__(self, root: Path) -> None:
        sys.path.insert(0, str(root))
        self.home = Path(tempfile.mkdtemp(prefix="sahayak-realuser-"))
        os.environ["SAHAYAK_HOME"] = str(self.home)
        os.environ.setdefault("SAHAYAK_MODELS_HOME", str(HERE / "var" / "models"))
        os.environ["SAHAYAK_RATE_LIMIT_MESSAGES_PER_MINUTE"] = "100000"
        os.environ["SAHAYAK_RATE_LIMIT_SENSITIVE_PER_HOUR"] = "100000"
        os.environ["SAHAYAK_SCORING_TIMEOUT_S"] = os.environ.get("SAHAYAK_SCORING_TIMEOUT_S", "5")
        os.chdir(root)  # old checkouts find data/ relative to the working folder
        self.scoring = _start_scoring(root)  # the product runs with its encrypted scoring service
        try:  # the layout after the architecture step
            from app.conversation.wiring import build_assistant
            from app.core.settings import get_settings
            from app.core.types import MessageEnvelope
        except ImportError:  # older checkouts
            from app.assistant import Assistant as build_assistant  # type: ignore[no-redef]
            from app.settings import get_settings  # type: ignore[no-redef]
            from app.types import MessageEnvelope  # type: ignore[no-redef]
        from app.bank import seed as seed_module

        self.envelope = MessageEnvelope
        self.settings = get_settings()
        self.seed = seed_module
        seed_module.seed(self.settings.db_url)
        self.build = build_assistant
        try:  # since the getters only load, a checkout prepares its models first; older ones trained on first use
            from app.conversation.wiring import prepare_pipeline, serving_process
        except ImportError:
            pass
        else:
            prepare_pipeline(self.settings)
            serving_process(self.settings)  # serve turns as the chat does
        self.assistant = build_assistant(self.settings)
        self.assistant.warm_up()
        self.bank = self.assistant.bank

    def reset_bank(self) -> None:
        self.seed.reseed(self.settings.db_url)
        # In-process limiters and lockouts belong to the old bank's customers.
        self.assistant.close()
        self.assistant = self.build(self.settings)
        self.bank = self.assistant.bank

    def turn(self, user: str, session: str, text: str) -> tuple[Any, float]:
        t0 = time.perf_counter()
        result = self.assistant.handle(self.envelope(user_id=user, session_id=session, channel="bench", text=text))
        return result, (time.perf_counter() - t0) * 1000

    def last_otp(self) -> str | None:
        path = self.settings.outbox_dir / "sms.log"
        if not path.exists():
            return None
        lines = path.read_text(encoding="utf-8").strip().splitlines()
        for line in reversed(lines):
            m = OTP_RE.search(line.split(":", 3)[-1])
            if m:
                return m.group(1)
        return None


def task_of(result: Any) -> str:
    """What the turn was about: the new ``task`` field, else the handler, else the raw intent."""
    task = getattr(result, "task", None)
    if task:
        return task
    if result.state == "awaiting_clarification":
        return "clarify"
    return result.handler or result.intent


def act_of(result: Any) -> str | None:
    return getattr(result, "dialogue_act", None)


def norm(text: str) -> str:
    return re.sub(r"[,₹]", "", text).lower()


def run_messages(h: Harness, items: list[dict[str, Any]]) -> dict[str, Any]:
    per_cat: dict[str, Counter] = defaultdict(Counter)
    per_task: dict[str, Counter] = defaultdict(Counter)
    lat: list[float] = []
    failures: list[dict[str, Any]] = []
    unrequested: list[dict[str, Any]] = []
    amount_ok = amount_n = 0
    for i, item in enumerate(items):
        user = "ravi" if item.get("payee") in RAVI_PAYEES else "asha"
        result, ms = h.turn(user, f"msg-{i}", item["text"])
        lat.append(ms)
        routed = task_of(result)
        ok_set = {item["task"], *(item.get("also_ok") or [])}
        ok = routed in ok_set
        cat = item["category"]
        per_cat[cat]["n"] += 1
        per_cat[cat]["ok"] += ok
        per_task[item["task"]]["n"] += 1
        per_task[item["task"]]["ok"] += ok
        if result.state == "awaiting_clarification":
            per_cat[cat]["clarify"] += 1
        if routed in ACTIONS and routed not in ok_set:
            unrequested.append({"id": item["id"], "text": item["text"], "expected": item["task"], "started": routed})
        if not ok:
            failures.append({"id": item["id"], "category": cat, "text": item["text"], "expected": item["task"],
                             "got": routed, "reply": result.reply[:160]})
        if item.get("amount") is not None and item["task"] in ACTIONS | {"Loan_Enquiry"}:
            amount_n += 1
            got = (result.entities or {}).get("amount")
            value = got.get("value") if isinstance(got, dict) else None
            amount_ok += value is not None and abs(float(value) - float(item["amount"])) < 0.5
    n = sum(c["n"] for c in per_cat.values())
    return {
        "messages": n,
        "routing_accuracy": round(sum(c["ok"] for c in per_cat.values()) / n, 4),
        "per_category": {k: {"n": c["n"], "accuracy": round(c["ok"] / c["n"], 4), "clarified": c["clarify"]}
                         for k, c in sorted(per_cat.items())},
        "per_task": {k: {"n": c["n"], "accuracy": round(c["ok"] / c["n"], 4)} for k, c in sorted(per_task.items())},
        "unrequested_action_prompts": len(unrequested),
        "unrequested_examples": unrequested[:40],
        "amount_extraction": {"n": amount_n, "accuracy": round(amount_ok / amount_n, 4) if amount_n else None},
        "latency_ms": {"p50": pct(lat, 0.5), "p95": pct(lat, 0.95)},
        "failures": failures,
    }


def _completed_transfers(h: Harness, user: str, since: datetime) -> list[dict[str, Any]]:
    customer = h.bank.get_customer(user)
    rows = h.bank.recent_transfers(customer.id, limit=50)
    out = []
    for t in reversed(rows):
        created = t.created_at if t.created_at.tzinfo else t.created_at.replace(tzinfo=timezone.utc)
        if created >= since and t.status == "completed":
            # Own-account moves and card-bill payments are checked as their tasks, not as payee transfers.
            to = f"own {t.beneficiary}" if getattr(t, "own", False) else t.beneficiary
            out.append({"to": to, "amount": float(t.amount)})
    return out


def _check_outcome(expected: dict[str, Any], transfers: list[dict[str, Any]], done_actions: list[str],
                   handoff: bool) -> list[str]:
    problems = []
    want = expected.get("completed") or []
    want_transfers = [(w.get("to"), float(w["amount"])) for w in want if w["task"] == "Fund_Transfer"]
    got_transfers = [(t["to"], t["amount"]) for t in transfers if t["to"] not in {"own", None}]
    own_like = {"Own_Account_Transfer", "Card_Bill_Payment"}
    if sorted(want_transfers) != sorted((to, a) for to, a in got_transfers if not str(to).startswith("own ")):
        problems.append(f"transfers: expected {want_transfers}, got {got_transfers}")
    want_other = Counter(w["task"] for w in want if w["task"] != "Fund_Transfer")
    got_other = Counter(a for a in done_actions if a != "Fund_Transfer")
    # Extra read-only answers (a balance in passing) are fine; an extra action or a missing task is not.
    for task in set(want_other) | (set(got_other) & ACTIONS):
        if task in own_like and want_other[task] == got_other[task]:
            continue
        if want_other[task] != got_other[task]:
            problems.append(f"{task}: expected {want_other[task]} done, got {got_other[task]}")
    if bool(expected.get("handoff")) != handoff:
        problems.append(f"handoff: expected {bool(expected.get('handoff'))}, got {handoff}")
    return problems


def run_conversations(h: Harness, convs: list[dict[str, Any]]) -> dict[str, Any]:
    per_cat: dict[str, Counter] = defaultdict(Counter)
    failures: list[dict[str, Any]] = []
    lat_faq: list[float] = []
    lat_other: list[float] = []
    turns_ok = turns_n = 0
    unrequested = 0
    for conv in convs:
        h.reset_bank()
        user = conv["user"]
        session = f"conv-{conv['id']}"
        since = datetime.now(timezone.utc).replace(microsecond=0)
        problems: list[str] = []
        done_actions: list[str] = []
        handoff = False
        for n, turn in enumerate(conv["turns"], 1):
            text = turn["say"]
            if "<OTP" in text:
                code = h.last_otp() or "000000"
                text = text.replace("<OTP_SPACED>", " ".join(code)).replace("<OTP>", code)
            text = text.replace("<WRONG_OTP>", "000000" if (h.last_otp() or "") != "000000" else "111111")
            result, ms = h.turn(user, session, text)
            (lat_faq if result.handler == "FAQ" else lat_other).append(ms)
            exp = turn.get("expect") or {}
            got_task = task_of(result)
            turn_problems = []
            if exp.get("task") and got_task != exp["task"]:
                turn_problems.append(f"task {got_task} != {exp['task']}")
            if exp.get("state") and result.state != exp["state"]:
                turn_problems.append(f"state {result.state} != {exp['state']}")
            if exp.get("act") and act_of(result) is not None and act_of(result) != exp["act"]:
                turn_problems.append(f"act {act_of(result)} != {exp['act']}")
            reply = norm(result.reply)
            for s in exp.get("reply_mentions") or []:
                if norm(str(s)) not in reply:
                    turn_problems.append(f"reply lacks {s!r}")
            for s in exp.get("reply_not_mentions") or []:
                if norm(str(s)) in reply:
                    turn_problems.append(f"reply has {s!r}")
            if got_task in ACTIONS and exp.get("task") not in ACTIONS and result.state in (
                    "awaiting_confirmation", "awaiting_slot", "awaiting_otp"):
                unrequested += 1
            if result.state == "done" and result.outcome == "success" and result.handler:
                done_actions.append(result.handler)  # read-only tasks count too when the outcome names them
            if result.outcome == "handoff":
                handoff = True
            turns_n += 1
            turns_ok += not turn_problems
            if turn_problems:
                problems.append(f"turn {n} {turn['say']!r}: " + "; ".join(turn_problems) + f" | reply: {result.reply[:140]!r}")
        problems += _check_outcome(conv.get("outcome") or {}, _completed_transfers(h, user, since), done_actions, handoff)
        ok = not problems
        per_cat[conv["category"]]["n"] += 1
        per_cat[conv["category"]]["ok"] += ok
        if not ok:
            failures.append({"id": conv["id"], "category": conv["category"], "note": conv.get("note"), "problems": problems})
    n = sum(c["n"] for c in per_cat.values())
    return {
        "conversations": n,
        "pass_rate": round(sum(c["ok"] for c in per_cat.values()) / n, 4),
        "turn_pass_rate": round(turns_ok / turns_n, 4),
        "per_category": {k: {"n": c["n"], "pass_rate": round(c["ok"] / c["n"], 4)} for k, c in sorted(per_cat.items())},
        "unrequested_action_prompts": unrequested,
        "latency_ms": {"non_faq_p50": pct(lat_other, 0.5), "non_faq_p95": pct(lat_other, 0.95),
                       "faq_p50": pct(lat_faq, 0.5), "faq_p95": pct(lat_faq, 0.95)},
        "failures": failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=HERE, help="checkout to score (default: this one)")
    parser.add_argument("--label", default="current")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--messages-only", action="store_true")
    parser.add_argument("--conversations-only", action="store_true")
    parser.add_argument("--limit", type=int, default=None, help="first N items of each file (smoke runs)")
    args = parser.parse_args()
    args.out = args.out.resolve() if args.out else None  # before the chdir into --root

    import yaml

    messages = yaml.safe_load((EVAL_DIR / "messages.yaml").read_text(encoding="utf-8"))[: args.limit]
    convs = yaml.safe_load((EVAL_DIR / "conversations.yaml").read_text(encoding="utf-8"))[: args.limit]
    t0 = time.time()
    h = Harness(args.root.resolve())
    report: dict[str, Any] = {"benchmark": "realuser", "label": args.label, "root": str(args.root),
                              "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "load_average": os.getloadavg()}
    if not args.conversations_only:
        report["single"] = run_messages(h, messages)
    if not args.messages_only:
        report["multi"] = run_conversations(h, convs)
    report["seconds"] = round(time.time() - t0, 1)
    h.assistant.close()
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    summary = {k: report[k] for k in ("label", "seconds")}
    if "single" in report:
        summary["routing"] = report["single"]["routing_accuracy"]
        summary["per_category"] = {k: v["accuracy"] for k, v in report["single"]["per_category"].items()}
        summary["unrequested_single"] = report["single"]["unrequested_action_prompts"]
    if "multi" in report:
        summary["conversations"] = report["multi"]["pass_rate"]
        summary["conv_per_category"] = {k: v["pass_rate"] for k, v in report["multi"]["per_category"].items()}
        summary["unrequested_multi"] = report["multi"]["unrequested_action_prompts"]
        summary["latency"] = report["multi"]["latency_ms"]
    print(json.dumps(summary, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
