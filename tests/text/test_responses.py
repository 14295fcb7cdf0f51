"""Every response template renders, and every translation uses the English template's fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.errors import SahayakError
from app.text.responses import Responses, get_responses


def test_every_translation_keeps_the_fields() -> None:
    r = get_responses()
    for lang in r.languages:
        for key in r.templates[lang]:
            assert key in r.templates["en"], f"{lang}: {key} has no English original"
            assert r.fields(key, lang) == r.fields(key, "en"), f"{lang}: {key} changes the placeholders"


def test_fallback_and_errors(tmp_path: Path) -> None:
    (tmp_path / "en.yaml").write_text('a: "{x} items"\nb: plain\n', encoding="utf-8")
    (tmp_path / "hi").mkdir()
    (tmp_path / "hi" / "one.yaml").write_text('a: "{x} चीज़ें"\n', encoding="utf-8")
    r = Responses(tmp_path)
    assert r.say("a", "hi", x=3) == "3 चीज़ें" and r.say("b", "hi") == "plain" and r.say("a", "hinglish", x=1) == "1 items"
    with pytest.raises(SahayakError):
        r.say("missing")
    (tmp_path / "hi" / "two.yaml").write_text("a: again\n", encoding="utf-8")
    with pytest.raises(SahayakError, match="defined twice"):
        Responses(tmp_path)


def test_meaningful_spaces_are_kept() -> None:
    """" or " joins options and " Your balance …" follows a sentence: their spaces are part of the template."""
    r = get_responses()
    assert r.say("dialogue.clarify_joiner") == " or "
    assert r.say("transfer.balance_after", from_type="savings", balance="₹1.00").startswith(" Your savings")
