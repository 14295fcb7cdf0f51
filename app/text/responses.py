"""What the bot says, per language: response templates in ``data/responses/<lang>.yaml`` (and
``data/responses/<lang>/*.yaml``).

Templates are nested YAML mappings addressed by dotted keys (``dialogue.cancelled``) and filled with
``str.format`` fields (``{amount}``). A key missing in a language falls back to English, so a new
language can be added one template at a time; a key missing in English is a programming error and
raises at once (tests render every key).
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from app.core.errors import SahayakError
from app.core.paths import DATA_DIR

DEFAULT_LANGUAGE = "en"
# Message languages (app.text.preprocess.detect_language) → the template set replies use.
REPLY_LANGUAGE = {"en": "en", "hinglish": "en", "hi": "hi"}


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = str(value).strip("\n")  # spaces are meant (" or ", " Your balance …")
    return out


class Responses:
    """All templates of one folder, by language and key."""

    def __init__(self, folder: str | Path = DATA_DIR / "responses") -> None:
        self.folder = Path(folder)
        self.templates: dict[str, dict[str, str]] = {}
        # A language is ``<lang>.yaml`` and/or every ``<lang>/*.yaml`` (one file per area, e.g. handlers).
        for path in sorted(self.folder.glob("*.yaml")) + sorted(self.folder.glob("*/*.yaml")):
            lang = path.stem if path.parent == self.folder else path.parent.name
            found = _flatten(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
            clash = set(found) & set(self.templates.get(lang, {}))
            if clash:
                raise SahayakError(f"response keys defined twice for {lang!r}: {', '.join(sorted(clash)[:5])} ({path})")
            self.templates.setdefault(lang, {}).update(found)
        if DEFAULT_LANGUAGE not in self.templates:
            raise SahayakError(f"no English responses in {self.folder} (expected {DEFAULT_LANGUAGE}.yaml)")

    @property
    def languages(self) -> list[str]:
        return sorted(self.templates)

    def has(self, key: str, language: str = DEFAULT_LANGUAGE) -> bool:
        """Whether ``key`` can be said in ``language`` (directly or through the English fallback)."""
        lang = REPLY_LANGUAGE.get(language, language)
        return key in self.templates.get(lang, {}) or key in self.templates[DEFAULT_LANGUAGE]

    def template(self, key: str, language: str = DEFAULT_LANGUAGE) -> str:
        """The raw template of ``key`` in ``language`` (English when that language lacks it)."""
        lang = REPLY_LANGUAGE.get(language, language)
        found = self.templates.get(lang, {}).get(key)
        if found is None:
            found = self.templates[DEFAULT_LANGUAGE].get(key)
        if found is None:
            raise SahayakError(f"no response template {key!r} in {self.folder / (DEFAULT_LANGUAGE + '.yaml')}")
        return found

    def say(self, key: str, language: str = DEFAULT_LANGUAGE, **fields: Any) -> str:
        """``key``'s template in ``language`` filled with ``fields``."""
        return self.template(key, language).format(**fields)

    def fields(self, key: str, language: str = DEFAULT_LANGUAGE) -> set[str]:
        """The placeholder names a template uses (tests check every language uses the same ones)."""
        return {f for _, f, _, _ in string.Formatter().parse(self.template(key, language)) if f}


@lru_cache(maxsize=4)
def get_responses(folder: str | None = None) -> Responses:
    """The process-wide templates (loaded once)."""
    return Responses(folder or DATA_DIR / "responses")
