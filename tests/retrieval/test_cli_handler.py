"""The kb CLI and the FAQ handler, end to end on a real small index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SAHAYAK_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_index_search_eval(small_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    r = _cli("kb", "index", "--corpus", str(small_corpus), "--out", str(out), home=tmp_path)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert rep["n_docs"] == 20 and rep["embedded"] == rep["n_chunks"]

    r = _cli("kb", "search", "--index", str(out), "--mode", "bm25", "--k", "3", "--json", "RTGS minimum amount",
             home=tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["hits"][0]["doc_id"] == "pay-rtgs" and len(res["hits"]) == 3

    q = tmp_path / "q.jsonl"
    q.write_text("\n".join(json.dumps(x) for x in [
        {"query": "smallest amount for RTGS", "relevant": ["pay-rtgs"]},
        {"query": "senior citizen deposit bonus rate", "relevant": ["dep-senior-citizen"]},
    ]))
    r = _cli("kb", "eval", "--index", str(out), "--queries", str(q), "--modes", "bm25,dense,hybrid", "--json",
             home=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(report["modes"]) == {"bm25", "dense", "hybrid"}
    for m in report["modes"].values():
        assert {"mrr@10", "ndcg@10", "recall@1", "recall@5", "recall@10", "latency_ms_p50", "latency_ms_p95"} <= set(m)
        assert 0.0 <= m["mrr@10"] <= 1.0

    r = _cli("kb", "search", "--index", str(tmp_path / "missing"), "x", home=tmp_path)
    assert r.returncode == 1 and "no index" in r.stderr and "Traceback" not in r.stderr


def test_faq_handler_answers_and_refuses(small_kb) -> None:
    from app.core.settings import get_settings
    from handlers.base import HandlerContext
    from handlers.registry import get_handler

    spec = get_handler("FAQ")
    assert spec is not None and not spec.requires_auth

    def ctx(text: str) -> HandlerContext:
        return HandlerContext(session_id="s", user_id=None, customer_id=None, text=text, entities={}, slots={},
                              settings=get_settings(), bank=None, services={"knowledge_base": small_kb})

    ok = spec.fn(ctx("how much is the card replacement fee"))
    assert ok.outcome == "success" and "₹200" in ok.text
    assert ok.data["citations"][0]["doc_id"] == "card-replace"
    assert ok.data["offer_handoff"] is False and ok.data["retrieval"]["passage_ids"]

    no = spec.fn(ctx("what's the capital of France"))
    assert no.outcome == "refused" and no.data["offer_handoff"] is True
    assert "I don't know" in no.text and no.data["citations"] == []


def test_prepare_builds_and_calibrates_then_the_getter_loads(small_corpus: Path, tmp_path: Path, monkeypatch) -> None:
    import shutil

    from app.core.settings import reset_settings
    from app.core.errors import NotPrepared
    from retrieval import get_knowledge_base, prepare_knowledge_base, reset_knowledge_base

    kb_dir = tmp_path / "data" / "kb"
    shutil.copytree(small_corpus, kb_dir)
    ev = tmp_path / "data" / "kb_eval"
    ev.mkdir()
    (ev / "dev.jsonl").write_text(json.dumps({"query": "UPI per transaction limit", "relevant": ["pay-upi-limits"]}) + "\n")
    (ev / "unanswerable.jsonl").write_text(json.dumps({"query": "who wrote Hamlet", "relevant": [], "split": "dev"}) + "\n")
    monkeypatch.setenv("SAHAYAK_KB_DIR", str(kb_dir))
    monkeypatch.setenv("SAHAYAK_KB_INDEX_DIR", str(tmp_path / "index"))
    reset_settings()
    reset_knowledge_base()
    try:
        with pytest.raises(NotPrepared, match="sahayak prepare"):
            get_knowledge_base()  # the getter only loads: indexing is `sahayak prepare`'s job
        assert not (tmp_path / "index").exists()
        assert "built" in prepare_knowledge_base()
        assert "current" in prepare_knowledge_base()
        kb = get_knowledge_base()
        assert kb is get_knowledge_base()
        assert (tmp_path / "index" / "calibration.json").exists()
        assert 0.0 < kb.threshold < 1.0
        assert kb.answer("UPI per transaction limit").confident
    finally:
        reset_knowledge_base()
        reset_settings()
