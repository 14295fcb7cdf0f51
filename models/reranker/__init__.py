"""A cross-encoder reranker trained in the project from the MiniLM weights, on the corpus being indexed.

No pretrained cross-encoder can be downloaded here, so :func:`reranker_for_index` builds one:
synthetic queries + hard negatives from :mod:`retrieval.pairs`, a listwise (softmax over
one positive and its negatives) fine-tune of MiniLM with a one-logit head, and a fusion weight
between the cross-encoder and the first-stage (hybrid) score chosen on held-out *synthetic*
queries, so nothing is tuned on the evaluation questions. The result is cached under
``<models_dir>/reranker/<corpus fingerprint>-<config hash>`` with its training record
(``reranker.json``) and a model card generated from it (``model_card.md``, :mod:`models.reranker.card`).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from models.reranker.card import CARD_NAME, render_model_card, write_model_card

if TYPE_CHECKING:
    from retrieval.chunking import Chunk
    from retrieval.index import LoadedIndex

FORMAT = 1


@dataclass(frozen=True)
class RerankerConfig:
    """Training and inference knobs (their hash names the cache folder)."""

    queries_per_chunk: int = 4
    negatives: int = 3
    max_groups: int = 240  # bounds training time on any corpus size
    epochs: int = 1
    batch_groups: int = 4
    lr: float = 1e-4
    head_lr: float = 2e-3
    max_length: int = 128  # query + most of a ~110-word chunk (shorter cuts off later sentences' evidence)
    num_layers: int = 3  # leading MiniLM layers kept: 3 of 6 halves training and query time on 2 cores
    quantize: bool = True  # int8 dynamic quantisation of Linear layers at inference
    val_fraction: float = 0.1
    seed: int = 0
    # Fusion weight of the cross-encoder against the bi-encoder cosine (None: choose it on the
    # synthetic validation queries). 0.2 was chosen on the KB's *dev* questions: the synthetic
    # queries share the cross-encoder's lexical bias and pick 0.6 on every corpus tried, which
    # loses to dense-only retrieval on real questions (docs/retrieval.md, "fusion").
    alpha: float | None = 0.2

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:8]

    @classmethod
    def fast(cls) -> "RerankerConfig":
        """A test configuration that trains in well under a minute on two cores."""
        return cls(queries_per_chunk=2, max_groups=48, num_layers=2, max_length=96, batch_groups=4)


def _build_net(encoder: Any, dim: int):
    """MiniLM encoder + mean pooling over the query tokens + one linear unit.

    Not BERT's [CLS] pooler: the checkpoint has no trained pooler and its [CLS] vector barely
    varies, so a [CLS] head does not learn in a few hundred steps.
    """
    import torch

    class CrossEncoderNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.head = torch.nn.Linear(dim, 1)

        def forward(self, input_ids, attention_mask, token_type_ids=None):  # noqa: ANN001
            h = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state
            # Pool the *query* tokens only: after attending to the passage they carry the match
            # signal, which a mean over the whole (mostly passage) sequence dilutes away.
            seg = attention_mask if token_type_ids is None else attention_mask * (token_type_ids == 0)
            m = seg.unsqueeze(-1).to(h.dtype)
            return self.head((h * m).sum(1) / m.sum(1).clamp(min=1.0))[:, 0]

    return CrossEncoderNet()


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - x.mean()) / sd if sd > 1e-9 else np.zeros_like(x)


class CrossEncoderReranker:
    """Scores (query, passage) pairs; fuses with the first-stage score; caches per (query, chunk hash)."""

    def __init__(self, path: str | Path, cache_size: int = 4096) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.path = Path(path)
        self.info = json.loads((self.path / "reranker.json").read_text(encoding="utf-8"))
        cfg = self.info["config"]
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        encoder = AutoModel.from_pretrained(str(self.path), local_files_only=True, add_pooling_layer=False)
        model = _build_net(encoder, encoder.config.hidden_size)
        model.head.load_state_dict(torch.load(self.path / "head.pt", map_location="cpu"))
        model.eval()
        if cfg.get("quantize"):
            model = torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.model = model
        self.max_length = int(cfg["max_length"])
        self.alpha = float(self.info.get("alpha", 1.0))
        self.version = self.info["version"]
        self._cache: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def score_texts(self, query: str, passages: list[str], batch_size: int = 32) -> np.ndarray:
        """Raw cross-encoder logits for ``query`` against each passage."""
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(passages), batch_size):
                b = passages[i : i + batch_size]
                enc = self.tokenizer([query] * len(b), b, truncation="only_second", max_length=self.max_length,
                                     padding=True, return_tensors="pt")
                out.append(self.model(**enc).float().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def score(self, query: str, chunks: list["Chunk"]) -> np.ndarray:
        keys = [(query, c.hash) for c in chunks]
        with self._lock:
            known = {k: self._cache[k] for k in keys if k in self._cache}
        todo = [i for i, k in enumerate(keys) if k not in known]
        if todo:
            fresh = self.score_texts(query, [chunks[i].embed_text for i in todo])
            with self._lock:
                for i, v in zip(todo, fresh):
                    known[keys[i]] = float(v)
                    self._cache[keys[i]] = float(v)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return np.array([known[k] for k in keys], dtype="float32")

    def rerank(self, query: str, chunks: list["Chunk"], first_stage: list[float]) -> list[tuple[float, float]]:
        """(cross-encoder logit, fused score) per candidate, in input order."""
        if not chunks:
            return []
        ce = self.score(query, chunks)
        fused = self.alpha * _zscore(ce) + (1 - self.alpha) * _zscore(np.asarray(first_stage, dtype="float32"))
        return [(float(a), float(b)) for a, b in zip(ce, fused)]


def train_cross_encoder(groups: list, out_dir: Path, config: RerankerConfig, progress: bool = True) -> None:
    """Fine-tune MiniLM with a one-logit head on the groups (listwise softmax loss) and save it."""
    import torch
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

    from models.embeddings import embedding_model_path

    torch.manual_seed(config.seed)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    base = str(embedding_model_path())
    tok = AutoTokenizer.from_pretrained(base, local_files_only=True)
    encoder = AutoModel.from_pretrained(base, local_files_only=True, add_pooling_layer=False)
    if config.num_layers < encoder.config.num_hidden_layers:
        encoder.encoder.layer = encoder.encoder.layer[: config.num_layers]
        encoder.config.num_hidden_layers = config.num_layers
    for p in encoder.embeddings.parameters():  # frozen: saves optimiser work, keeps the vocabulary aligned
        p.requires_grad = False
    model = _build_net(encoder, encoder.config.hidden_size)
    model.train()
    steps = max(1, (len(groups) + config.batch_groups - 1) // config.batch_groups) * config.epochs
    opt = torch.optim.AdamW([
        {"params": [p for p in encoder.parameters() if p.requires_grad], "lr": config.lr},
        {"params": model.head.parameters(), "lr": config.head_lr},  # fresh head: learn it faster
    ], weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, max(1, steps // 10), steps)
    rng = random.Random(config.seed)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="training reranker", unit="step", leave=False)
    size = 1 + config.negatives
    for _ in range(config.epochs):
        order = list(range(len(groups)))
        rng.shuffle(order)
        for s in range(0, len(order), config.batch_groups):
            batch = [groups[i] for i in order[s : s + config.batch_groups]]
            qs = [g.query for g in batch for _ in range(size)]
            ps = [p for g in batch for p in [g.positive, *g.negatives]]
            enc = tok(qs, ps, truncation="only_second", max_length=config.max_length, padding=True,
                      return_tensors="pt")
            logits = model(**enc).view(len(batch), size)
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            if bar:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
    if bar:
        bar.close()
    model.eval()
    encoder.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))
    torch.save(model.head.state_dict(), out_dir / "head.pt")


def split_by_document(groups: list, fraction: float, seed: int) -> tuple[list, list]:
    """(validation, training) groups, the validation ones from documents never trained on.

    Groups from a trained-on chunk would overrate the cross-encoder (it has seen that very passage).
    """
    docs = sorted({g.doc_id for g in groups})
    random.Random(seed).shuffle(docs)
    n_val = max(1, int(len(docs) * fraction)) if len(groups) > 10 and len(docs) > 2 else 0
    held = set(docs[:n_val])
    return [g for g in groups if g.doc_id in held], [g for g in groups if g.doc_id not in held]


def _choose_alpha(reranker: CrossEncoderReranker, chunks: list["Chunk"], val: list,
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
        ce = _zscore(reranker.score(g.query, [chunks[i] for i in idx]))
        base = dense(g.query, idx) if dense is not None else np.array([s for _, s in cand], dtype="float32")
        fs = _zscore(np.asarray(base, dtype="float32"))
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


_LOCK = threading.Lock()


def _refresh_card(model_dir: Path) -> None:
    """Give a cached reranker its card when it has none or an outdated one (cached before cards, or
    before the card's text changed); a read-only cache only loses the card, never the model."""
    try:
        info = json.loads((model_dir / "reranker.json").read_text(encoding="utf-8"))
        card = model_dir / CARD_NAME
        if not card.exists() or card.read_text(encoding="utf-8") != render_model_card(info):
            write_model_card(model_dir)
    except OSError as exc:
        import logging

        logging.getLogger(__name__).warning("could not write the reranker model card in %s: %s", model_dir, exc)


def reranker_for_index(index: "LoadedIndex", *, models_dir: str | Path | None = None,
                       config: RerankerConfig | None = None,
                       first_stage: Callable[[list[str], int], list[list[tuple[int, float]]]] | None = None,
                       embed_queries: Callable[[list[str]], np.ndarray] | None = None,
                       top_k: int = 20, progress: bool = True) -> CrossEncoderReranker:
    """The reranker for ``index``'s corpus: loaded from the cache, or trained now (minutes, once).

    ``first_stage(queries, n)`` returns each query's top-``n`` (chunk index, score) list; it is
    used to mine hard negatives and to measure the fusion weights. ``embed_queries`` (normalised
    bi-encoder query vectors) gives the cosine the cross-encoder is fused with, as at query time.
    """
    from app.core.settings import get_settings
    from models.embeddings import embedding_model_version
    from retrieval.pairs import build_groups
    from provenance.tracker import git_commit

    config = config or RerankerConfig()
    models_dir = Path(models_dir or get_settings().models_dir)
    fp = index.meta["corpus"]["fingerprint"]
    out = models_dir / "reranker" / f"{fp[:16]}-{config.key()}"
    with _LOCK:
        if (out / "reranker.json").exists():
            _refresh_card(out)
            return CrossEncoderReranker(out)
        if first_stage is None:
            raise ValueError("training a reranker needs a first-stage retriever")
        t0 = time.perf_counter()
        groups = build_groups(index.chunks, lambda qs, n: [[i for i, _ in r] for r in first_stage(qs, n)],
                              queries_per_chunk=config.queries_per_chunk, negatives=config.negatives,
                              max_groups=config.max_groups, seed=config.seed)
        val, train = split_by_document(groups, config.val_fraction, config.seed)
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
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
        (tmp / "reranker.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
        write_model_card(tmp)
        if out.exists():  # another process finished first; keep its copy
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, out)
        return CrossEncoderReranker(out)
