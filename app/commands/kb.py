"""`sahayak kb import|index|search|eval|calibrate|train-reranker` and the top-level `sahayak ask`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from tqdm import tqdm
from rich.table import Table

from app.commands.training_record import record_run
from app.core.errors import SahayakError
from app.core.paths import DATA_DIR
from app.core.settings import get_settings
from models.reranker import RerankerConfig
from models.reranker.card import CARD_NAME
from provenance.training import recorded_models, reranker_run
from retrieval.evaluate import calibrate_threshold, evaluate, load_queries
from retrieval.importer import import_documents
from retrieval.index import build_index, index_is_current
from retrieval.kb import open_knowledge_base, write_calibration

kb_app = typer.Typer(help="Build, search and evaluate the policy knowledge base.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(kb_app, name="kb")
    root.command("ask")(ask)


def _open(index: Optional[Path], mode: str | None = None, fast_reranker: bool = False, threshold: float | None = None):
    """The knowledge base at INDEX, or the project's default one (built from settings.kb_dir if stale)."""
    s = get_settings()
    if index is None:
        index = s.index_dir
        if not index_is_current(index, s.kb_dir):
            typer.echo(f"indexing {s.kb_dir} → {index} …", err=True)
            build_index(s.kb_dir, index, progress=True)
    cfg = RerankerConfig.fast() if fast_reranker else RerankerConfig()
    return open_knowledge_base(index, mode=mode or s.retrieval_mode, rerank_top_k=s.rerank_top_k,
                               threshold=threshold if threshold is not None else s.answer_threshold,
                               models_dir=s.models_dir, reranker_config=cfg)


