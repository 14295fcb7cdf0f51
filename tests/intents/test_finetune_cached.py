"""Fine-tuning only the top layers from cached lower-layer states (MiniLM/BERT and mpnet)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.intents.test_other_approaches import TINY

TEXTS = ["block my debit card", "what is my balance please", "send 2,500 rupees to Ravi tomorrow", "hi"]


def _load(name: str | None):  # noqa: ANN202
    from transformers import AutoModel, AutoTokenizer

    from models.embeddings import embedding_model_path

    path = str(embedding_model_path(name))
    return AutoModel.from_pretrained(path, local_files_only=True).eval(), AutoTokenizer.from_pretrained(path, local_files_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", [None, "all-mpnet-base-v2"], ids=["minilm-bert", "mpnet"])
def test_lower_states_plus_top_layers_equal_the_full_model(name):
    """Cached states + the remaining layers give the model's own output, token for token."""
    import torch

    from models.intents.finetune import _pad, lower_layer_states, run_layers

    model, tok = _load(name)
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        full = model(**enc).last_hidden_state
    start = model.config.num_hidden_layers // 2
    states = lower_layer_states(model, tok, TEXTS, start, 64)
    assert [s.shape[0] for s in states] == enc["attention_mask"].sum(1).tolist()  # unpadded
    hidden, mask = _pad(states)
    with torch.inference_mode():
        top = run_layers(model, hidden, mask, start, None)
    for j in range(len(TEXTS)):
        n = int(mask[j].sum())
        assert torch.allclose(top[j, :n], full[j, :n], atol=2e-4), TEXTS[j]


@pytest.mark.slow
def test_cached_finetune_trains_only_the_top_layers_and_classifies(tmp_path):
    from safetensors.numpy import load_file

    from models.embeddings import embedding_model_path
    from models.intents import load_model, train_model

    out = train_model("finetune", TINY, tmp_path / "ft", fast=True,
                      params={"epochs": 3, "batch_size": 8, "val_fraction": 0.3, "freeze_layers": 4,
                              "cache_frozen_layers": True, "quantize": False, "lr": 2e-4})
    hp = json.loads((out / "lineage.json").read_text())["hyperparameters"]
    assert hp["cache_frozen_layers"] is True and hp["steps"] >= 3
    base = load_file(str(Path(embedding_model_path(None)) / "model.safetensors"))
    tuned = load_file(str(out / "encoder" / "model.safetensors"))

    def find(tensors: dict, suffix: str) -> np.ndarray:
        return next(v for k, v in tensors.items() if k.endswith(suffix))

    for frozen in ("embeddings.word_embeddings.weight", "encoder.layer.3.attention.self.query.weight"):
        assert np.array_equal(find(base, frozen), find(tuned, frozen)), frozen
    assert not np.allclose(find(base, "encoder.layer.5.attention.self.query.weight"),
                           find(tuned, "encoder.layer.5.attention.self.query.weight"))
    clf = load_model(out)
    assert clf.classify("please transfer 700 rupees to Ravi").intent == "Fund_Transfer"
    assert clf.classify("what's my account balance").intent == "Check_Balance"


@pytest.mark.slow
def test_the_mpnet_preset_trains_its_top_half_and_serves_in_float32(tmp_path):
    """``finetune-mpnet`` resolves to the fine-tune approach with its preset; explicit params win."""
    from models.intents import load_model, train_model

    out = train_model("finetune-mpnet", TINY, tmp_path / "mp", fast=True,
                      params={"epochs": 2, "batch_size": 8, "val_fraction": 0.3, "lr": 2e-4})
    config = json.loads((out / "config.json").read_text())
    lineage = json.loads((out / "lineage.json").read_text())
    hp = lineage["hyperparameters"]
    assert config["approach"] == "finetune" and config["preset"] == "finetune-mpnet" and lineage["preset"] == "finetune-mpnet"
    assert config["quantize"] is False and hp["base_encoder"] == "all-mpnet-base-v2"
    assert hp["freeze_layers"] == 6 and hp["cache_frozen_layers"] is True and hp["lr"] == 2e-4
    assert json.loads((out / "encoder" / "config.json").read_text())["model_type"] == "mpnet"
    # bf16 autocast is asked for by the preset and used only where the CPU has it natively; either
    # way the stored weights (and so serving) stay float32.
    from safetensors.numpy import load_file

    from models.intents.finetune import cpu_has_bf16

    assert hp["bf16"] is cpu_has_bf16()
    assert {str(t.dtype) for t in load_file(str(out / "encoder" / "model.safetensors")).values()} == {"float32"}
    # The training time is split into its phases (before the loop, the loop, after it), which
    # together cover the whole trainer call (each is rounded to 0.1 s).
    phases = [hp["warm_start_seconds"], hp["fine_tune_seconds"], hp["after_fine_tune_seconds"]]
    assert all(p >= 0 for p in phases) and hp["fine_tune_seconds"] > 0
    training_s = json.loads((out / "metrics.json").read_text())["training_seconds"]
    assert abs(sum(phases) - training_s) < 1.0
    clf = load_model(out)
    assert clf.classify("please transfer 700 rupees to Ravi").intent == "Fund_Transfer"


def test_an_unknown_approach_lists_the_presets_too(tmp_path):
    from app.core.errors import SahayakError
    from models.intents import train_model

    with pytest.raises(SahayakError, match="finetune-mpnet"):
        train_model("finetune-large", TINY, tmp_path / "x")


def test_a_hold_out_too_small_for_the_data_is_refused_before_training(tmp_path):
    """The preset holds out 5 %: on a handful of rows per label that is none, and the temperature
    needs held-out rows, so the trainer says so instead of failing after fine-tuning."""
    from app.core.errors import SahayakError
    from models.intents import train_model

    with pytest.raises(SahayakError, match="holds out no rows"):
        train_model("finetune-mpnet", TINY, tmp_path / "x", fast=True)
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_the_mpnet_ensemble_preset_combines_fine_tuned_mpnet_with_frozen_minilm(tmp_path):
    """``ensemble-mpnet``: the finetune-mpnet member plus a float32 MiniLM + char n-gram member,
    weighted on the shared hold-out; the member params come from the preset, explicit params win."""
    from models.intents import load_model, train_model

    out = train_model("ensemble-mpnet", TINY, tmp_path / "em", fast=True,
                      params={"epochs": 2, "batch_size": 8, "val_fraction": 0.3, "lr": 2e-4})
    config = json.loads((out / "config.json").read_text())
    hp = json.loads((out / "lineage.json").read_text())["hyperparameters"]
    assert config["approach"] == "ensemble" and config["preset"] == "ensemble-mpnet"
    assert [m["name"] for m in config["members"]] == ["finetune", "frozen"]
    assert sum(m["weight"] for m in config["members"]) == pytest.approx(1.0)
    ft = json.loads((out / "members" / "finetune" / "lineage.json").read_text())["hyperparameters"]
    assert ft["base_encoder"] == "all-mpnet-base-v2" and ft["freeze_layers"] == 6 and ft["val_fraction"] == 0.3
    fr = json.loads((out / "members" / "frozen" / "config.json").read_text())
    assert fr["embedding_model"] is None and fr["quantize"] is False and fr["char_ngrams"] is True
    assert hp["frozen_refit_on_all_rows"] is True and len(hp["val_log_loss_by_weight"]) == 11
    clf = load_model(out)
    assert clf.batch_invariant  # both members are float32: evaluation may batch
    assert clf.classify("please transfer 700 rupees to Ravi").intent == "Fund_Transfer"
