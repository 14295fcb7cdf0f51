"""Getters only load; `prepare` trains and indexes (and is quick when everything is current)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from app.bank.seed import seed
from app.conversation.wiring import PREPARE_STEPS, build_assistant, prepare_pipeline
from app.core.errors import NotPrepared
from app.core.settings import get_settings, reset_settings
from app.core.types import MessageEnvelope
from models.acts import acts_model_dir, get_acts
from models.intents import default_model_dir, get_classifier, prepare_classifier
from retrieval import get_knowledge_base, reset_knowledge_base

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def empty_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A model cache nobody prepared (settings read from it; the process-wide copies forgotten)."""
    shared = get_settings().models_dir
    monkeypatch.setenv("SAHAYAK_MODELS_HOME", str(tmp_path / "models"))
    reset_settings()
    reset_knowledge_base()
    yield shared
    reset_settings()
    reset_knowledge_base()


def test_getters_refuse_to_train_and_name_the_command(empty_models: Path) -> None:
    settings = get_settings()
    for getter in (get_classifier, get_acts, get_knowledge_base):
        with pytest.raises(NotPrepared, match="sahayak prepare"):
            getter(settings)
    assert not (settings.models_dir / "intents-frozen").exists() and not acts_model_dir(settings).exists()
    assert not settings.index_dir.exists()


def test_a_turn_without_prepared_models_fails_clearly_instead_of_training(empty_models: Path) -> None:
    settings = get_settings()
    seed(settings.db_url)
    assistant = build_assistant(settings)
    with pytest.raises(NotPrepared, match="sahayak prepare"):
        assistant.handle(MessageEnvelope(user_id="asha", session_id="s1", channel="test", text="what's my balance"))
    assert not (settings.models_dir / "intents-frozen").exists()


def test_a_model_older_than_its_data_is_served_with_a_warning_not_retrained(
        empty_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "intents"
    shutil.copytree(ROOT / "data" / "intents", data)
    with (data / "Check_Balance.yaml").open("a", encoding="utf-8") as fh:
        fh.write("  - how much money is left in my account right now\n")
    monkeypatch.setenv("SAHAYAK_INTENT_DATA_DIR", str(data))
    reset_settings()
    settings = get_settings()
    model_dir = default_model_dir(settings)
    shutil.copytree(default_model_dir(settings.model_copy(update={"models_home": empty_models})), model_dir)
    before = (model_dir / "config.json").stat().st_mtime_ns
    with caplog.at_level(logging.WARNING):
        clf = get_classifier(settings)
    assert clf.classify("what is my balance").intent == "Check_Balance"
    assert "run `sahayak prepare`" in caplog.text
    assert (model_dir / "config.json").stat().st_mtime_ns == before  # loaded as prepared, not retrained


def test_prepare_is_quick_and_changes_nothing_when_current() -> None:
    settings = get_settings()
    model_dir = default_model_dir(settings)
    before = (model_dir / "config.json").stat().st_mtime_ns
    summaries = prepare_pipeline(settings)
    assert len(summaries) == len(PREPARE_STEPS)
    assert all("current" in line for line in summaries), summaries
    assert "(current)" in prepare_classifier(settings)
    assert (model_dir / "config.json").stat().st_mtime_ns == before
