"""Text layer benchmark: speed of preprocessing, entity extraction, neutralisation and redaction,
plus amount accuracy on the entity table against a naive baseline — one JSON report.

Baselines measured in the same run:
  * speed: ``str.lower`` + one ``re.findall(r"\\d+")`` over the same messages (the floor any
    regex pass costs);
  * accuracy: a naive amount parser (the first number in the message, INR) on the same
    cases of ``tests/text/entity_cases.yaml`` that say something about ``amount``.

    python bench/text.py [--repeat 20] [--out bench/results/text.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.text.chatml import neutralize, render_chatml  # noqa: E402
from app.text.entities import extract_entities  # noqa: E402
from app.text.preprocess import preprocess  # noqa: E402
from privacy.redact import redact  # noqa: E402

TODAY = date(2026, 11, 24)


def per_message_us(fn, texts: list[str], repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        for t in texts:
            t0 = time.perf_counter()
            fn(t)
            samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    return {"p50_us": round(samples[len(samples) // 2], 1), "p95_us": round(samples[int(len(samples) * 0.95)], 1),
            "mean_us": round(statistics.fmean(samples), 1)}


def naive_amount(text: str) -> dict | None:
    m = re.search(r"\d[\d,]*(?:\.\d+)?", text)
    return {"value": float(m.group(0).replace(",", "")), "currency": "INR"} if m else None


def amount_accuracy(cases: list[dict], fn) -> dict[str, float]:
    right = total = 0
    for case in cases:
        want_present = "amount" in (case.get("expect") or {})
        want_absent = "amount" in (case.get("absent") or [])
        if not (want_present or want_absent):
            continue
        total += 1
        got = fn(case["text"])
        if want_absent:
            right += got is None
        else:
            want = case["expect"]["amount"]
            want = ({"value": float(want["value"]), "currency": want["currency"]} if isinstance(want, dict)
                    else {"value": float(want), "currency": "INR"})
            right += got == want
    return {"cases": total, "correct": right, "accuracy": round(right / total, 4)}


def case_accuracy(cases: list[dict]) -> dict[str, object]:
    """Whole-case accuracy: every expected key right and every absent key absent."""
    failures = []
    for case in cases:
        got = extract_entities(case["text"], today=TODAY)
        ok = all(key not in got for key in case.get("absent") or [])
        for key, want in (case.get("expect") or {}).items():
            if key == "amount":
                want = ({"value": float(want["value"]), "currency": want["currency"]} if isinstance(want, dict)
                        else {"value": float(want), "currency": "INR"})
            ok = ok and got.get(key) == want
        if not ok:
            failures.append({"text": case["text"], "got": got})
    return {"cases": len(cases), "correct": len(cases) - len(failures),
            "accuracy": round(1 - len(failures) / len(cases), 4), "failures": failures}


def worst_case_s(fn, text: str) -> float:
    t0 = time.perf_counter()
    fn(text)
    return round(time.perf_counter() - t0, 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cases = yaml.safe_load((ROOT / "tests/text/entity_cases.yaml").read_text(encoding="utf-8"))
    holdout = yaml.safe_load((ROOT / "data/eval/entities_holdout.yaml").read_text(encoding="utf-8"))
    texts = [c["text"] for c in cases]
    chat = [{"role": "user", "content": t} for t in texts]

    report = {
        "messages": len(texts),
        "speed": {
            "baseline_lower_findall": per_message_us(lambda t: re.findall(r"\d+", t.lower()), texts, args.repeat),
            "preprocess": per_message_us(lambda t: preprocess(t, 2000), texts, args.repeat),
            "extract_entities": per_message_us(lambda t: extract_entities(t, today=TODAY), texts, args.repeat),
            "neutralize": per_message_us(neutralize, texts, args.repeat),
            "redact": per_message_us(redact, texts, args.repeat),
            "render_chatml_180_turns_us": per_message_us(lambda _: render_chatml(chat), ["x"], args.repeat)["p50_us"],
        },
        "amount_accuracy": {
            "dev_table": {
                "ours": amount_accuracy(cases, lambda t: extract_entities(t, today=TODAY).get("amount")),
                "baseline_first_number": amount_accuracy(cases, naive_amount),
            },
            "holdout": {
                "ours": amount_accuracy(holdout, lambda t: extract_entities(t, today=TODAY).get("amount")),
                "baseline_first_number": amount_accuracy(holdout, naive_amount),
            },
        },
        "all_entities_case_accuracy": {"dev_table": case_accuracy(cases), "holdout": case_accuracy(holdout)},
        "worst_case_100kb_s": {
            "preprocess_too_long": worst_case_s(lambda t: preprocess(t, 2000), "1 " * 50_000),
            "extract_entities": worst_case_s(lambda t: extract_entities(t, today=TODAY), "1 " * 50_000),
            "neutralize": worst_case_s(neutralize, "<|" * 50_000),
            "redact": worst_case_s(redact, "1 " * 50_000),
        },
    }
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