@kb_app.command("import")
def import_cmd(
    paths: list[Path] = typer.Argument(..., help="Files or folders: Markdown, HTML, PDF, or CSV of Q/A pairs."),
    into: Optional[Path] = typer.Option(None, "--into", help="Corpus folder to write (default: SAHAYAK_KB_DIR)."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index to update (default: the product's, when "
                                         "importing into SAHAYAK_KB_DIR)."),
    no_index: bool = typer.Option(False, "--no-index", help="Only convert; do not re-index."),
) -> None:
    """Import a bank's documents into the knowledge base and re-index what changed.

    Each source keeps its title, URL and SHA-256 in the document's front matter; an unchanged source
    is not rewritten, so only changed documents are re-embedded. Skipped sources are listed with why."""
    s = get_settings()
    target = into or s.kb_dir
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise SahayakError(f"no such file or folder: {', '.join(missing)}")
    report = import_documents(paths, target, progress=lambda files: tqdm(files, desc="importing", unit="file"))
    for source, why in report.skipped:
        typer.echo(f"skipped {source}: {why}", err=True)
    summary: dict = {"into": str(target), **report.to_dict()}
    if not no_index:
        index = index or (s.index_dir if Path(target).resolve() == Path(s.kb_dir).resolve() else Path(target).parent / "index")
        summary["index"] = build_index(target, index, progress=True).to_dict() | {"path": str(index)}
    typer.echo(json.dumps(summary, ensure_ascii=False))


@kb_app.command("index")
def index_cmd(
    corpus: Path = typer.Option(..., "--corpus", help="Folder of Markdown files, or a CSV with id and text columns."),
    out: Path = typer.Option(..., "--out", help="Index folder to create or update (incremental)."),
    index_type: str = typer.Option("auto", "--index-type", help="auto | flat | hnsw (auto: HNSW above 50k chunks)."),
) -> None:
    """Index CORPUS into OUT: chunks, MiniLM embeddings (reused when unchanged), FAISS, metadata."""
    if index_type not in {"auto", "flat", "hnsw"}:
        raise SahayakError("--index-type must be auto, flat or hnsw")
    report = build_index(corpus, out, index_type=index_type, progress=True)
    typer.echo(json.dumps(report.to_dict()))


@kb_app.command("search")
def search_cmd(
    query: str = typer.Argument(..., help="The question or keywords."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index folder (default: the project KB)."),
    mode: Optional[str] = typer.Option(None, "--mode", help="bm25 | dense | hybrid | rerank | llm"),
    k: int = typer.Option(10, "--k", min=1, help="Number of documents."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    fast_reranker: bool = typer.Option(False, "--fast-reranker", help="Use the small test reranker configuration."),
) -> None:
    """Search the knowledge base; one result per document, with per-stage scores."""
    kb = _open(index, mode, fast_reranker)
    hits = kb.search(query, k=k, mode=mode)
    if as_json:
        typer.echo(json.dumps({"query": query, "mode": mode or kb.mode, "hits": [h.to_dict() for h in hits]},
                              ensure_ascii=False))
        return
    table = Table(title=f"{mode or kb.mode}: {query}")
    for col in ("#", "doc", "title", "score", "passage"):
        table.add_column(col)
    for h in hits:
        table.add_row(str(h.rank), h.doc_id, h.title, f"{h.score:.4f}", h.text[:90] + "…")
    Console().print(table)


@kb_app.command("eval")
def eval_cmd(
    queries: Path = typer.Option(..., "--queries", help='JSONL: {"query": ..., "relevant": ["doc-id", ...]} per line.'),
    index: Optional[Path] = typer.Option(None, "--index", help="Index folder (default: the project KB)."),
    modes: str = typer.Option("bm25,dense,hybrid,rerank", "--modes", help="Comma-separated modes to evaluate."),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON report (last line)."),
    fast_reranker: bool = typer.Option(False, "--fast-reranker", help="Use the small test reranker configuration."),
) -> None:
    """MRR@10, nDCG@10, recall@1/5/10 and latency per mode; the JSON report is the last line."""
    kb = _open(index, None, fast_reranker)
    mode_list = [m.strip() for m in modes.split(",") if m.strip()]
    if "rerank" in mode_list:
        kb.reranker()  # train/load before timing
    report = evaluate(kb, load_queries(queries), mode_list, progress=not as_json)
    if not as_json:
        cols = ["mrr@10", "ndcg@10", "recall@1", "recall@5", "recall@10", "latency_ms_p50", "latency_ms_p95"]
        table = Table(title=f"{queries} ({report['n_queries']} queries)")
        table.add_column("mode")
        for c in cols:
            table.add_column(c)
        for m, v in report["modes"].items():
            table.add_row(m, *[str(v[c]) for c in cols])
        Console(stderr=True).print(table)
    typer.echo(json.dumps(report))


@kb_app.command("calibrate")
def calibrate_cmd(
    answerable: Path = typer.Option(DATA_DIR / "kb_eval" / "dev.jsonl", "--answerable", help="In-domain questions (JSONL)."),
    unanswerable: Path = typer.Option(DATA_DIR / "kb_eval" / "unanswerable.jsonl", "--unanswerable",
                                      help="Out-of-domain questions (JSONL)."),
    split: str = typer.Option("dev", "--split", help="Use only unanswerable lines with this split ('' for all)."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index folder (default: the project KB)."),
) -> None:
    """Calibrate the "I don't know" threshold on the dev half and store it with the index."""
    kb = _open(index, "hybrid")
    pos = [q["query"] for q in load_queries(answerable)]
    neg = [q["query"] for q in load_queries(unanswerable) if not split or q.get("split") == split]
    result = calibrate_threshold(kb, pos, neg)
    write_calibration(kb.index.path, result)
    typer.echo(json.dumps(result))


@kb_app.command("train-reranker")
def train_reranker_cmd(
    index: Optional[Path] = typer.Option(None, "--index", help="Index folder (default: the project KB)."),
    fast: bool = typer.Option(False, "--fast", help="Small test configuration (trains in under a minute)."),
) -> None:
    """Train (or load from the cache) the cross-encoder reranker for the index's corpus; prints its card's path."""
    kb = _open(index, "rerank", fast)
    rr = kb.reranker()
    # A reranker trained now (or cached but not yet in this log) is recorded with the times it was trained.
    prov: dict = {"model": rr.version, "already_recorded": True}
    if recorded_models(get_settings().provenance_dir).get(rr.version) != "training":
        prov = record_run(reranker_run(rr.path), command="sahayak kb train-reranker" + (" --fast" if fast else ""))
    typer.echo(json.dumps({"path": str(rr.path), "model_card": str(rr.path / CARD_NAME), "provenance": prov,
                           **{k: rr.info[k] for k in ("version", "alpha", "train_groups")}}))


def ask(
    question: str = typer.Argument(..., help="A question about the bank's products and policies."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index folder (default: the project KB)."),
    mode: Optional[str] = typer.Option(None, "--mode", help="bm25 | dense | hybrid | rerank"),
    as_json: bool = typer.Option(False, "--json", help="Print the answer, citations and provenance as JSON."),
    generate: Optional[bool] = typer.Option(None, "--generate/--extractive",
                                            help="LLM-written (grounding-checked) or quoted answer; default: settings."),
) -> None:
    """Answer a question from the knowledge base with citations (or say "I don't know")."""
    kb = _open(index, mode)
    a = kb.answer(question, mode=mode, generate=generate)
    if as_json:
        typer.echo(json.dumps({"text": a.text, "confident": a.confident, "citations": a.citations,
                               "provenance": a.provenance}, ensure_ascii=False))
    else:
        typer.echo(a.text)
