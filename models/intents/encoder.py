"""A lean MiniLM sentence encoder for the classifiers.

It runs the BERT directly (tokenizer + mean pooling + L2 norm, the same maths as the
sentence-transformers pipeline) because single-query latency matters: the per-call overhead
of ``SentenceTransformer.encode`` is a sizeable share of a ~10 ms budget. Optional int8
dynamic quantisation of the Linear layers roughly halves CPU latency; a classifier head is
always trained on the embeddings of the very encoder configuration it will run with.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from functools import lru_cache
from typing import Iterable

import numpy as np
from tqdm import tqdm

from app.core.environment import apply_offline_env
from models.embeddings import embedding_model_path

RECENT_TEXTS = 4  # single texts remembered per encoder: enough for one turn's two models, not a cache of traffic

apply_offline_env()  # before transformers is imported: weights come from installed packages only


def training_threads() -> int:
    """Threads for training and indexing: ``SAHAYAK_TORCH_THREADS`` or min(2, CPUs)."""
    return int(os.environ.get("SAHAYAK_TORCH_THREADS", "0")) or max(1, min(2, os.cpu_count() or 1))


def set_torch_threads(n: int | None = None) -> None:
    """Two cores are shared by everything here: never let torch spawn more threads than that.

    With ``n`` (training passes :func:`training_threads`, a serving process ``settings.serving_threads``)
    torch uses exactly ``n``; without it (a model being loaded) only a count above the cap is lowered,
    so loading a model never undoes a serving process's choice."""
    import torch  # heavy: only a process that runs a model pays for it

    if n is None:
        n = min(torch.get_num_threads(), training_threads())
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def mean_pool(hidden, attention_mask):  # noqa: ANN001, ANN201 - torch tensors in and out
    """Mean over the real tokens, L2-normalised (the sentence-transformers pooling)."""
    import torch  # heavy: only a process that runs a model pays for it

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1)


def quantize_int8(model):  # noqa: ANN001, ANN201 - torch module in, torch module out
    """int8 dynamic quantisation of every Linear layer (weights int8, activations quantised per call)."""
    import torch  # heavy: only a process that runs a model pays for it

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the eager API prints a migration notice; it still works
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class Encoder:
    """Mean-pooled, L2-normalised MiniLM embeddings; thread-safe (one forward at a time)."""

    def __init__(self, model_path: str, max_length: int = 64, quantize: bool = True) -> None:
        # heavy: torch + transformers (~2.5 s), only when an encoder is built
        import torch
        from transformers import AutoModel, AutoTokenizer

        set_torch_threads()
        self.model_path = model_path
        self.max_length = max_length
        self.quantize = quantize
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
        model = AutoModel.from_pretrained(model_path, local_files_only=True).eval()
        self.model = quantize_int8(model) if quantize else model
        self.dim = int(model.config.hidden_size)
        # Fast tokenizers are not safe to call from several threads at once ("Already borrowed"),
        # and two cores gain nothing from parallel forwards: serialise.
        self._lock = threading.Lock()
        self._torch = torch
        # Optional text -> vector memo; benchmarks set it so several approaches trained on the
        # same texts embed them once. Off by default (a chat server would grow it forever).
        self.memo: dict[str, np.ndarray] | None = None
        # The last few single texts: a chat turn embeds the customer's message once for the intent
        # model and once for the dialogue-act model (same encoder, same text). A text encoded alone
        # always gets the same vector (no other rows share its int8 scale), so reusing it is exact.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Embeddings of ``texts`` as a float32 array (n, dim), rows of unit length."""
        if self.memo is None and len(texts) == 1:
            return self._encode_one(texts[0])
        if self.memo is not None:
            todo = list(dict.fromkeys(t for t in texts if t not in self.memo))
            if todo:
                self.memo.update(zip(todo, self._encode(todo, batch_size, progress)))
            return np.stack([self.memo[t] for t in texts]) if texts else np.zeros((0, self.dim), dtype=np.float32)
        return self._encode(texts, batch_size, progress)

    def _encode_one(self, text: str) -> np.ndarray:
        with self._lock:
            vec = self._recent.get(text)
            if vec is not None:
                self._recent.move_to_end(text)
        if vec is None:
            vec = self._encode([text], 1, False)[0]
            with self._lock:
                self._recent[text] = vec
                while len(self._recent) > RECENT_TEXTS:
                    self._recent.popitem(last=False)
        return vec[None, :].copy()

    def _encode(self, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
        torch = self._torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Sort by length so batches pad little; restore order at the end.
        order = np.argsort([len(t) for t in texts], kind="stable")
        starts: Iterable[int] = range(0, len(texts), batch_size)
        if progress and len(texts) > batch_size:
            starts = tqdm(list(starts), desc="embedding", unit="batch", leave=False)
        for s in starts:
            idx = order[s : s + batch_size]
            batch = [texts[i] for i in idx]
            with self._lock, torch.inference_mode():
                enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
                vec = mean_pool(self.model(**enc).last_hidden_state, enc["attention_mask"])
            out[idx] = vec.numpy()
        return out


_enc_lock = threading.Lock()


@lru_cache(maxsize=4)
def _cached(model_path: str, max_length: int, quantize: bool) -> Encoder:
    return Encoder(model_path, max_length, quantize)


def get_encoder(model_path: str | None = None, max_length: int = 64, quantize: bool = True) -> Encoder:
    """The process-wide encoder for this configuration (loaded once)."""
    path = str(embedding_model_path(model_path))
    with _enc_lock:
        return _cached(path, max_length, quantize)
