"""Fixtures for the intent tests: the default classifier (trained once, cached) and a CLI runner."""

from __future__ import annotations

import pytest
import typer


@pytest.fixture(scope="session")
def classifier():
    """The project's default classifier, as the assistant gets it (cached under SAHAYAK_MODELS_HOME)."""
    from app.core.settings import get_settings, reset_settings
    from models.intents import get_classifier

    reset_settings()
    settings = get_settings()
    assert settings.classifier == "frozen"
    return get_classifier(settings)


@pytest.fixture()
def cli():
    """Invoke the intents commands on an isolated Typer app (only this part's commands)."""
    from typer.testing import CliRunner

    from app.commands import intents

    app = typer.Typer()
    intents.register(app)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        result = runner.invoke(app, list(args), input=input, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    return invoke
