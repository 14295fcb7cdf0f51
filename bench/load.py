"""Load: N concurrent chat sessions through the UI's own entry point (``Assistant.handle``,
one shared Assistant, one worker thread per session — exactly how the Chainlit app calls it).

Reports turns/s and p50/p95 latency per turn type (non-RAG vs RAG) as JSON, for two runs:
*paced* (each session pauses ``--think`` seconds between messages, like a person; the targets
apply here) and *saturation* (no pauses: the throughput ceiling). Baseline in the same run: the
same turns from a single session with no concurrency. Bounded in count and time;
everything runs in-process on a fresh seeded SQLite bank (no network at all).

    python bench/load.py [--sessions 20] [--duration 60] [--max-turns 2000]
    python bench/load.py --startup          # also time `sahayak run` to a healthy chat: warm start

Targets (2 cores): 20 sessions → non-RAG p95 ≤ 300 ms, RAG p95 ≤ 800 ms, no errors.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# After the path and offline set-up above; settings are read later, in main().
from app.bank.seed import seed  # noqa: E402
from app.conversation.wiring import build_assistant, prepare_pipeline, serving_process  # noqa: E402
from app.core.net import free_port  # noqa: E402
from app.core.settings import get_settings, reset_settings  # noqa: E402
from app.core.types import MessageEnvelope  # noqa: E402
from app.ops.procs import terminate, wait_http_ok  # noqa: E402
from retrieval import get_knowledge_base  # noqa: E402

# One session's script: (kind, text). A transfer is started and cancelled so no money moves and
# no limit is exhausted however long the run; RAG turns are policy questions answered from the KB.
SCRIPT: list[tuple[str, str]] = [
    ("non_rag", "what's my balance?"),
    ("rag", "What are the NEFT timings?"),
    ("non_rag", "nearest branch to 400050"),
    ("rag", "What is the minimum balance for a savings account?"),
    ("non_rag", "send 500 to ravi"),
    ("non_rag", "no"),
    ("rag", "How do I dispute a card transaction?"),
    ("non_rag", "hello"),
]
TARGET_P95_MS = {"non_rag": 300.0, "rag": 800.0}


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


def summary(samples: dict[str, list[float]]) -> dict[str, dict]:
    return {k: {"n": len(v), "p50_ms": pct(v, 0.5), "p95_ms": pct(v, 0.95), "max_ms": pct(v, 1.0)}
            for k, v in samples.items()}


def run_sessions(assistant, n_sessions: int, duration_s: float, max_turns: int, users: list[str],
                 progress: bool = True, think_s: float = 0.0) -> dict:
    """Drive ``n_sessions`` concurrent sessions until ``duration_s`` or ``max_turns`` is reached.

    ``think_s`` is the mean pause between a reply and the session's next message (uniform in
    [0.5, 1.5] × think_s, seeded): 0 is a closed-loop saturation test; a few seconds is a person.
    """
    samples: dict[str, list[float]] = {"non_rag": [], "rag": []}
    errors: list[str] = []
    lock = threading.Lock()
    budget = itertools.count()
    deadline = time.monotonic() + duration_s
    bar = tqdm(total=max_turns, desc=f"{n_sessions} sessions", unit="turn", mininterval=5.0,
               disable=not progress or not sys.stderr.isatty(), leave=False)

    def session(i: int) -> None:
        sid = f"load-{n_sessions}-{i}-{time.time_ns()}"
        user = users[i % len(users)]
        rng = random.Random(i)
        if think_s:
            time.sleep(rng.uniform(0, think_s))  # sessions do not all start in the same instant
        for kind, text in itertools.cycle(SCRIPT):
            if think_s:
                time.sleep(rng.uniform(0.5, 1.5) * think_s)
            if time.monotonic() > deadline or next(budget) >= max_turns:
                return
            t0 = time.perf_counter()
            try:
                result = assistant.handle(MessageEnvelope(user_id=user, session_id=sid, channel="load", text=text))
                ms = (time.perf_counter() - t0) * 1000
                bad = result.outcome == "failed"
            except Exception as exc:  # noqa: BLE001 - counted, reported
                ms, bad = (time.perf_counter() - t0) * 1000, True
                result = None
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
            with lock:
                samples[kind].append(ms)
                if bad and result is not None:
                    errors.append(f"failed outcome for {text!r}: {result.reply[:80]}")
            bar.update(1)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n_sessions, thread_name_prefix="session") as pool:
        list(pool.map(session, range(n_sessions)))
    wall = time.perf_counter() - t0
    bar.close()
    turns = sum(len(v) for v in samples.values())
    return {"sessions": n_sessions, "think_s": think_s, "turns": turns, "wall_s": round(wall, 2),
            "turns_per_s": round(turns / wall, 2) if wall else None, "errors": len(errors),
            "error_examples": errors[:5], "per_type": summary(samples)}


def time_startup(timeout: float = 900.0) -> dict:
    """Seconds from `sahayak run` to a healthy chat (/health 200), reusing the model cache (warm start)."""
    home = Path(tempfile.mkdtemp(prefix="sahayak-startup-"))
    port = free_port()
    env = dict(os.environ, SAHAYAK_HOME=str(home), SAHAYAK_SCORING_PORT=str(free_port()),
               SAHAYAK_NEO4J_URI=f"bolt://127.0.0.1:{free_port()}")
    results = {}
    for label in ("first_start_fresh_home", "second_start_same_home"):
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "run", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        ok = wait_http_ok(f"http://127.0.0.1:{port}/health", timeout, proc)
        results[label] = {"seconds_to_healthy": round(time.perf_counter() - t0, 1), "ok": ok}
        terminate(proc, grace=60)
    results["models_home"] = os.environ.get("SAHAYAK_MODELS_HOME", str(home / "models"))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (upper bound)")
    parser.add_argument("--max-turns", type=int, default=2000, help="turns in the load phase (upper bound)")
    parser.add_argument("--think", type=float, default=4.0,
                        help="mean seconds between a reply and the next message in the paced run")
    parser.add_argument("--baseline-rounds", type=int, default=3, help="passes of the script in one session")
    parser.add_argument("--startup", action="store_true", help="also time `sahayak run` to a healthy chat")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="sahayak-load-"))
    os.environ["SAHAYAK_HOME"] = str(home)
    os.environ.setdefault("SAHAYAK_MODELS_HOME", str(ROOT / "var" / "models"))
    # Two demo customers carry all sessions: per-user rate limits would otherwise refuse the load itself.
    os.environ["SAHAYAK_RATE_LIMIT_MESSAGES_PER_MINUTE"] = "1000000"
    os.environ["SAHAYAK_RATE_LIMIT_SENSITIVE_PER_HOUR"] = "1000000"
    reset_settings()
    settings = get_settings()
    seed(settings.db_url)
    prepare_pipeline(settings)  # the getters only load what `sahayak prepare` builds
    serving_process(settings)  # then serve turns as the chat does
    assistant = build_assistant(settings)
    t0 = time.perf_counter()
    assistant.warm_up()
    get_knowledge_base(settings)
    warm_s = time.perf_counter() - t0
    users = ["asha", "ravi"]
    # Warm every code path once (first FAQ answer, first DB writes) before measuring.
    run_sessions(assistant, 1, 120, len(SCRIPT), users, progress=False)
    baseline = run_sessions(assistant, 1, 300, args.baseline_rounds * len(SCRIPT), users)
    paced = run_sessions(assistant, args.sessions, args.duration, args.max_turns, users, think_s=args.think)
    saturation = run_sessions(assistant, args.sessions, args.duration, args.max_turns, users, think_s=0.0)
    assistant.close()

    # A turn type with no samples fails its check (no vacuous pass).
    checks = {f"paced_{k}_p95_le_{int(v)}ms": paced["per_type"][k]["p95_ms"] is not None
              and paced["per_type"][k]["p95_ms"] <= v for k, v in TARGET_P95_MS.items()}
    checks["no_errors"] = paced["errors"] == 0 and saturation["errors"] == 0
    report = {
        "benchmark": "load",
        "entry_point": "Assistant.handle (same as the Chainlit app), one thread per session",
        "cpu_count": os.cpu_count(),
        "model_warm_up_s": round(warm_s, 1),
        "baseline_single_session": baseline,
        "load_paced": paced,
        "load_saturation_no_think_time": saturation,
        "targets_p95_ms": TARGET_P95_MS,
        "checks": checks,
        "all_targets_met": all(checks.values()),
    }
    if args.startup:
        report["startup"] = time_startup()
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
