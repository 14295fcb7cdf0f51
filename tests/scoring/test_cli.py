"""`sahayak scoring …` commands (typer runner, real service)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from app.cli import root
from app.core.errors import SahayakError

runner = CliRunner()


def test_score_command_prints_one_json_object(service):
    feats = json.dumps({"monthly_income": 80000, "loan_amount": 400000, "tenure_months": 48})
    res = runner.invoke(root, ["scoring", "score", "--features", feats, "--url", service.base_url])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert 0 <= out["probability"] <= 1 and out["request_id"] and "e2e_ms" in out["timings"]


def test_probability_mode_cli_declines_a_clear_decline(service):
    # A real subprocess, as an operator runs it.
    feats = json.dumps({"monthly_income": 12000, "existing_emis": 9000, "loan_amount": 4000000, "tenure_months": 12,
                        "missed_payments_24m": 12, "credit_utilisation": 1.0, "recent_enquiries_6m": 15})
    root_dir = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-m", "app.cli", "scoring", "score", "--mode", "probability",
                          "--features", feats, "--url", service.base_url], cwd=root_dir, capture_output=True,
                         text=True, timeout=180, env=dict(os.environ))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["mode"] == "probability" and out["approved"] is False and out["probability"] < 0.2
    assert out["clipped"]


def test_score_command_rejects_bad_json(service):
    res = runner.invoke(root, ["scoring", "score", "--features", "{oops", "--url", service.base_url])
    assert res.exit_code != 0 and isinstance(res.exception, SahayakError)


def test_train_command_writes_artifact(tmp_path):
    res = runner.invoke(root, ["scoring", "train", "--n", "3000", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert (tmp_path / "loan_lr.json").exists() and (tmp_path / "model_card.md").exists()
    assert out["dataset_sha256"] and "gender" in out["fairness"]


def test_bench_command_prints_the_report_as_last_line(service):
    res = runner.invoke(root, ["scoring", "bench", "--json", "--url", service.base_url,
                               "--n-single", "5", "--n-prob", "2"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout.strip().splitlines()[-1])
    for key in ("encrypt_ms_p50", "server_ms_p50", "decrypt_ms_p50", "e2e_ms_p50", "e2e_ms_p95",
                "request_bytes", "response_bytes"):
        assert key in rep["single"]
    assert rep["batched"]["batch_size"] == 4096 and rep["batched"]["scores_per_s"] > 0
    assert rep["max_abs_error"] <= 1e-3 and rep["decision_agreement"] == 1.0
    assert rep["context_bytes"] > 0 and rep["plaintext_ms_p50"] > 0 and rep["overhead_ratio"] > 1
