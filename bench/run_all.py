"""Run every benchmark and write bench/REPORT.md (and bench/results/<name>.json).

Each bench script prints a JSON report whose last top-level JSON object is the result; every
report carries its own same-run baseline, which REPORT.md shows beside the number.

    python bench/run_all.py [--only turns,bank] [--skip intents]

REPORT.md always covers every bench: those not run this time keep their latest saved result,
and each section says when it was measured and under what load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

# name → (arguments, one-line description). Parameters are bounded so `make bench` stays well under an hour.
BENCHES: dict[str, tuple[list[str], str]] = {
    "text": (["--repeat", "20"], "entity extraction, preprocessing and redaction (vs a naive parser)"),
    "bank": (["--n", "100"], "transfers on SQLite and PostgreSQL (vs a balance read)"),
    "turns": (["--rounds", "20"], "whole-pipeline turn latency (vs classification alone)"),
    "provenance": ([], "signing, verification, graph import, tamper detection"),
    "scoring": (["--n-single", "200"], "encrypted scoring (vs plaintext scoring)"),
    "retrieval": ([], "BM25 / dense / hybrid / rerank on the held-out questions and an external corpus"),
    # The LLM approach is left out here: 77 scored labels over a ~2k-token prompt take minutes per
    # query on 2 cores (it is measured on the project's 11 intents in docs/intents.md). The
    # ensemble-mpnet row also reports its finetune-mpnet member on the same rows.
    "intents": (["--approaches", "frozen-base,frozen-base-int8,frozen,frozen-fp32,ensemble-mpnet,ensemble,zeroshot,zeroshot-centroids", "--finetune-minutes", "12",
                 "--finetune-epochs", "5", "--finetune-lr", "8e-5", "--freeze-layers", "0", "--learning-curve", "10003"],
                "intent approaches on BANKING77 (vs frozen MiniLM + LR)"),
    "load": ([], "concurrent chat sessions through the UI's entry point"),
}


def last_json(text: str) -> dict | None:
    """The last complete JSON object printed (single line or pretty-printed)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except ValueError:
                break
    start = text.rfind("\n{")
    while start != -1:
        try:
            return json.loads(text[start + 1:])
        except ValueError:
            start = text.rfind("\n{", 0, start)
    try:
        return json.loads(text)
    except ValueError:
        return None


def flatten(obj: object, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list):
        out[prefix] = f"[{len(obj)} items]"
    else:
        out[prefix] = obj
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated bench names")
    ap.add_argument("--skip", default="", help="comma-separated bench names")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per bench")
    ap.add_argument("--report-only", action="store_true", help="only rebuild REPORT.md from saved results")
    args = ap.parse_args()
    if args.report_only:
        write_report()
        return
    only = {x for x in args.only.split(",") if x}
    skip = {x for x in args.skip.split(",") if x}
    RESULTS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for name, (bench_args, desc) in BENCHES.items():
        script = ROOT / "bench" / f"{name}.py"
        if (only and name not in only) or name in skip or not script.exists():
            continue
        print(f"== bench/{name}.py {' '.join(bench_args)}", flush=True)
        load = list(os.getloadavg())
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script), *bench_args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=args.timeout)
        wall = time.perf_counter() - t0
        report = last_json(proc.stdout)
        status = "ok" if proc.returncode == 0 and report is not None else f"failed (exit {proc.returncode})"
        if report is not None:
            (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        else:
            (RESULTS / f"{name}.log").write_text(proc.stdout[-20000:] + "\n--- stderr ---\n" + proc.stderr[-20000:])
        meta = {"args": bench_args, "status": status, "wall_s": round(wall, 1), "load_avg_at_start": load,
                "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
        (RESULTS / f"{name}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(f"   {status} in {wall:.0f} s", flush=True)
    write_report()


def write_report() -> Path:
    """bench/REPORT.md from the latest saved result of every bench (each section says when it ran)."""
    sections = []
    for name, (bench_args, desc) in BENCHES.items():
        res, meta_path = RESULTS / f"{name}.json", RESULTS / f"{name}.meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        report = json.loads(res.read_text()) if res.exists() else None
        if report is None and not meta:
            sections.append(f"## {name} — {desc}\n\nNot run yet: `python bench/run_all.py --only {name}`.\n")
            continue
        ran = (f"`python bench/{name}.py {' '.join(meta.get('args', bench_args))}` — {meta.get('status', 'ok')}, "
               f"{meta.get('wall_s', '?')} s wall, finished {meta.get('finished_utc', 'unknown')}, "
               f"load average at start {meta.get('load_avg_at_start', '?')}.")
        rows = flatten(report) if report else {}
        table = "\n".join(f"| `{k}` | {v} |" for k, v in rows.items())
        sections.append(f"## {name} — {desc}\n\n{ran}\n\n"
                        + (f"| metric | value |\n|---|---|\n{table}\n" if rows else "No report; see bench/results/.\n"))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (f"# Benchmark report\n\nAssembled by `make bench` (`bench/run_all.py`) on {stamp}, {os.cpu_count()} CPU cores, "
              "from the latest result of each bench (`bench/results/`). Every number sits beside the baseline "
              "measured in the same run of its bench (keys with `baseline` in their name). Timings on shared "
              "machines are noisy; compare within one section.\n\n")
    out = ROOT / "bench" / "REPORT.md"
    out.write_text(header + "\n".join(sections))
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
