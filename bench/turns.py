"""Turn latency through the whole pipeline (preprocess → classify → dialogue → handler →
session save → provenance enqueue), in-process, on a fresh seeded SQLite bank.

Baseline measured in the same run: classification alone for the same messages, so the
report shows what the dialogue, database and provenance add on top of the model.

    python bench/turns.py [--rounds 20] [--out bench/results/turns.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# After the path and offline set-up above; settings are read later, in main().
from app.bank.seed import seed  # noqa: E402
from app.conversation.wiring import build_assistant, prepare_pipeline, serving_process  # noqa: E402
from app.core.settings import get_settings  # noqa: E402
from app.core.types import MessageEnvelope  # noqa: E402

SCRIPT = [  # (turn type, text) — one short session, repeated with a new session id each round
    ("greeting", "hello"),
    ("balance", "what's my balance?"),
    ("transfer_start", "send 500 to ravi"),
    ("transfer_confirm", "yes"),
    ("branch", "nearest branch to 400050"),
    ("out_of_scope", "who won the cricket match yesterday"),
]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="sahayak-bench-"))
    os.environ["SAHAYAK_HOME"] = str(home)
    os.environ.setdefault("SAHAYAK_MODELS_HOME", str(ROOT / "var" / "models"))
    os.environ["SAHAYAK_RATE_LIMIT_MESSAGES_PER_MINUTE"] = "100000"
    os.environ["SAHAYAK_RATE_LIMIT_SENSITIVE_PER_HOUR"] = "100000"
    settings = get_settings()
    seed(settings.db_url)
    prepare_pipeline(settings)  # the getters only load what `sahayak prepare` builds
    serving_process(settings)  # then serve turns as the chat does
    assistant = build_assistant(settings)
    assistant.warm_up()
    per_type: dict[str, list[float]] = {t: [] for t, _ in SCRIPT}
    baseline: list[float] = []
    for r in range(args.rounds):
        for kind, text in SCRIPT:
            t0 = time.perf_counter()
            assistant.handle(MessageEnvelope(user_id="asha", session_id=f"bench-{r}", channel="bench", text=text))
            per_type[kind].append((time.perf_counter() - t0) * 1000)
            t1 = time.perf_counter()
            assistant.classifier.classify(text)
            baseline.append((time.perf_counter() - t1) * 1000)
    assistant.close()
    all_turns = [v for vs in per_type.values() for v in vs]
    report = {
        "benchmark": "turn_latency",
        "rounds": args.rounds,
        "turns": len(all_turns),
        "turn_ms_p50": pct(all_turns, 0.5),
        "turn_ms_p95": pct(all_turns, 0.95),
        "per_type": {k: {"p50": pct(v, 0.5), "p95": pct(v, 0.95)} for k, v in per_type.items()},
        "baseline_classify_only_ms_p50": pct(baseline, 0.5),
        "baseline_classify_only_ms_p95": pct(baseline, 0.95),
        "cpu_count": os.cpu_count(),
    }
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
