"""Hindi in Devanagari, read the way the models read romanised Hinglish.

Customers write the same request as "मेरा कार्ड ब्लॉक करो" and "mera card block karo". The intent
and dialogue-act models learn from both, but share far more with the romanised form, so every
Devanagari word is turned into the spelling a Hinglish writer would use:

1. English loanwords written in Devanagari become the English word (कार्ड → card, बैलेंस → balance),
   and everyday words take their usual Hinglish spelling (नहीं → nahi, माँ → maa), from
   ``data/lexicon/devanagari_loanwords.yaml`` and ``devanagari_common.yaml``;
2. other words are transliterated with ``indic-transliteration`` (ITRANS) and folded into everyday
   Hinglish spelling: long vowels shortened, nasalisation to "n", the inherent final "a" dropped
   (करो → karo, काम → kam, हज़ार → hazar).

Latin text passes through untouched, so mixed messages ("माँ को 5000 bhejo") keep their digits and
English words.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import yaml
from indic_transliteration import sanscript

from app.core.paths import DATA_DIR

DEVANAGARI = re.compile(r"[\u0900-\u097F]")
_WORD = re.compile(r"[\u0900-\u097F]+")
_LEXICONS = (DATA_DIR / "lexicon" / "devanagari_common.yaml", DATA_DIR / "lexicon" / "devanagari_loanwords.yaml")
_CANDRA = str.maketrans({"\u0949": "\u094b", "\u0911": "\u0913", "\u0945": "\u0947", "\u090d": "\u090f"})

# ITRANS → Hinglish spelling, applied in order (multi-letter sequences first).
_FOLDS: tuple[tuple[str, str], ...] = (
    (".N", "n"), (".n", "n"), ("M", "n"), ("~N", "n"), ("~n", "n"), (".h", ""), (".a", ""), ("^", ""),
    ("AA", "aa"), ("A", "a"), ("II", "i"), ("I", "i"), ("UU", "u"), ("U", "u"), ("RRi", "ri"), ("R^i", "ri"),
    ("ee", "i"), ("oo", "u"), ("ch", "ch"), ("Ch", "chh"), ("T", "t"), ("D", "d"), ("N", "n"), ("sh", "sh"),
    ("Sh", "sh"), ("L", "l"), (".D", "d"), ("x", "ksh"), ("GY", "gy"), ("j~n", "gy"), ("z", "z"), ("f", "f"),
    ("q", "k"), ("K", "kh"), ("G", "g"), ("J", "z"), ("Y", "y"), ("ou", "au"), ("Ri", "ri"),
)


@lru_cache(maxsize=1)
def loanwords() -> dict[str, str]:
    """Devanagari spelling → romanised or English word, from the lexicon files (the later file wins)."""
    out: dict[str, str] = {}
    for path in _LEXICONS:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
        entries = raw.get("words", raw) if isinstance(raw, dict) else {}
        out.update({unicodedata.normalize("NFC", str(k)).strip(): str(v).strip().lower() for k, v in entries.items() if v})
    return out


def has_devanagari(text: str) -> bool:
    """True when ``text`` contains any Devanagari letter."""
    return bool(DEVANAGARI.search(text))


def _fold(itrans: str, ends_in_consonant: bool) -> str:
    out = itrans
    for a, b in _FOLDS:
        out = out.replace(a, b)
    out = out.lower().replace(".", "")
    # Hindi drops the inherent vowel at the end of a word: करो keeps its o, but काम is "kam", not "kama".
    if ends_in_consonant and len(out) > 2 and out.endswith("a") and not out.endswith("aa"):
        out = out[:-1]
    out = re.sub(r"(.)\1{2,}", r"\1\1", out)
    return out


def _ends_in_consonant(word: str) -> bool:
    last = unicodedata.name(word.rstrip("\u093c")[-1:] or " ", "")
    return "LETTER" in last and "VOWEL" not in last


@lru_cache(maxsize=4096)
def romanise_word(word: str) -> str:
    """One Devanagari word in Hinglish spelling (a loanword becomes its English word)."""
    word = unicodedata.normalize("NFC", word)
    english = loanwords().get(word)
    if english:
        return english
    # Candra o/e (ब्लॉक, बैंक़) have no ITRANS letter: read them as o and e.
    itrans = sanscript.transliterate(word.translate(_CANDRA), sanscript.DEVANAGARI, sanscript.ITRANS)
    return _fold(itrans, _ends_in_consonant(word))


def romanise(text: str) -> str:
    """``text`` with every Devanagari word romanised (multi-word loanwords first); Latin text is kept."""
    if not has_devanagari(text):
        return text
    text = unicodedata.normalize("NFC", text)
    for phrase, english in sorted(((k, v) for k, v in loanwords().items() if " " in k), key=lambda kv: -len(kv[0])):
        text = text.replace(phrase, english)
    text = text.replace("।", ".").replace("॥", ".")
    return _WORD.sub(lambda m: romanise_word(m.group(0)), text)
