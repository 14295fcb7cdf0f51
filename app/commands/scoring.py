"""`sahayak scoring …`: serve, score, train, bench, train-encrypted (encrypted loan scoring)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from app.commands.training_record import record_run
from app.core.errors import SahayakError
from app.core.settings import get_settings
from models.scoring.train import MITIGATIONS
from models.scoring.train import train as train_model
from privacy.client import ScoringClient
from privacy.experiments.benchmark import run_benchmark
from privacy.experiments.runs import run_all
from provenance.training import scoring_run

scoring = typer.Typer(help="Encrypted loan-eligibility scoring (TenSEAL CKKS).", no_args_is_help=True)


@scoring.command("serve")
def serve(host: Optional[str] = typer.Option(None, help="Bind address (default settings.scoring_host, loopback)"),
          port: Optional[int] = typer.Option(None, help="Port (default settings.scoring_port)"),
          log_level: str = typer.Option("warning", help="uvicorn log level (payloads are never logged)")) -> None:
    """Run the scoring service (FastAPI + uvicorn) in the foreground."""
    # The FastAPI app: imported only by the command that serves it (FastAPI + uvicorn ~0.15 s of start-up).
    from privacy.service import run

    s = get_settings()
    typer.echo(f"scoring service on http://{host or s.scoring_host}:{port or s.scoring_port}/v1", err=True)
    run(host, port, settings=s, log_level=log_level)


@scoring.command("score")
def score(features: str = typer.Option(..., "--features", help='JSON object, e.g. {"monthly_income": 80000, '
                                       '"loan_amount": 500000, "tenure_months": 36}'),
          url: Optional[str] = typer.Option(None, help="Service URL (default settings.scoring_base_url)"),
          mode: str = typer.Option("logit", help="logit (exact sigmoid after decryption) | probability")) -> None:
    """Encrypt one applicant, score on the service, decrypt; prints one JSON object."""
    try:
        feats = json.loads(features)
    except ValueError as exc:
        raise SahayakError(f"--features is not valid JSON ({exc.msg})") from None
    if not isinstance(feats, dict) or not all(isinstance(v, (int, float)) for v in feats.values()):
        raise SahayakError("--features must be a JSON object of numbers")
    client = ScoringClient(base_url=url, preset="probability" if mode == "probability" else "logit")
    try:
        r = client.score(feats, mode=mode)
    finally:
        client.close()
    typer.echo(json.dumps({"probability": round(r.probability, 6), "approved": r.approved, "factors": r.factors,
                           "request_id": r.request_id, "model_version": r.model_version, "mode": r.mode,
                           "assumed": sorted(r.assumed), "clipped": r.clipped, "timings": {k: round(v, 3) for k, v in r.timings.items()}}))


@scoring.command("train")
def train(out: Optional[Path] = typer.Option(None, help="Output folder (default settings.models_dir/scoring)"),
          n: int = typer.Option(20_000, help="Synthetic applications to generate"),
          seed: int = typer.Option(20240611, help="Generator seed"),
          mitigation: str = typer.Option("reweigh+penalty", help="Fairness mitigation: none | reweigh | "
                                         "reweigh+penalty (see docs/scoring.md)")) -> None:
    """Generate the synthetic dataset, train the logistic regression, export weights + model card."""
    if mitigation not in MITIGATIONS:
        raise SahayakError(f"--mitigation must be one of {', '.join(MITIGATIONS)}")
    console = Console(stderr=True)
    with console.status(f"generating {n} applications and training ({mitigation})"):
        model = train_model(n=n, seed=seed, mitigation=mitigation)
    path = model.save(out or get_settings().models_dir / "scoring")
    prov = record_run(scoring_run(model), command=f"sahayak scoring train --n {n} --seed {seed} --mitigation {mitigation}")
    typer.echo(json.dumps({"artifact": str(path), "provenance": prov, "metrics": model.metrics,
                           "dataset_sha256": model.dataset_sha256, "fairness": model.fairness_differences,
                           "mitigation": model.mitigation_summary}))


@scoring.command("bench")
def bench(as_json: bool = typer.Option(False, "--json", help="Print only the JSON report (last line)"),
          url: Optional[str] = typer.Option(None, help="Benchmark a running service instead of a child one"),
          n_single: int = typer.Option(200, help="Single-customer requests"),
          n_prob: int = typer.Option(50, help="Requests in probability mode")) -> None:
    """Benchmark encrypted vs plaintext scoring over real HTTP on loopback."""
    console = Console(stderr=True)
    with console.status("benchmarking encrypted scoring") as status:
        report = run_benchmark(url, n_single=n_single, n_prob=n_prob,
                               progress=lambda m: status.update(m))
    if not as_json:
        s, b = report["single"], report["batched"]
        console.print(f"single e2e p50 {s['e2e_ms_p50']} ms (p95 {s['e2e_ms_p95']}), request {s['request_bytes']} B, "
                      f"batched {b['scores_per_s']} scores/s, max |Δp| {report['max_abs_error']:.2e}, "
                      f"agreement {report['decision_agreement']:.2%}, overhead ×{report['overhead_ratio']}")
    typer.echo(json.dumps(report))


@scoring.command("train-encrypted")
def train_encrypted(as_json: bool = typer.Option(False, "--json", help="Print only the JSON report"),
                    n: int = typer.Option(256, help="Training rows (encrypted, one per slot)"),
                    epochs: int = typer.Option(6, help="Gradient steps")) -> None:
    """Train logistic and linear regression on encrypted data; compare with plaintext training."""
    console = Console(stderr=True)
    with console.status("training on encrypted data"):
        report = run_all(n=n, epochs=epochs)
    if not as_json:
        console.print_json(json.dumps(report))
    typer.echo(json.dumps(report))


def register(root: typer.Typer) -> None:
    """Attach `sahayak scoring …` to the root CLI."""
    root.add_typer(scoring, name="scoring")
