"""Turn latency of this checkout against an older commit, measured in the same run.

Checks a commit (and, with ``--head``, a second one) out into a temporary git worktree, then runs each checkout's own
``bench/turns.py`` in turn (old, new, old, new …, so load drifts hit both alike), each with its own
model cache, and prints one JSON object: per-run p50/p95, the medians per side and new/old ratios.

    python bench/turns_compare.py --base 061f34c --repeats 2 --rounds 20 --out bench/results/turns-compare.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_turns(checkout: Path, models_home: Path, rounds: int) -> dict:
    """One ``bench/turns.py`` run of ``checkout`` (its own code, its own model cache)."""
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    env = dict(os.environ, SAHAYAK_MODELS_HOME=str(models_home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(checkout))
    subprocess.run([sys.executable, "bench/turns.py", "--rounds", str(rounds), "--out", str(out)],
                   cwd=checkout, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="061f34c", help="the older commit to compare against")
    parser.add_argument("--head", default=None, help="the newer commit (default: this working tree)")
    parser.add_argument("--repeats", type=int, default=2, help="old/new pairs")
    parser.add_argument("--rounds", type=int, default=20, help="rounds of the turn script per run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sahayak-turns-compare-"))
    old = work / "old"
    subprocess.run(["git", "worktree", "add", "--detach", str(old), args.base], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    new = ROOT
    if args.head:  # a second worktree for the newer commit too
        new = work / "new"
        subprocess.run(["git", "worktree", "add", "--detach", str(new), args.head], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_commit = subprocess.run(["git", "rev-parse", args.base], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", args.head or "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    try:
        # One warm-up run each trains or loads that side's models, so training never lands in a measurement.
        run_turns(old, work / "models-old", 2)
        run_turns(new, work / "models-new", 2)
        for _ in range(args.repeats):
            runs["old"].append(run_turns(old, work / "models-old", args.rounds))
            runs["new"].append(run_turns(new, work / "models-new", args.rounds))
    finally:
        for tree in {old, new} - {ROOT}:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)

    def med(side: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[side]), 2)

    types = list(runs["new"][0]["per_type"])
    report = {
        "benchmark": "turn_latency_old_vs_new",
        "base_commit": base_commit, "head_commit": head, "rounds": args.rounds, "repeats": args.repeats,
        "old": {"turn_ms_p50": med("old", "turn_ms_p50"), "turn_ms_p95": med("old", "turn_ms_p95"),
                "runs": [{"p50": r["turn_ms_p50"], "p95": r["turn_ms_p95"]} for r in runs["old"]]},
        "new": {"turn_ms_p50": med("new", "turn_ms_p50"), "turn_ms_p95": med("new", "turn_ms_p95"),
                "runs": [{"p50": r["turn_ms_p50"], "p95": r["turn_ms_p95"]} for r in runs["new"]]},
        "per_type_p50": {t: {side: round(statistics.median(r["per_type"][t]["p50"] for r in runs[side]), 2)
                             for side in ("old", "new")} for t in types},
    }
    report["ratio_p50"] = round(report["new"]["turn_ms_p50"] / report["old"]["turn_ms_p50"], 3)
    report["ratio_p95"] = round(report["new"]["turn_ms_p95"] / report["old"]["turn_ms_p95"], 3)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
