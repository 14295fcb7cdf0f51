"""The reranker's model card: generated from reranker.json, written on training and for cached models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.reranker import RerankerConfig
from models.reranker.card import CARD_NAME, NOT_RECORDED, render_model_card, write_model_card

RECORD = {
    "format": 1, "config": {"queries_per_chunk": 2, "negatives": 3, "max_groups": 48, "num_layers": 2,
                            "max_length": 96, "quantize": True, "lr": 1e-4},
    "base_model": "minilm-test", "corpus_fingerprint": "f" * 64, "train_groups": 40, "val_groups": 4,
    "query_kinds": {"keywords": 12, "span": 20, "title": 8}, "version": "cross-encoder/minilm-l2-ffff-1234",
    "alpha": 0.7, "val_mrr": {"0.0": 0.6125, "0.7": 0.8333, "1.0": 0.7917}, "train_seconds": 31.5,
    "trained_at": "2026-01-02T03:04:05+00:00", "git_commit": "abc123",
}


def _metrics_named(card: str, info: dict) -> None:
    """The card carries every validation MRR, the chosen α and the held-out count from the record."""
    assert "MRR@10" in card and f"α = {info['alpha']}" in card
    for alpha, mrr in info["val_mrr"].items():
        assert f"| {alpha} | {mrr} |" in card
    assert f"{info['val_groups']} held out" in card


def test_card_is_rendered_from_the_record() -> None:
    card = render_model_card(RECORD)
    _metrics_named(card, RECORD)
    for text in (RECORD["version"], RECORD["corpus_fingerprint"], RECORD["base_model"], "abc123",
                 "2026-01-02T03:04:05+00:00", "Intended use", "Limitations", "Hard negatives", "| `max_length` | 96 |"):
        assert text in card
    assert "first stage only (α = 0): 0.6125" in card and "cross-encoder only (α = 1): 0.7917" in card
    for kind in RECORD["query_kinds"]:
        assert f"`{kind}` ({RECORD['query_kinds'][kind]} groups)" in card


def test_a_record_without_lineage_says_so() -> None:
    old = {k: v for k, v in RECORD.items() if k not in {"git_commit", "trained_at"}} | {"val_mrr": {}, "val_groups": 0}
    card = render_model_card(old)
    assert f"commit `{NOT_RECORDED}`" in card and f"**Trained:** {NOT_RECORDED}" in card
    assert "was not validated" in card


@pytest.mark.slow
def test_trained_reranker_has_a_card_naming_its_metrics(small_index: Path, tmp_path: Path) -> None:
    from app.cli import root
    from app.core.settings import get_settings
    from retrieval.rerank import reranker_for_index
    from retrieval.kb import open_knowledge_base

    # the same fast reranker test_reranker.py trains, from the persistent test cache
    kb = open_knowledge_base(small_index, mode="rerank", rerank_top_k=10, models_dir=get_settings().models_dir,
                             reranker_config=RerankerConfig.fast())
    rr = kb.reranker()
    card_path = rr.path / CARD_NAME
    assert card_path.exists()
    card = card_path.read_text(encoding="utf-8")
    assert card == render_model_card(rr.info)
    _metrics_named(card, rr.info)
    assert rr.info["corpus_fingerprint"] in card and rr.version in card

    # a model cached before cards existed gets one when it is loaded
    copy = tmp_path / "reranker" / rr.path.name
    shutil.copytree(rr.path, copy)
    (copy / CARD_NAME).unlink()
    again = reranker_for_index(kb.index, models_dir=tmp_path, config=RerankerConfig.fast())
    assert again.path == copy and (copy / CARD_NAME).read_text(encoding="utf-8") == card
    (copy / CARD_NAME).write_text("outdated card", encoding="utf-8")  # the card follows the record on load
    reranker_for_index(kb.index, models_dir=tmp_path, config=RerankerConfig.fast())
    assert (copy / CARD_NAME).read_text(encoding="utf-8") == card

    # `sahayak kb train-reranker` points at the card
    res = CliRunner().invoke(root, ["kb", "train-reranker", "--index", str(small_index), "--fast"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert Path(out["model_card"]) == card_path
    # ... and records its training in the provenance log, once, with the times the trainer stored.
    from provenance.verify import verify_log

    assert out["provenance"]["model"] == rr.version
    recs = [r.record for r in verify_log(get_settings().provenance_dir, settings=get_settings()).records]
    runs = [r for r in recs if r["type"] == "training" and r["model_id"] == rr.version]
    from datetime import datetime

    assert len(runs) == 1
    assert datetime.fromisoformat(runs[0]["ended_at"]) == datetime.fromisoformat(rr.info["trained_at"])
    again = json.loads(CliRunner().invoke(root, ["kb", "train-reranker", "--index", str(small_index),
                                                 "--fast"]).stdout.strip().splitlines()[-1])
    assert again["provenance"] == {"model": rr.version, "already_recorded": True}


def test_write_model_card_writes_next_to_the_record(tmp_path: Path) -> None:
    (tmp_path / "reranker.json").write_text(json.dumps(RECORD), encoding="utf-8")
    path = write_model_card(tmp_path)
    assert path == tmp_path / CARD_NAME and path.read_text(encoding="utf-8") == render_model_card(RECORD)


def test_a_zero_fusion_weight_is_called_out() -> None:
    card = render_model_card(RECORD | {"alpha": 0.0, "val_mrr": {"0.0": 0.9, "1.0": 0.7}})
    assert "did not help" in card and "first stage's order" in card
    assert "did not help" not in render_model_card(RECORD)
