"""What a message *does* in the conversation, given what the bot just asked.

"no" after "Please confirm: send ₹5,000 to Priya?" denies; "no, 4000" corrects; "4000" answers "How
much?" but corrects a pending confirmation and is a code when an OTP is awaited. The intent of a
message cannot tell these apart; its dialogue act, read against the context, can.

The model: the message's frozen MiniLM embedding and character n-grams, each copied once into a
shared block and once into the block of its context group (the "frustratingly easy" feature
augmentation of Daumé III, 2007), so one logistic regression learns both what an act looks like
anywhere and how a context changes it; temperature-scaled on a held-out split. Trained in seconds
from ``data/dialogue_acts.yaml``; ~1 ms per message on top of the embedding.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import yaml

from app.core.errors import SahayakError
from app.core.fingerprint import file_sha256
from app.core.fsutil import publishing
from app.text.preprocess import normalize
from app.text.script import romanise

FORMAT = 1
# Contexts share a group when the same act looks the same in them (every slot question is a slot).
GROUPS = ("none", "slot", "confirmation", "otp", "clarification", "offer")
CHAR_NGRAMS = (2, 4)

Embed = Callable[[list[str]], np.ndarray]


def context_group(context: str) -> str:
    """The feature block of a context (``slot:amount`` → ``slot``; unknown contexts → ``none``)."""
    head = (context or "none").split(":", 1)[0]
    return head if head in GROUPS else "none"


@dataclass(frozen=True)
class ActPrediction:
    """The most likely act, its calibrated probability, and the full ranking."""

    act: str
    confidence: float
    ranking: tuple[tuple[str, float], ...]

    def p(self, act: str) -> float:
        return next((p for a, p in self.ranking if a == act), 0.0)


def model_text(text: str) -> str:
    """The form the model reads: normalised, Devanagari in Hinglish spelling (callers pass this too)."""
    return romanise(normalize(text))


def load_examples(path: str | Path) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """(act descriptions, [(context, text, act), …]) from a dialogue-act YAML file."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    acts = {str(k): str(v) for k, v in (raw.get("acts") or {}).items()}
    rows = [(str(e.get("context") or "none"), str(e["text"]), str(e["act"])) for e in raw.get("examples") or []]
    unknown = sorted({a for _, _, a in rows} - set(acts))
    if unknown:
        raise SahayakError(f"{path}: examples use acts without a description: {', '.join(unknown)}")
    return acts, rows


class DialogueActClassifier:
    """Dialogue acts from (context, text); ``load``/``save``/``predict`` like every model family here."""

    def __init__(self, labels: list[str], weights: np.ndarray, bias: np.ndarray, vocabulary: dict[str, int],
                 idf: np.ndarray, temperature: float, meta: dict[str, Any], embed: Embed | None = None) -> None:
        self.labels = labels
        self.weights = weights.astype(np.float32)
        self.bias = bias.astype(np.float32)
        self.vocabulary = vocabulary
        self.idf = idf.astype(np.float32)
        self.temperature = float(temperature)
        self.meta = meta
        self.embed = embed
        self._vectorizer = None

    # --- features ------------------------------------------------------------------------------
    def _char_features(self, texts: list[str]) -> np.ndarray:
        if self._vectorizer is None:
            # sklearn is deferred: it keeps `sahayak --help` and the bank commands fast.
            from sklearn.feature_extraction.text import TfidfVectorizer

            vec = TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, lowercase=True, sublinear_tf=True,
                                  vocabulary=self.vocabulary, dtype=np.float32)
            vec.idf_ = self.idf
            self._vectorizer = vec
        return self._vectorizer.transform(texts).toarray()

    def features(self, texts: list[str], contexts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """The augmented feature matrix: [shared | block of each context group], each block [embedding | chars]."""
        return augment(self._base(texts, embeddings), contexts)

    def _base(self, texts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        """[embedding | char n-grams] per text, before the context blocks."""
        if embeddings is None:
            if self.embed is None:
                raise SahayakError("the dialogue-act model has no encoder attached (load it with embed=...)")
            embeddings = self.embed(texts)
        return np.hstack([np.asarray(embeddings, dtype=np.float32), self._char_features(texts)])

    # --- inference -----------------------------------------------------------------------------
    def predict(self, texts: list[str], contexts: Sequence[str], embeddings: np.ndarray | None = None) -> list[ActPrediction]:
        """One :class:`ActPrediction` per (text, context)."""
        if not texts:
            return []
        base = self._base(texts, embeddings)
        d = base.shape[1]
        # The augmented row is zero outside the shared block and its own context block, so only those
        # two weight blocks are multiplied (the same logits as features() @ weights.T, ~10x less work).
        logits = base @ self.weights[:, :d].T + self.bias
        for i, ctx in enumerate(contexts):
            g = 1 + GROUPS.index(context_group(ctx))
            logits[i] += base[i] @ self.weights[:, d * g: d * (g + 1)].T
        probs = softmax(logits / self.temperature)
        out = []
        for row in probs:
            order = np.argsort(-row)
            ranking = tuple((self.labels[i], round(float(row[i]), 4)) for i in order)
            out.append(ActPrediction(ranking[0][0], ranking[0][1], ranking))
        return out

    def predict_one(self, text: str, context: str, embedding: np.ndarray | None = None) -> ActPrediction:
        emb = None if embedding is None else np.asarray(embedding)[None, :]
        return self.predict([text], [context], emb)[0]

    # --- persistence ---------------------------------------------------------------------------
    def save(self, out: str | Path) -> Path:
        """Write the model folder atomically (``weights.npz`` + ``config.json``)."""
        out = Path(out)
        with publishing(out) as tmp:
            np.savez(tmp / "weights.npz", weights=self.weights, bias=self.bias, idf=self.idf)
            (tmp / "config.json").write_text(json.dumps({
                "format": FORMAT, "labels": self.labels, "temperature": self.temperature,
                "vocabulary": self.vocabulary, **self.meta}, indent=1, ensure_ascii=False), encoding="utf-8")
        return out

    @classmethod
    def load(cls, path: str | Path, embed: Embed | None = None) -> "DialogueActClassifier":
        path = Path(path)
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
            arrays = np.load(path / "weights.npz")
        except (OSError, ValueError) as exc:
            raise SahayakError(f"no dialogue-act model at {path}: run `sahayak prepare`") from exc
        if config.get("format") != FORMAT:
            raise SahayakError(f"the dialogue-act model at {path} has an old format: run `sahayak prepare`")
        meta = {k: v for k, v in config.items() if k not in ("labels", "temperature", "vocabulary", "format")}
        return cls(config["labels"], arrays["weights"], arrays["bias"], config["vocabulary"], arrays["idf"],
                   config["temperature"], meta, embed)

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "acts"))


