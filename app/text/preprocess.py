"""Message preprocessing: Unicode normalisation, a length limit and a language hint.

Every incoming message goes through :func:`preprocess` before anything else looks at it.
The steps (see docs/text.md):

1. **Length limit first.** A message longer than ``max_chars`` (``settings.max_message_chars``,
   2,000 by default) is flagged ``too_long`` and must not be classified or acted on; only a
   bounded prefix is normalised so it can be stored (redacted) in the history.
2. **NFKC** folds fullwidth and compatibility forms (``ｂａｌａｎｃｅ`` → ``balance``, ``＜`` → ``<``).
3. **Invisible characters are removed**: zero-width characters, bidi controls
   (U+202A–202E, U+2066–2069, U+200E/U+200F, U+061C) and every other control or format
   character except newline and tab.
4. **Whitespace is collapsed**: runs of spaces/tabs become one space, runs containing a line
   break become one newline, and the ends are stripped.
5. **Confusable letters are folded**: in a word that is otherwise Latin, Cyrillic/Greek
   letters that look Latin become Latin (``bаlance`` with a Cyrillic ``а`` → ``balance``).
   Words written wholly in Cyrillic or Greek are left alone.

Everything here is linear-time (no regex that can backtrack badly), so even 100 KB inputs
are cheap.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from app.core.settings import get_settings

Language = Literal["en", "hi", "hinglish"]

# Characters that render as nothing (or only steer rendering) and are used to hide text.
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u00ad\u034f\u115f\u1160\u3164\uffa0"
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_INVISIBLE = frozenset(_ZERO_WIDTH + _BIDI)

# Cyrillic and Greek letters that are visually identical (or nearly) to a Latin letter.
CONFUSABLES: dict[str, str] = {
    # Cyrillic lower case
    "а": "a", "в": "b", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j", "к": "k", "м": "m",
    "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "ԁ": "d", "ԛ": "q",
    "ԝ": "w", "ӏ": "l", "ɡ": "g",
    # Cyrillic upper case
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "Н": "H", "І": "I", "Ї": "I", "Ј": "J", "К": "K", "М": "M",
    "О": "O", "Р": "P", "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W",
    "Ӏ": "I",
    # Greek
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "κ": "k", "ι": "i", "υ": "u", "τ": "t", "χ": "x",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}

_WORD = re.compile(r"\w+")
_HSPACE_RUN = re.compile(r"[^\S\n]+")
_BREAK_RUN = re.compile(r"\s*\n\s*")
_DEVANAGARI = re.compile(r"[\u0900-\u097f]")
_LATIN_LETTER = re.compile(r"[A-Za-z]")

# Romanised Hindi: words that are (almost) never English. One of these marks Hinglish.
HINGLISH_STRONG = frozenset(
    """mera meri mere mujhe mujhko hume humein hamara hamare kitna kitne kitni hai hain karo karna
    karein kariye karde kardo paise paisa rupaye rupaiye rupay bhejo bhejna bhej bhejiye kya kyu kyun
    kaise kahan kab nahi nahin chahiye batao bataye bataiye dikhao dijiye kijiye khata khaata
    tera tumhara aapka aapke apna apne abhi jaldi haan theek thik bahut accha acha dena lena wala
    wali hazaar hazar hajar kal aaj parso""".split()
)
# Short words shared with English or too common to count alone; two of them mark Hinglish.
HINGLISH_WEAK = frozenset("ko se ka ki ke me mein main aur ye yeh wo woh ek do teen".split())


def _fold_confusables(word: str) -> str:
    """Replace look-alike Cyrillic/Greek letters when the rest of the word is Latin."""
    has_latin = False
    has_foreign = False
    for ch in word:
        if ch.isascii():
            has_latin = has_latin or ch.isalpha()
        elif ch in CONFUSABLES:
            has_foreign = True
        elif ch.isalpha():
            return word  # a genuinely non-Latin letter: this is not a disguised Latin word
    if not (has_latin and has_foreign):
        return word
    return "".join(CONFUSABLES.get(ch, ch) for ch in word)


def strip_invisible(text: str) -> str:
    """Remove zero-width, bidi-control and other control/format characters (keeps \\n and \\t)."""
    out = []
    for ch in text:
        if ch in _INVISIBLE:
            continue
        if ch in "\n\t":
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs", "Co", "Cn") and not ch.isspace():
            continue
        if cat in ("Zl", "Zp"):  # line/paragraph separators behave like a newline
            out.append("\n")
            continue
        out.append(ch)
    return "".join(out)


def fold_digits(text: str) -> str:
    """Digits of any script (Devanagari ४, Arabic-Indic ٤, full-width ４ …) as ASCII digits."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.digit(ch)) if not ch.isascii() and unicodedata.category(ch) == "Nd" else ch
                   for ch in text)


def normalize(text: str) -> str:
    """Normalise a message (NFKC, invisible characters removed, digits of every script as ASCII,
    whitespace collapsed, confusables folded): what a person reading the text would see."""
    text = fold_digits(unicodedata.normalize("NFKC", text))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = strip_invisible(text)
    text = _BREAK_RUN.sub("\n", text)
    text = _HSPACE_RUN.sub(" ", text).strip()
    if not text.isascii():
        text = _WORD.sub(lambda m: _fold_confusables(m.group(0)), text)
    return text


def detect_language(text: str) -> Language:
    """A language hint: ``hi`` (Devanagari), ``hinglish`` (romanised Hindi) or ``en``."""
    devanagari = len(_DEVANAGARI.findall(text))
    if devanagari:
        latin = len(_LATIN_LETTER.findall(text))
        return "hi" if devanagari >= latin else "hinglish"
    words = [w.lower() for w in _WORD.findall(text)]
    strong = sum(1 for w in words if w in HINGLISH_STRONG)
    weak = sum(1 for w in words if w in HINGLISH_WEAK)
    if strong >= 1 and (strong + weak >= 2 or len(words) <= 3 or strong * 4 >= len(words)):
        return "hinglish"
    if weak >= 2 and strong >= 1:
        return "hinglish"
    if strong >= 2:
        return "hinglish"
    return "en"


@dataclass(frozen=True)
class Preprocessed:
    """A message ready for understanding.

    ``text`` is the normalised message. When ``too_long`` is true the message must not be
    processed further: ``text`` then holds only the normalised first ``max_chars`` characters
    (for the history) and :attr:`reply` is what the assistant says.
    """

    text: str
    original_length: int
    too_long: bool
    language: Language
    max_chars: int = 2000

    @property
    def truncated(self) -> bool:
        """Alias of ``too_long`` (the stored ``text`` is a truncated prefix)."""
        return self.too_long

    @property
    def reply(self) -> str | None:
        """The refusal to send for an over-long message, else ``None``."""
        if not self.too_long:
            return None
        return too_long_reply(self.original_length, self.max_chars)


def too_long_reply(length: int, limit: int) -> str:
    """The customer-facing message for an over-long input."""
    return f"That message is too long ({length:,} characters; the limit is {limit:,}). Please shorten it."


def preprocess(text: str, max_chars: int | None = None) -> Preprocessed:
    """Check the length, normalise and tag the language of one incoming message."""
    if max_chars is None:
        max_chars = get_settings().max_message_chars
    original_length = len(text)
    if original_length > max_chars:
        # Checked before any work on the full text: an over-long message is never processed.
        prefix = normalize(text[:max_chars])
        return Preprocessed(prefix, original_length, True, detect_language(prefix), max_chars)
    clean = normalize(text)
    return Preprocessed(clean, original_length, False, detect_language(clean), max_chars)
