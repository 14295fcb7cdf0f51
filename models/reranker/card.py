"""``model_card.md`` for a trained cross-encoder reranker, generated from its ``reranker.json`` record.

The one card shape of :mod:`models.card` (as the intent and scoring models use): intended use,
training data, hyper-parameters, the held-out metrics the record holds, limitations and the commit.
The card states only what the record says; anything the record lacks is written as "not recorded".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.card import CARD_NAME, NOT_RECORDED, ModelCard, recorded

__all__ = ["CARD_NAME", "NOT_RECORDED", "model_card", "render_model_card", "write_model_card"]


_QUERY_KINDS = {
    "span": "a cropped, stop-word-thinned span of one sentence (inverse cloze: the sentence is removed from the "
            "positive passage half of the time)",
    "keywords": "a few high-IDF keywords of the chunk",
    "title": "title words of the chunk's document",
}


def _best_alpha_line(info: dict[str, Any]) -> str:
    """The validation MRR of the chosen fusion weight against pure first-stage and pure cross-encoder."""
    mrr = info.get("val_mrr") or {}
    if not mrr:
        return (f"No held-out synthetic queries (the corpus gave {info.get('train_groups', 0)} groups, too few to "
                f"split), so α = {info.get('alpha')} was not validated.")
    alpha = str(float(info["alpha"]))
    parts = [f"α = {info['alpha']}: {mrr.get(alpha, NOT_RECORDED)}"]
    for a, name in (("0.0", "first stage only (α = 0)"), ("1.0", "cross-encoder only (α = 1)")):
        if a != alpha and a in mrr:
            parts.append(f"{name}: {mrr[a]}")
    line = "Validation MRR@10 (document level) — " + "; ".join(parts) + "."
    if info.get("alpha_synthetic_val") is not None and info["alpha_synthetic_val"] != info["alpha"]:
        line += (f" These queries would pick α = {info['alpha_synthetic_val']}; the configured α = {info['alpha']}"
                 " was chosen on the knowledge base's dev half of written questions, because synthetic queries"
                 " share the cross-encoder's lexical bias and overrate it.")
    if float(info["alpha"]) == 0.0:
        line += (" The cross-encoder did not help on these queries, so α = 0 and `rerank` mode returns the first"
                 " stage's order.")
    return line


def model_card(info: dict[str, Any]) -> ModelCard:
    """The card for one reranker's training record (the parsed ``reranker.json``)."""
    cfg: dict[str, Any] = info.get("config") or {}
    kinds: dict[str, int] = info.get("query_kinds") or {}
    mrr: dict[str, float] = info.get("val_mrr") or {}
    kind_lines = "\n".join(f"  - `{k}` ({n} groups): {_QUERY_KINDS.get(k, k)}" for k, n in kinds.items())
    hp_rows = "\n".join(f"| `{k}` | {v} |" for k, v in cfg.items())
    mrr_rows = "\n".join(f"| {a} | {v} |" for a, v in mrr.items()) or f"| — | {NOT_RECORDED} |"
    c = lambda key: recorded(cfg.get(key))  # noqa: E731 - a config value or "not recorded"
    return ModelCard(
        title="Cross-encoder reranker",
        version=info.get("version"),
        trained_at=info.get("trained_at"),
        git_commit=info.get("git_commit"),
        train_seconds=info.get("train_seconds"),
        provenance=f"Generated from `reranker.json` (format {info.get('format')}).",
        intended_use="""Reorders the top passages of the hybrid (BM25 + MiniLM bi-encoder) first stage for a question about
the policies in the Sahayak knowledge base, before the calibrated answer threshold decides whether
to answer with citations or say "I don't know". It ranks passages; it does not decide anything about
a customer, and answers still quote the retrieved text. Used only in `rerank` mode
(`SAHAYAK_RETRIEVAL_MODE`; the default is `hybrid`).""",
        model=f"""The first {c('num_layers')} layers of `{recorded(info.get('base_model'))}` read
(query, passage) together (at most {c('max_length')} tokens); the query tokens are
mean-pooled into one linear unit. {'Linear layers are int8-quantised at inference. ' if cfg.get('quantize') else ''}Final
score = α·z(cross-encoder) + (1 − α)·z({info.get('fusion', 'first stage')}) over the first stage's top
candidates, with α = {recorded(info.get('alpha'))}.""",
        data=f"""- Corpus: the indexed knowledge base with fingerprint `{recorded(info.get('corpus_fingerprint'))}` (the
  cache folder is named after it; another corpus trains another reranker). No customer data, no hand labels.
- Synthetic queries (`retrieval/pairs.py`), {c('queries_per_chunk')} per chunk (more
  on small corpora), wrapped in generic question templates:
{kind_lines or f'  - {NOT_RECORDED}'}
- Hard negatives: {c('negatives')} per query — all but one sampled from the first stage's top
  10 chunks from *other* documents for that query, plus one random chunk of another document — trained with a
  listwise softmax loss (1 positive against its negatives).
- {recorded(info.get('train_groups'))} training groups (capped at {c('max_groups')});
  {recorded(info.get('val_groups'))} held out for validation, from documents never trained on.""",
        metrics_heading="Held-out metrics (synthetic validation queries)",
        metrics=f"""{_best_alpha_line(info)}

| α | MRR@10 |
|---|---|
{mrr_rows}

These are synthetic queries from the same corpus, so they overstate quality on real questions. The
reranker's effect on written customer questions is measured by `sahayak kb eval` and
`bench/retrieval.py` (docs/retrieval.md), not by this record.""",
        extra=[("Hyper-parameters", f"| setting | value |\n|---|---|\n{hp_rows}")],
        limitations=[
            """Synthetic queries are lexical (spans, keywords, titles); paraphrased real questions, Hinglish and
  long multi-part questions rank worse than the validation numbers suggest.""",
            f"""Short training on shared CPU cores ({c('epochs')} epoch(s) over at most
  {c('max_groups')} groups), {c('num_layers')} MiniLM layers and {c('max_length')}-token inputs:
  evidence late in a long passage is cut off.""",
            """English MiniLM base; the fusion weight α limits the damage when the cross-encoder is wrong (α = 0
  would be the first stage alone).""",
            """Retrained, not updated: a changed corpus gets a new fingerprint and a new model; this card then
  describes the old one only.""",
        ],
    )


def render_model_card(info: dict[str, Any]) -> str:
    """Markdown card for one reranker's training record (the parsed ``reranker.json``)."""
    return model_card(info).render()


def write_model_card(model_dir: str | Path) -> Path:
    """Write ``model_card.md`` next to ``reranker.json`` in ``model_dir`` and return its path."""
    d = Path(model_dir)
    info = json.loads((d / "reranker.json").read_text(encoding="utf-8"))
    return model_card(info).save(d)
