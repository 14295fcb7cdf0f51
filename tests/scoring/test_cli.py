"""`sahayak scoring …` commands (typer runner, real service)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from app.cli import root

runner = CliRunner()


def test_score_command_prints_one_json_object(service):
    feats = json.dumps({"monthly_income": 80000, "loan_amount": 400000, "tenure_months": 48})
    res = runner.invoke(root, ["scoring", "score", "--features", feats, "--url", service.base_url])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert 0 <= out["probability"] <= 1 and out["request_id"] and "e2e_ms" in out["timings"]


def test_score_command_rejects_bad_json(service):
    from app.errors import SahayakError

    res = runner.invoke(root, ["scoring", "score", "--features", "{oops", "--url", service.base_url])
    assert res.exit_code != 0 and isinstance(res.exception, SahayakError)


def test_train_command_writes_artifact(tmp_path):
    res = runner.invoke(root, ["scoring", "train", "--n", "3000", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert (tmp_path / "loan_lr.json").exists() and (tmp_path / "MODEL_CARD.md").exists()
    assert out["dataset_sha256"] and "gender" in out["fairness"]
