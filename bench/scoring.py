"""Encrypted loan scoring benchmark (TenSEAL CKKS over real HTTP on loopback).

Starts the scoring service as a child process on a free 127.0.0.1 port (or uses --url),
then measures single-customer and batched encrypted scoring, the encrypted polynomial
sigmoid, and — in the same run — the plaintext scoring they replace. With --with-training
it also runs the encrypted-training comparison and the breast-cancer reproduction.
Prints one JSON object as its last line.

    python bench/scoring.py [--n-single 200] [--url http://127.0.0.1:8765] [--out bench/results/scoring.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.environment import apply_offline_env  # noqa: E402 - after the sys.path line

apply_offline_env()

from privacy.experiments.benchmark import run_benchmark  # noqa: E402
from privacy.experiments.runs import run_all  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="benchmark a running service instead of a child one")
    parser.add_argument("--n-single", type=int, default=200)
    parser.add_argument("--n-prob", type=int, default=50)
    parser.add_argument("--with-training", action="store_true", help="also run encrypted training (slower)")
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()

    report = run_benchmark(args.url, n_single=args.n_single, n_prob=args.n_prob,
                           progress=lambda m: print(m, file=sys.stderr))
    targets = {"max_abs_error<=1e-3": report["max_abs_error"] <= 1e-3,
               "decision_agreement==1": report["decision_agreement"] == 1.0,
               "single_e2e_p50<=50ms": report["single"]["e2e_ms_p50"] <= 50,
               "single_e2e_p50<=25ms(stretch)": report["single"]["e2e_ms_p50"] <= 25,
               "batched>=10000/s": report["batched"]["scores_per_s"] >= 10_000,
               "request<=500KB": report["single"]["request_bytes"] <= 500_000}
    report["targets_met"] = targets
    if args.with_training:
        print("encrypted training", file=sys.stderr)
        report["encrypted_training"] = run_all()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
