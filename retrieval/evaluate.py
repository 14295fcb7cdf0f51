"""Ranking metrics, evaluation over a query file, and calibration of the "I don't know" threshold."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
from tqdm import tqdm

from app.core.errors import SahayakError

if TYPE_CHECKING:
    from retrieval.kb import KnowledgeBase  # hints only: kb imports nothing from here


def mrr_at(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k]):
        if d in relevant:
            return 1.0 / (i + 1)
    return 0.0


def recall_at(ranked: list[str], relevant: set[str], k: int) -> float:
    """Fraction of the relevant documents found in the top ``k``."""
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def hit_at(ranked: list[str], relevant: set[str], k: int) -> float:
    return float(bool(set(ranked[:k]) & relevant))


def ndcg_at(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if d in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def load_queries(path: str | Path) -> list[dict[str, Any]]:
    """Lines of ``{"query": ..., "relevant": [...]}`` (blank lines ignored)."""
    p = Path(path)
    if not p.exists():
        raise SahayakError(f"query file {p} does not exist")
    rows = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.append({"query": str(row["query"]), "relevant": [str(r) for r in row.get("relevant", [])],
                         **{k: v for k, v in row.items() if k not in {"query", "relevant"}}})
        except (ValueError, KeyError) as exc:
            raise SahayakError(f"{p}:{n}: expected {{\"query\": ..., \"relevant\": [...]}} ({exc})") from exc
    return rows


def evaluate(kb: "KnowledgeBase", queries: list[dict[str, Any]], modes: Iterable[str], k: int = 10,
             progress: bool = False) -> dict[str, Any]:
    """Metrics per mode over the queries that have relevant documents.

    Recall@1 counts a hit when the first result is relevant (success@1); recall@5/@10 are the
    fraction of all relevant documents retrieved in the top 5/10. The first query of each mode
    is run once untimed so model loading is not counted in the latencies.
    """
    qs = [q for q in queries if q["relevant"]]
    if not qs:
        raise SahayakError("no queries with relevant documents to evaluate")
    unknown = {d for q in qs for d in q["relevant"]} - kb.index.doc_ids
    if unknown:
        raise SahayakError(f"relevant ids not in the index: {sorted(unknown)[:5]}")
    report: dict[str, Any] = {"n_queries": len(qs), "modes": {}}
    for mode in modes:
        kb.search(qs[0]["query"] + " warm-up", k=k, mode=mode)
        rows = {"mrr@10": [], "ndcg@10": [], "recall@1": [], "recall@5": [], "recall@10": []}
        lat = []
        it = qs
        if progress:
            it = tqdm(qs, desc=f"eval {mode}", leave=False)
        for q in it:
            with kb._lock:  # time the whole query, embedding included (modes share the query cache)
                kb._qcache.clear()
            t = time.perf_counter()
            ranked = [h.doc_id for h in kb.search(q["query"], k=k, mode=mode)]
            lat.append((time.perf_counter() - t) * 1000)
            rel = set(q["relevant"])
            rows["mrr@10"].append(mrr_at(ranked, rel, 10))
            rows["ndcg@10"].append(ndcg_at(ranked, rel, 10))
            rows["recall@1"].append(hit_at(ranked, rel, 1))
            rows["recall@5"].append(recall_at(ranked, rel, 5))
            rows["recall@10"].append(recall_at(ranked, rel, 10))
        m = {name: round(float(np.mean(v)), 4) for name, v in rows.items()}
        m["latency_ms_p50"] = round(float(np.percentile(lat, 50)), 2)
        m["latency_ms_p95"] = round(float(np.percentile(lat, 95)), 2)
        report["modes"][mode] = m
    return report


def calibrate_threshold(kb: "KnowledgeBase", answerable: list[str], unanswerable: list[str],
                        mode: str | None = None) -> dict[str, Any]:
    """The relevance threshold that best separates answerable from out-of-domain questions.

    Maximises balanced accuracy (answer the answerable, refuse the rest); ties go to the
    midpoint of the widest gap, so the threshold is not glued to one training example.
    """
    if not answerable or not unanswerable:
        raise SahayakError("calibration needs both answerable and unanswerable questions")

    def conf(q: str) -> float:
        hits = kb.search(q, k=1, mode=mode)
        return kb.relevance(q, hits[0]) if hits else 0.0

    pos = np.array([conf(q) for q in answerable])
    neg = np.array([conf(q) for q in unanswerable])
    cands = np.unique(np.concatenate([pos, neg]))
    mids = (cands[:-1] + cands[1:]) / 2 if len(cands) > 1 else cands
    best, best_acc = float(mids[0]), -1.0
    for t in mids:
        acc = ((pos >= t).mean() + (neg < t).mean()) / 2
        if acc > best_acc + 1e-9:
            best, best_acc = float(t), acc
    # among thresholds with the best accuracy, take the middle of that plateau
    plateau = [float(t) for t in mids if ((pos >= t).mean() + (neg < t).mean()) / 2 >= best_acc - 1e-9]
    best = (min(plateau) + max(plateau)) / 2
    return {
        "threshold": round(best, 4),
        "balanced_accuracy": round(float(best_acc), 4),
        "answer_rate_answerable": round(float((pos >= best).mean()), 4),
        "refusal_rate_unanswerable": round(float((neg < best).mean()), 4),
        "n_answerable": len(pos),
        "n_unanswerable": len(neg),
        "confidence": "cosine(query, top chunk) with the bi-encoder",
    }
