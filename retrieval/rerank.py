"""Training the corpus's cross-encoder reranker (the model itself lives in :mod:`models.reranker`).

Synthetic queries and hard negatives come from :mod:`retrieval.pairs`; the fusion weight between
the cross-encoder and the first-stage score is chosen on held-out *synthetic* queries from documents
never trained on, so nothing is tuned on the evaluation questions. The result is cached under
``<models_dir>/reranker/<corpus fingerprint>-<config hash>``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from app.core.errors import NotPrepared
from app.core.fingerprint import git_commit
from app.core.fsutil import publishing
from app.core.settings import get_settings
from models.embeddings import embedding_model_version
from models.reranker import (
    FORMAT,
    CrossEncoderReranker,
    RerankerConfig,
    refresh_card,
    zscore,
    train_cross_encoder,
)
from models.reranker.card import write_model_card
from retrieval.chunking import Chunk
from retrieval.index import LoadedIndex
from retrieval.pairs import build_groups

_LOCK = threading.Lock()  # one training per process at a time (the cache folder is shared)


def split_by_document(groups: list, fraction: float, seed: int) -> tuple[list, list]:
    """(validation, training) groups, the validation ones from documents never trained on.

    Groups from a trained-on chunk would overrate the cross-encoder (it has seen that very passage).
    """
    docs = sorted({g.doc_id for g in groups})
    random.Random(seed).shuffle(docs)
    n_val = max(1, int(len(docs) * fraction)) if len(groups) > 10 and len(docs) > 2 else 0
    held = set(docs[:n_val])
    return [g for g in groups if g.doc_id in held], [g for g in groups if g.doc_id not in held]


def _choose_alpha(reranker: CrossEncoderReranker, chunks: list[Chunk], val: list,
                  first_stage: Callable[[list[str], int], list[list[tuple[int, float]]]], top_k: int,
                  dense: Callable[[str, list[int]], np.ndarray] | None = None) -> dict:
    """Pick the cross-encoder fusion weight that maximises MRR on held-out synthetic queries.

    Candidates are the first stage's top-``top_k``; the cross-encoder is fused with the
    bi-encoder's cosine of each candidate when ``dense`` is given (what serving does), else
    with the first-stage score.
    """
    alphas = [round(a, 1) for a in np.linspace(0.0, 1.0, 11)]
    mrr = {a: 0.0 for a in alphas}
    if not val:
        return {"alpha": 1.0, "val_mrr": {}}
    ranked = first_stage([g.query for g in val], top_k)
    for g, cand in zip(val, ranked):
        if not cand:
            continue
        idx = [i for i, _ in cand]
        ce = zscore(reranker.score(g.query, [chunks[i] for i in idx]))
        base = dense(g.query, idx) if dense is not None else np.array([s for _, s in cand], dtype="float32")
        fs = zscore(np.asarray(base, dtype="float32"))
        for a in alphas:
            fused = a * ce + (1 - a) * fs
            seen: list[str] = []
            for j in np.argsort(-fused):
                d = chunks[idx[j]].doc_id
                if d not in seen:
                    seen.append(d)
            if g.doc_id in seen[:10]:
                mrr[a] += 1.0 / (seen.index(g.doc_id) + 1)
    mrr = {a: v / len(val) for a, v in mrr.items()}
    best = max(alphas, key=lambda a: (round(mrr[a], 4), a))
    return {"alpha": best, "val_mrr": {str(a): round(v, 4) for a, v in mrr.items()}}




def reranker_for_index(index: LoadedIndex, *, models_dir: str | Path | None = None,
                       config: RerankerConfig | None = None,
                       first_stage: Callable[[list[str], int], list[list[tuple[int, float]]]] | None = None,
                       embed_queries: Callable[[list[str]], np.ndarray] | None = None,
                       top_k: int = 20, progress: bool = True, train: bool = True) -> CrossEncoderReranker:
    """The reranker for ``index``'s corpus: loaded from the cache, or trained now (minutes, once).
    With ``train=False`` (the product's getter) a missing reranker raises :class:`NotPrepared`.

    ``first_stage(queries, n)`` returns each query's top-``n`` (chunk index, score) list; it is
    used to mine hard negatives and to measure the fusion weights. ``embed_queries`` (normalised
    bi-encoder query vectors) gives the cosine the cross-encoder is fused with, as at query time.
    """
    config = config or RerankerConfig()
    models_dir = Path(models_dir or get_settings().models_dir)
    fp = index.meta["corpus"]["fingerprint"]
    out = models_dir / "reranker" / f"{fp[:16]}-{config.key()}"
    with _LOCK:
        if (out / "reranker.json").exists():
            refresh_card(out)
            return CrossEncoderReranker(out)
        if not train:
            raise NotPrepared(f"no reranker for this corpus under {out.parent}: run `sahayak prepare` "
                              "(or `sahayak kb train-reranker`)")
        if first_stage is None:
            raise ValueError("training a reranker needs a first-stage retriever")
        t0 = time.perf_counter()
        started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        groups = build_groups(index.chunks, lambda qs, n: [[i for i, _ in r] for r in first_stage(qs, n)],
                              queries_per_chunk=config.queries_per_chunk, negatives=config.negatives,
                              max_groups=config.max_groups, seed=config.seed)
        val, train = split_by_document(groups, config.val_fraction, config.seed)
        # Another process may finish first: then its copy is kept.
        with publishing(out, keep_existing=True) as tmp:
            train_cross_encoder(train, tmp, config, progress=progress)
            info = {
                "format": FORMAT,
                "config": asdict(config),
                "base_model": embedding_model_version(),
                "corpus_fingerprint": fp,
                "train_groups": len(train),
                "val_groups": len(val),
                "query_kinds": dict(sorted({k: sum(g.kind == k for g in train) for k in {g.kind for g in train}}.items())),
                "version": f"cross-encoder/minilm-l{config.num_layers}-{fp[:12]}-{config.key()}",
                "alpha": 1.0,
                # Lineage for the model card (not part of the config key, so caches stay valid).
                "started_at": started_at,
                "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "git_commit": git_commit(),
            }
            (tmp / "reranker.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
            rr = CrossEncoderReranker(tmp)
            dense = None
            if embed_queries is not None:
                def dense(query: str, idx: list[int]) -> np.ndarray:
                    return index.embeddings[idx] @ embed_queries([query])[0]
            chosen = _choose_alpha(rr, index.chunks, val, first_stage, top_k, dense)
            info["alpha_synthetic_val"] = chosen["alpha"]
            info["val_mrr"] = chosen["val_mrr"]
            info["alpha"] = config.alpha if config.alpha is not None else chosen["alpha"]
            info["fusion"] = "bi-encoder cosine" if dense is not None else "first-stage score"
            info["train_seconds"] = round(time.perf_counter() - t0, 1)
            info["trained_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")  # after the alpha choice
            (tmp / "reranker.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
            write_model_card(tmp)
        return CrossEncoderReranker(out)
