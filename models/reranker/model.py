"""The cross-encoder reranker model: config, network, training loop, load and score (see the package docstring)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from models.embeddings import embedding_model_path
from models.reranker.card import CARD_NAME, render_model_card, write_model_card



class Passage(Protocol):
    """What the reranker needs of a passage (``retrieval.chunking.Chunk`` is one)."""

    hash: str
    embed_text: str

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
    import torch  # heavy: torch (~1 s), only when the reranker is built

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


def zscore(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - x.mean()) / sd if sd > 1e-9 else np.zeros_like(x)


class CrossEncoderReranker:
    """Scores (query, passage) pairs; fuses with the first-stage score; caches per (query, chunk hash)."""

    def __init__(self, path: str | Path, cache_size: int = 4096) -> None:
        # heavy: torch + transformers (~2.5 s), only when the reranker is loaded
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.path = Path(path)
        self.info = json.loads((self.path / "reranker.json").read_text(encoding="utf-8"))
        cfg = self.info["config"]
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1, torch.get_num_threads())))  # never above a serving choice
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
        import torch  # heavy: torch, loaded already by __init__

        out = []
        with torch.inference_mode():
            for i in range(0, len(passages), batch_size):
                b = passages[i : i + batch_size]
                enc = self.tokenizer([query] * len(b), b, truncation="only_second", max_length=self.max_length,
                                     padding=True, return_tensors="pt")
                out.append(self.model(**enc).float().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def score(self, query: str, chunks: list[Passage]) -> np.ndarray:
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

    def rerank(self, query: str, chunks: list[Passage], first_stage: list[float]) -> list[tuple[float, float]]:
        """(cross-encoder logit, fused score) per candidate, in input order."""
        if not chunks:
            return []
        ce = self.score(query, chunks)
        fused = self.alpha * zscore(ce) + (1 - self.alpha) * zscore(np.asarray(first_stage, dtype="float32"))
        return [(float(a), float(b)) for a, b in zip(ce, fused)]


def train_cross_encoder(groups: list, out_dir: Path, config: RerankerConfig, progress: bool = True) -> None:
    """Fine-tune MiniLM with a one-logit head on the groups (listwise softmax loss) and save it."""
    # heavy: torch + transformers (~2.5 s), only training needs them
    import torch
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

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


def refresh_card(model_dir: Path) -> None:
    """Give a cached reranker its card when it has none or an outdated one (cached before cards, or
    before the card's text changed); a read-only cache only loses the card, never the model."""
    try:
        info = json.loads((model_dir / "reranker.json").read_text(encoding="utf-8"))
        card = model_dir / CARD_NAME
        if not card.exists() or card.read_text(encoding="utf-8") != render_model_card(info):
            write_model_card(model_dir)
    except OSError as exc:
        logging.getLogger(__name__).warning("could not write the reranker model card in %s: %s", model_dir, exc)
