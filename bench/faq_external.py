"""Retrieval and answers on a bank FAQ nobody here wrote: the Nilgiri Bank corpus (data/eval/nilgiri/).

Reports, per retrieval mode, MRR@10, nDCG@10 and recall@5 on the customers' questions (dev and test
halves, alternating by id; only dev may be used to choose anything), query latency, the key-fact rate
(the reply contains the asked-for value) and confident wrong answers on questions whose answer is not
in the corpus or is about a neighbouring product. The same script scores an older checkout, for the
same-run baseline:

    python bench/faq_external.py [--modes bm25,dense,hybrid,rerank] [--out bench/results/faq-external.json]
    python bench/faq_external.py --root /tmp/old-checkout --label baseline
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
NILGIRI = HERE / "data" / "eval" / "nilgiri"


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


def ranking_metrics(ranked: list[str], relevant: set[str]) -> dict[str, float]:
    rr = next((1.0 / i for i, d in enumerate(ranked[:10], 1) if d in relevant), 0.0)
    dcg = sum(1.0 / math.log2(i + 1) for i, d in enumerate(ranked[:10], 1) if d in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), 10) + 1))
    return {"mrr@10": rr, "ndcg@10": dcg / ideal if ideal else 0.0,
            "recall@5": len(relevant & set(ranked[:5])) / len(relevant) if relevant else 0.0}


def flat_corpus(dest: Path) -> Path:
    """The corpus as one folder of Markdown files (older loaders read a flat folder)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted((NILGIRI / "corpus").rglob("*.md")):
        shutil.copy(f, dest / f.name)
    return dest


def value_in(reply: str, value: str, also: list[str]) -> bool:
    def norm(s: str) -> str:
        return re.sub(r"\s+", " ", s.replace("\u202f", " ").replace("\xa0", " ")).strip().lower()
    text = norm(reply)
    return any(norm(v) in text for v in [value, *also])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=HERE)
    parser.add_argument("--label", default="current")
    parser.add_argument("--modes", default="bm25,dense,hybrid,rerank")
    parser.add_argument("--answer-mode", default=None, help="mode for key facts and refusals (default: the configured one)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.out = args.out.resolve() if args.out else None  # before the chdir into --root

    import yaml

    sys.path.insert(0, str(args.root.resolve()))
    work = Path(tempfile.mkdtemp(prefix="sahayak-faq-external-"))
    os.environ["SAHAYAK_HOME"] = str(work / "home")
    os.environ.setdefault("SAHAYAK_MODELS_HOME", str(HERE / "var" / "models"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.chdir(args.root)
    from retrieval.index import build_index
    from retrieval.kb import open_knowledge_base

    corpus = flat_corpus(work / "corpus")
    t0 = time.perf_counter()
    build_index(corpus, work / "index", progress=False)
    index_s = time.perf_counter() - t0

    items = yaml.safe_load((NILGIRI / "questions.yaml").read_text(encoding="utf-8"))
    answerable = [q for q in items if q["kind"] == "answerable"]
    halves = {"dev": answerable[0::2], "test": answerable[1::2]}
    keyfacts = yaml.safe_load((NILGIRI / "keyfacts.yaml").read_text(encoding="utf-8"))
    unknown = [q for q in items if q["kind"] in ("not_in_kb", "near_miss")]

    report: dict[str, Any] = {"benchmark": "faq_external", "label": args.label, "root": str(args.root),
                              "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "load_average": os.getloadavg(), "corpus_docs": len(list(corpus.glob("*.md"))),
                              "index_seconds": round(index_s, 1), "modes": {}}
    kb = open_knowledge_base(work / "index", models_dir=os.environ["SAHAYAK_MODELS_HOME"])
    for mode in args.modes.split(","):
        kb.search("warm up", k=10, mode=mode)
        row: dict[str, Any] = {}
        for half, qs in halves.items():
            sums = {"mrr@10": 0.0, "ndcg@10": 0.0, "recall@5": 0.0}
            lat = []
            for q in qs:
                t = time.perf_counter()
                ranked = [h.doc_id for h in kb.search(q["text"], k=10, mode=mode)]
                lat.append((time.perf_counter() - t) * 1000)
                for k, v in ranking_metrics(ranked, set(q["relevant"])).items():
                    sums[k] += v
            row[half] = {k: round(v / len(qs), 4) for k, v in sums.items()} | {"n": len(qs), "p50_ms": pct(lat, 0.5),
                                                                             "p95_ms": pct(lat, 0.95)}
        report["modes"][mode] = row
        print(mode, json.dumps(row), flush=True)

    mode = args.answer_mode or kb.mode
    facts_ok, facts_rows, lat = 0, [], []
    for q in keyfacts:
        t = time.perf_counter()
        ans = kb.answer(q["text"], mode=mode)
        lat.append((time.perf_counter() - t) * 1000)
        ok = value_in(ans.text, q["value"], q.get("also") or [])
        facts_ok += ok
        if not ok:
            facts_rows.append({"id": q["id"], "text": q["text"], "value": q["value"], "doc": q["doc"],
                               "cited": [c["doc_id"] for c in ans.citations][:3], "reply": ans.text[:200]})
    wrong = {"not_in_kb": [0, 0], "near_miss": [0, 0]}
    for q in unknown:
        ans = kb.answer(q["text"], mode=mode)
        wrong[q["kind"]][0] += 1
        wrong[q["kind"]][1] += bool(ans.confident)
    report["answers"] = {
        "mode": mode,
        "keyfacts": {"n": len(keyfacts), "present": round(facts_ok / len(keyfacts), 4), "p50_ms": pct(lat, 0.5)},
        "confident_wrong": {k: {"n": n, "confident": c, "rate": round(c / n, 4)} for k, (n, c) in wrong.items()},
        "keyfact_misses": facts_rows[:60],
    }
    total_unknown = sum(n for n, _ in wrong.values())
    report["answers"]["confident_wrong_rate"] = round(sum(c for _, c in wrong.values()) / total_unknown, 4)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("label", "modes")} | {"answers": {
        k: v for k, v in report["answers"].items() if k != "keyfact_misses"}}, indent=1))


if __name__ == "__main__":
    main()
