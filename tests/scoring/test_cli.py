"""`sahayak scoring …` commands (typer runner, real service)."""

from __future__ import annotations

import json

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


def test_score_command_rejects_bad_json(service):
    res = runner.invoke(root, ["scoring", "score", "--features", "{oops", "--url", service.base_url])
    assert res.exit_code != 0 and isinstance(res.exception, SahayakError)


def test_train_command_writes_artifact(tmp_path):
    res = runner.invoke(root, ["scoring", "train", "--n", "3000", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert (tmp_path / "loan_lr.json").exists() and (tmp_path / "MODEL_CARD.md").exists()
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
