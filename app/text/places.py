"""Places and loan types named in a message (tables in data/lexicon/places.yaml)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from app.core.paths import DATA_DIR
from app.text.scan import I, Message

_TABLES = yaml.safe_load((DATA_DIR / "lexicon" / "places.yaml").read_text(encoding="utf-8"))
LOCATIONS: dict[str, str] = _TABLES["areas"]
CITIES: dict[str, str] = _TABLES["cities"]



def _place_regex(names: dict[str, str]) -> re.Pattern[str]:
    alternatives = sorted(names, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(a).replace(r"\ ", r"\s{1,3}") for a in alternatives) + r")\b", I)


_AREA_RE = _place_regex(LOCATIONS)
_CITY_RE = _place_regex(CITIES)
_LOAN_KEYS = {"home": "home", "house": "home", "housing": "home", "mortgage": "home", "ghar": "home",
              "property": "home", "car": "car", "auto": "car", "vehicle": "car", "bike": "car",
              "two-wheeler": "car", "gaadi": "car", "personal": "personal", "education": "education",
              "educational": "education", "student": "education", "study": "education", "studies": "education",
              "padhai": "education", "gold": "gold", "sona": "gold"}
_LOAN_KEY_RE = r"(home|house|housing|mortgage|ghar|property|car|auto|vehicle|bike|two-wheeler|gaadi|personal|education|educational|student|study|studies|padhai|gold|sona)"
_LOAN_RE = re.compile(
    rf"\b{_LOAN_KEY_RE}\b(?:\W{{1,3}}\w{{1,15}}){{0,3}}?\W{{1,3}}loans?\b|\bloans?\b(?:\W{{1,3}}\w{{1,15}}){{0,3}}?\W{{1,3}}{_LOAN_KEY_RE}\b"
    r"|\b(mortgage)\b", I)


def extract_places(msg: Message, found: dict[str, Any]) -> None:
    m = _AREA_RE.search(msg.text) or _CITY_RE.search(msg.text)
    if m:
        key = re.sub(r"\s+", " ", m.group(1).lower())
        found["location"] = LOCATIONS.get(key) or CITIES[key]
    m = _LOAN_RE.search(msg.text)
    if m:
        key = next(g for g in m.groups() if g)
        found["loan_type"] = _LOAN_KEYS[key.lower()]
