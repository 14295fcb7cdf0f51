"""Intent classification benchmark: every approach side by side with the frozen baseline.

Default data: BANKING77 (``<repo>/../shared/datasets/banking77/train.csv``, label column
``category``), split into a seeded stratified train/validation split (the official test split
is not available here). With ``--eval-data`` the given set is used as-is instead of a split
(e.g. ``--data data/intents --eval-data data/intents_eval --label-column label``).

Prints one JSON report (last line) and, with ``--markdown bench/README.md``, rewrites the
intents section of that file. The baseline (frozen MiniLM + logistic regression) is always
measured in the same run, on the same machine state, so numbers are comparable even when
other processes load the CPU (the load average is recorded).

    nice -n 10 .venv/bin/python bench/intents.py --markdown bench/README.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "banking77" / "train.csv"

# name -> (approach, params, description)
VARIANTS: dict[str, tuple[str, dict, str]] = {
    # The baseline is the published recipe: float32 all-MiniLM-L6-v2 embeddings + logistic regression.
    "frozen-base": ("frozen", {"char_ngrams": False, "C_grid": [8.0, 32.0], "cv_folds": 3, "quantize": False},
                    "frozen MiniLM (float32) + logistic regression — baseline"),
    "frozen-base-int8": ("frozen", {"char_ngrams": False, "C_grid": [8.0, 32.0], "cv_folds": 3},
                         "frozen MiniLM (int8) + logistic regression — what int8 costs the baseline"),
    "frozen": ("frozen", {"char_ngrams": True, "C_grid": [32.0], "cv_folds": 3}, "frozen MiniLM (int8) + char 2–4-gram TF-IDF + LR (project default)"),
    "frozen-fp32": ("frozen", {"char_ngrams": True, "C_grid": [32.0], "cv_folds": 3, "quantize": False},
                    "frozen MiniLM (float32) + char 2–4-gram TF-IDF + LR"),
    "finetune": ("finetune", {}, "MiniLM fine-tuned end to end (mean pooling, LR warm start), int8 serving"),
    "finetune-mpnet": ("finetune-mpnet", {}, "all-mpnet-base-v2, top 6 of 12 layers fine-tuned on cached states of "
                                             "the bottom 6, float32 serving (preset)"),
    "ensemble-mpnet": ("ensemble-mpnet", {}, "finetune-mpnet + frozen MiniLM (float32)/char n-grams, weighted by "
                                             "log-loss on the 5 % hold-out (preset)"),
    "ensemble": ("ensemble", {}, "fine-tuned MiniLM (int8) + frozen all-mpnet-base-v2 (float32)/char n-grams, "
                                 "calibrated log-probabilities weighted by log-loss on a split neither saw"),
    "zeroshot": ("zeroshot", {"mode": "descriptions"}, "cosine to label name/description embeddings (zero-shot)"),
    "zeroshot-centroids": ("zeroshot", {"mode": "centroids"}, "cosine to per-label example centroids (few-shot)"),
    "llm": ("llm", {}, "SmolLM2-135M-Instruct few-shot, label log-likelihood decoding"),
}


def _memo_path(cache_dir: Path, tag: str) -> Path:
    return cache_dir / f"emb-{tag}.npz"


def _load_memo(enc, path: Path) -> None:  # noqa: ANN001
    enc.memo = {}
    if path.exists():
        z = np.load(path, allow_pickle=False)
        enc.memo.update(zip(z["texts"].tolist(), z["vectors"]))


def _save_memo(enc, path: Path) -> None:  # noqa: ANN001
    if enc.memo:
        texts = list(enc.memo)
        np.savez(path, texts=np.array(texts), vectors=np.stack([enc.memo[t] for t in texts]))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--label-column", default="category")
    ap.add_argument("--eval-data", type=Path, default=None, help="evaluate on this set instead of a split")
    ap.add_argument("--approaches", default="frozen-base,frozen,finetune,zeroshot,zeroshot-centroids,llm")
    ap.add_argument("--val-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--finetune-minutes", type=float, default=10.0, help="wall-clock budget of the fine-tuning loop")
    ap.add_argument("--finetune-epochs", type=float, default=2.0)
    ap.add_argument("--freeze-layers", type=int, default=2, help="bottom transformer layers kept frozen while fine-tuning")
    ap.add_argument("--finetune-lr", type=float, default=None, help="encoder learning rate (default: the trainer's)")
    ap.add_argument("--llm-queries", type=int, default=20, help="LLM is evaluated on this many validation texts only")
    ap.add_argument("--llm-calibration", type=int, default=20)
    ap.add_argument("--latency-queries", type=int, default=200)
    ap.add_argument("--work-dir", type=Path, default=ROOT / "var" / "bench" / "intents")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON report here")
    ap.add_argument("--markdown", type=Path, default=None, help="rewrite the intents section of this Markdown file")
    ap.add_argument("--from-json", type=Path, default=None, help="only render --markdown from a saved report")
    ap.add_argument("--learning-curve", default="", metavar="N",
                    help="baseline accuracy vs training rows, extrapolated to N rows (e.g. 10003, the official train size)")
    ap.add_argument("--latency-models", default=None,
                    help="only measure single-query latency of these trained model dirs (comma-separated), interleaved")
    args = ap.parse_args(argv)
    if args.latency_models:
        return interleaved_latency(args, [Path(p) for p in args.latency_models.split(",")])
    if args.from_json:
        report = json.loads(args.from_json.read_text())
        if args.markdown:
            write_markdown(report, args.markdown)
        print(json.dumps(report))
        return report

    from models.intents import PRESETS, evaluate, load_dataset, load_model, train_model
    from models.intents.train import single_query_latency
    from models.intents.data import stratified_split
    from models.intents.encoder import get_encoder

    data_path = args.data if args.data.exists() else Path(args.data)
    ds = load_dataset(data_path, label_column=args.label_column)
    if args.eval_data:
        train, val = ds, load_dataset(args.eval_data, label_column=args.label_column)
    else:
        tr, va = stratified_split(ds.labels, args.val_fraction, args.seed)
        train, val = ds.subset(tr), ds.subset(va)
    tag = hashlib.sha256(f"{data_path.resolve()}|{args.eval_data}|{args.seed}|{args.val_fraction}".encode()).hexdigest()[:10]
    work = args.work_dir / tag
    work.mkdir(parents=True, exist_ok=True)
    # Approaches share embeddings of the same texts (persisted for reruns).
    encoders = {"int8": get_encoder(None, 64, True), "fp32": get_encoder(None, 64, False)}
    for name, enc in encoders.items():
        _load_memo(enc, _memo_path(args.work_dir, name))

    report = {
        "dataset": str(data_path), "eval": str(args.eval_data) if args.eval_data else f"stratified {args.val_fraction:.0%} split, seed {args.seed}",
        "n_train": len(train), "n_eval": len(val), "labels": len(train.label_set),
        "cpu": {"cores": os.cpu_count(), "load_avg_start": list(os.getloadavg())},
        "note": "CPU shared with other processes; compare rows of this run with each other (same machine state).",
        "baseline": "frozen-base", "results": [],
    }
    for name in [a.strip() for a in args.approaches.split(",") if a.strip()]:
        approach, params, desc = VARIANTS[name]
        ev = val
        params = dict(params)
        if approach in PRESETS:  # a preset keeps its own settings; only the wall-clock budget applies
            params.setdefault("max_minutes", args.finetune_minutes)
        elif approach in ("finetune", "ensemble"):
            params.update({"max_minutes": args.finetune_minutes, "epochs": args.finetune_epochs, "freeze_layers": args.freeze_layers})
            if args.finetune_lr is not None:
                params["lr"] = args.finetune_lr
        if approach == "llm":
            params.update({"calibration_size": args.llm_calibration})
            idx = np.random.default_rng(args.seed).choice(len(val), size=min(args.llm_queries, len(val)), replace=False)
            ev = val.subset(sorted(idx.tolist()))
        print(f"[{name}] training on {len(train)} texts …", file=sys.stderr, flush=True)
        row: dict = {"name": name, "approach": approach, "description": desc}
        try:
            t0 = time.perf_counter()
            model_dir = train_model(approach, train, work / name, seed=args.seed, params=params)
            row["train_seconds"] = round(time.perf_counter() - t0, 1)
            clf = load_model(model_dir)
            lat_q = min(args.latency_queries, 10) if approach == "llm" else args.latency_queries
            metrics, _, _ = evaluate(clf, ev, latency_queries=0, progress=True)
            # Latency without the embedding memo: every query is embedded for real.
            memos = {n: enc.memo for n, enc in encoders.items()}
            for enc in encoders.values():
                enc.memo = None
            try:
                metrics.update(single_query_latency(clf, ev.texts, lat_q))
            finally:
                for n, enc in encoders.items():
                    enc.memo = memos[n]
            train_metrics = json.loads((model_dir / "metrics.json").read_text())
            row.update({k: metrics[k] for k in ("accuracy", "macro_f1", "n", "latency_ms_p50", "latency_ms_p95")})
            row.update({k: train_metrics.get(k) for k in ("temperature", "ece_before", "ece_after")})
            if "oos_recall" in metrics:
                row.update({"oos_recall": metrics["oos_recall"], "in_scope_accuracy": metrics["in_scope_accuracy"]})
            hp = json.loads((model_dir / "lineage.json").read_text())["hyperparameters"]
            row["hyperparameters"] = hp
            if PRESETS.get(approach, (approach,))[0] == "ensemble":  # each member on the same evaluation set (no extra training)
                row["members"] = {}
                for m in clf.config["members"]:
                    mm, _, _ = evaluate(load_model(model_dir / m["dir"]), ev, latency_queries=0, progress=False)
                    row["members"][m.get("name", m["approach"])] = {k: mm[k] for k in ("accuracy", "macro_f1")} | {"weight": m["weight"]}
        except Exception as exc:  # noqa: BLE001 - one failing approach must not hide the others
            row["error"] = f"{type(exc).__name__}: {exc}"
        report["results"].append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        if args.out:  # progressive: a long run stopped half-way still leaves its finished rows
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2))
        for n, enc in encoders.items():
            _save_memo(enc, _memo_path(args.work_dir, n))
    if args.learning_curve:
        report["learning_curve"] = learning_curve(encoders["fp32"], train, val, int(args.learning_curve), args.seed)
        print(json.dumps(report["learning_curve"]), file=sys.stderr, flush=True)
        _save_memo(encoders["fp32"], _memo_path(args.work_dir, "fp32"))
    report["cpu"]["load_avg_end"] = list(os.getloadavg())
    base = next((r for r in report["results"] if r["name"] == "frozen-base" and "accuracy" in r), None)
    if base:
        for r in report["results"]:
            if "accuracy" in r:
                r["delta_accuracy_vs_baseline"] = round(r["accuracy"] - base["accuracy"], 4)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
    if args.markdown:
        write_markdown(report, args.markdown)
    print(json.dumps(report))
    return report


def learning_curve(encoder, train, val, extrapolate_to: int, seed: int,  # noqa: ANN001 - Encoder, Dataset
                   fractions: tuple[float, ...] = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0), repeats: int = 3) -> dict:
    """Accuracy of the baseline (frozen MiniLM float32 + LR, C = 32) on ``val`` against the number of
    training rows, and a log-linear fit extrapolated to ``extrapolate_to`` rows.

    Published BANKING77 numbers train on all 10,003 rows and test on the official split; this says
    how much of the difference to them is only our smaller training set (the rest is the split).
    """
    from models.intents.data import stratified_split
    from models.intents.frozen import _fit_lr

    labels = train.label_set
    x, xv = encoder.encode(train.texts, progress=True), encoder.encode(val.texts, progress=True)
    y = np.array([labels.index(lab) for lab in train.labels])
    yv = np.array([labels.index(lab) for lab in val.labels])
    points = []
    for frac in fractions:
        accs = []
        for rep in range(repeats if frac < 1.0 else 1):  # random subsets vary; the full set does not
            idx = np.arange(len(y)) if frac >= 1.0 else stratified_split(train.labels, 1.0 - frac, seed + 100 + rep)[0]
            accs.append(float((_fit_lr(x[idx], y[idx], 32.0, seed).predict(xv) == yv).mean()))
        points.append({"n_train": int(len(idx)), "accuracy": round(float(np.mean(accs)), 4)})
    n = np.log([pt["n_train"] for pt in points])
    slope, intercept = np.polyfit(n, [pt["accuracy"] for pt in points], 1)
    return {"model": "frozen MiniLM float32 + LR (C=32)", "points": points,
            "gain_per_doubling": round(float(slope * np.log(2)), 4),
            "extrapolated_to": extrapolate_to,
            "extrapolated_accuracy": round(float(slope * np.log(extrapolate_to) + intercept), 4)}


def interleaved_latency(args: argparse.Namespace, model_dirs: list[Path]) -> dict:
    """Single-query latency of several models, measured round-robin (query i on every model in
    turn) so background load hits all of them alike — the fair comparison on a shared CPU."""
    from models.intents import load_dataset, load_model

    ds = load_dataset(args.eval_data or args.data, label_column=args.label_column)
    models = {str(d): load_model(d) for d in model_dirs}
    rng = np.random.default_rng(args.seed)
    texts = [ds.texts[i] for i in rng.choice(len(ds), size=min(args.latency_queries, len(ds)), replace=False)]
    times: dict[str, list[float]] = {k: [] for k in models}
    for t in texts[:5]:
        for clf in models.values():
            clf.classify(t)
    for t in texts:
        for k, clf in models.items():
            t0 = time.perf_counter()
            clf.classify(t)
            times[k].append((time.perf_counter() - t0) * 1000.0)
    report = {"mode": "interleaved single-query latency", "queries": len(texts), "load_avg": list(os.getloadavg()),
              "models": {k: {"approach": models[k].approach, "p50_ms": round(float(np.percentile(v, 50)), 2),
                             "p95_ms": round(float(np.percentile(v, 95)), 2)} for k, v in times.items()}}
    print(json.dumps(report))
    return report


def markdown_table(report: dict) -> str:
    lines = [
        f"Data: `{report['dataset']}` — train {report['n_train']}, eval {report['n_eval']} ({report['eval']}), "
        f"{report['labels']} labels. CPU: {report['cpu']['cores']} cores, load average "
        f"{report['cpu']['load_avg_start'][0]:.1f} → {report['cpu'].get('load_avg_end', [0])[0]:.1f} (shared machine).",
        "",
        "| approach | accuracy | macro-F1 | Δ acc vs baseline | p50 ms | p95 ms | train s | ECE before → after | n eval |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        if "error" in r:
            lines.append(f"| {r['name']} | error: {r['error'][:80]} | | | | | | | |")
            continue
        lines.append(
            f"| {r['name']} — {r['description']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
            f"{r.get('delta_accuracy_vs_baseline', 0):+.4f} | {r['latency_ms_p50']:.1f} | {r['latency_ms_p95']:.1f} | "
            f"{r['train_seconds']:.0f} | {r['ece_before']} → {r['ece_after']} | {r['n']} |"
        )
        base_acc = r["accuracy"] - r.get("delta_accuracy_vs_baseline", 0)
        for m, mr in (r.get("members") or {}).items():  # the ensemble's members, same evaluation set
            lines.append(f"| ↳ member `{m}` alone (weight {mr['weight']}) | {mr['accuracy']:.4f} | {mr['macro_f1']:.4f} | "
                         f"{mr['accuracy'] - base_acc:+.4f} | | | | | {r['n']} |")
    lc = report.get("learning_curve")
    if lc:
        pts = ", ".join(f"{p['n_train']}: {p['accuracy']:.4f}" for p in lc["points"])
        lines += ["", f"Learning curve of the baseline ({lc['model']}; training rows: accuracy): {pts}. "
                      f"Gain per doubling of the data {lc['gain_per_doubling']:+.4f}; extrapolated to "
                      f"{lc['extrapolated_to']} rows: {lc['extrapolated_accuracy']:.4f}."]
    return "\n".join(lines)


BEGIN, END = "<!-- intents-bench:begin -->", "<!-- intents-bench:end -->"


def write_markdown(report: dict, path: Path) -> None:
    """Replace (or append) this dataset's block inside the intents section of ``path``."""
    key = Path(report["dataset"]).name + ("" if report["eval"].startswith("stratified") else "+eval")
    begin, end = f"{BEGIN[:-4]} {key} -->", f"{END[:-4]} {key} -->"
    block = f"{begin}\n{markdown_table(report)}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