def augment(base: np.ndarray, contexts: Sequence[str]) -> np.ndarray:
    """[x, x·[group=none], x·[group=slot], …]: a shared block plus one block per context group."""
    n, d = base.shape
    out = np.zeros((n, d * (1 + len(GROUPS))), dtype=np.float32)
    out[:, :d] = base
    for i, ctx in enumerate(contexts):
        g = GROUPS.index(context_group(ctx))
        out[i, d * (1 + g): d * (2 + g)] = base[i]
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def train_acts(data: str | Path, embed: Embed, *, seed: int = 13, c: float = 4.0,
               val_fraction: float = 0.15) -> tuple[DialogueActClassifier, dict[str, Any]]:
    """Fit the model on ``data`` (a dialogue-act YAML file); returns it with its validation metrics.

    A stratified hold-out picks the temperature and reports accuracy; the final model is refitted on
    every example with that temperature.
    """
    # sklearn is deferred: training is a prepare-time step, never on a chat command's start-up.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    t0 = time.perf_counter()
    acts, rows = load_examples(data)
    contexts = [r[0] for r in rows]
    texts = [model_text(r[1]) for r in rows]
    labels = sorted({r[2] for r in rows})
    y = np.array([labels.index(r[2]) for r in rows])
    emb = np.asarray(embed(texts), dtype=np.float32)

    def fit(idx: np.ndarray) -> tuple[Any, Any]:
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, lowercase=True, sublinear_tf=True,
                              min_df=2, max_features=20000, dtype=np.float32)
        chars = vec.fit_transform([texts[i] for i in idx]).toarray()
        x = augment(np.hstack([emb[idx], chars]), [contexts[i] for i in idx])
        clf = LogisticRegression(C=c, max_iter=3000)
        clf.fit(x, y[idx])
        return vec, clf

    def probe(vec: Any, clf: Any, idx: np.ndarray) -> np.ndarray:
        chars = vec.transform([texts[i] for i in idx]).toarray()
        return augment(np.hstack([emb[idx], chars]), [contexts[i] for i in idx]) @ clf.coef_.T + clf.intercept_

    strata = [f"{contexts[i].split(':')[0]}|{y[i]}" for i in range(len(rows))]
    counts = {s: strata.count(s) for s in set(strata)}
    strata = [s if counts[s] > 1 else "rare" for s in strata]
    tr, va = train_test_split(np.arange(len(rows)), test_size=val_fraction, random_state=seed, stratify=strata)
    vec, clf = fit(tr)
    logits = probe(vec, clf, va)
    temperature = _fit_temperature(logits, y[va])
    probs = softmax(logits / temperature)
    pred = probs.argmax(1)
    per_group: dict[str, list[int]] = {}
    for i, j in enumerate(va):
        per_group.setdefault(context_group(contexts[j]), []).append(int(pred[i] == y[j]))
    metrics = {
        "val_n": int(len(va)), "val_accuracy": round(float((pred == y[va]).mean()), 4),
        "val_accuracy_per_context": {g: round(sum(v) / len(v), 4) for g, v in sorted(per_group.items())},
        "val_ece": round(_ece(probs, y[va]), 4), "temperature": round(temperature, 4),
        "train_n": int(len(rows)),
    }
    vec, clf = fit(np.arange(len(rows)))
    meta = {"version": f"acts-{file_sha256(data)[:12]}", "data_sha256": file_sha256(data),
            "descriptions": {a: acts[a] for a in labels}, "metrics": metrics,
            "training_seconds": round(time.perf_counter() - t0, 2)}
    model = DialogueActClassifier(labels, clf.coef_, clf.intercept_, {k: int(v) for k, v in vec.vocabulary_.items()},
                                  vec.idf_, temperature, meta, embed)
    return model, metrics


def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    best, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.3), np.log(5.0), 60)):
        p = softmax(logits / t)
        nll = float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


def _ece(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    conf, pred = probs.max(1), probs.argmax(1)
    total = 0.0
    for lo in np.linspace(0, 1, bins, endpoint=False):
        m = (conf > lo) & (conf <= lo + 1 / bins)
        if m.any():
            total += m.mean() * abs(float((pred[m] == y[m]).mean()) - float(conf[m].mean()))
    return float(total)
