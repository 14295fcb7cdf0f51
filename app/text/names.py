"""The payee a customer names: "to Priya", "ravi ko", "pay my landlord 5000", "माँ को"."""

from __future__ import annotations

import calendar
import re
import unicodedata
from functools import lru_cache
from typing import Any

import yaml

from app.core.paths import DATA_DIR
from app.text.amounts import TENS, UNITS
from app.text.places import CITIES, LOCATIONS
from app.text.scan import I, Message
from app.text.script import romanise

_RELATIONS = frozenset(
    """mom mum mother mummy mummyji maa ma amma dad father papa daddy pitaji wife husband brother bro sister
    sis son daughter friend uncle aunt aunty auntie bhai bhaiya didi landlord landlady boss grandma grandpa
    grandmother grandfather nani nana dadi dada beta beti cousin chacha chachi mama mami""".split()
)
_NAME_STOP = frozenset(
    """from on by via using through for today tomorrow tonight now please pls plz at with and ko account
    accounts a/c acct savings saving current my our your his her their the a an this that it me myself self
    rs inr rupees rupee immediately right asap upi neft imps rtgs urgently urgent every each monthly weekly
    daily next in of as is was be bhejo bhej do karo kar de dena send transfer pay money amount him them us
    someone somebody anyone bank bill bills emi emis loan card cards credit debit rent fees fee tax then also
    only instead just again back yesterday kal aaj sir madam maam ok okay thanks thank thankyou you i we he
    she they what how when where why which who can could will would should may might must shall want need
    beneficiary payee balance statement cash fund funds same some more less new old via mobile number phone
    wallet paytm gpay phonepe bhim ki ka ke ne se hai hain tha thi to""".split()
) | frozenset(UNITS) | frozenset(TENS) | frozenset(calendar.month_name[1:]).union(
    m.lower() for m in calendar.month_name[1:]) | frozenset(d.lower() for d in calendar.day_name)


@lru_cache(maxsize=1)
def _relation_table() -> dict[str, str]:
    """Every way of naming a relation → its canonical name (``data/lexicon/relations.yaml``).

    Devanagari aliases are also entered in their Hinglish spelling, because messages are read
    romanised. Ambiguous words (``mama``: uncle in Hindi, mother in English) map to nothing.
    """
    raw = yaml.safe_load((DATA_DIR / "lexicon" / "relations.yaml").read_text(encoding="utf-8")) or {}
    table: dict[str, str] = {}
    for canonical, spellings in (raw.get("relations") or {}).items():
        aliases = [canonical] + [a for key, v in spellings.items() if key != "side" and isinstance(v, list) for a in v]
        for alias in aliases:
            for form in {str(alias).lower(), romanise(unicodedata.normalize("NFC", str(alias))).lower()}:
                table.setdefault(form, canonical)
    for word in raw.get("ambiguous") or {}:
        table.pop(str(word).lower(), None)
    return table


def canonical_relation(words: str) -> str | None:
    """The relation a payee reference names ("mummy", "my mother", "माँ" romanised "maa" → "mom"), or None."""
    text = re.sub(r"\s+", " ", words.lower().strip(" .,!?"))
    text = re.sub(r"^(?:my|meri|mera|mere|the|to|ko)\s+", "", text)
    table = _relation_table()
    return table.get(text) or table.get(text.removesuffix(" ji"))


_LOOSE_LEAD = re.compile(
    r"^(?:(?:ok|okay|then|so|toh|to|for|send(?:\s+it)?\s+to|pay|the\s+usual(?:\s+one)?|usual(?:\s+one)?|same\s+as\s+last\s+time|my|meri|"
    r"mera|mere|apni|apne|it'?s|its|is|the\s+one|the|that\s+is|i\s+mean)\b[\s,:;.\-—–]*)+", re.I)
_LOOSE_TAIL = re.compile(r"(?:\s+(?:ko|ji|please|pls|plz|guy|wala|waala|wali|waali|person|one)\b|[\s.,!?]+)+$", re.I)


def payee_reference(text: str) -> str:
    """The payee a loose slot answer names: "to my sister Priya" → "Priya", "the usual one, Mom" →
    "Mom", "mummy ko" → "mom"; the text itself when nothing loose is around it."""
    core = _LOOSE_TAIL.sub("", _LOOSE_LEAD.sub("", text.strip()))
    if not core:
        return text.strip()
    words = core.split()
    # "sister Priya" / "didi Priya": the relation introduces the name.
    if len(words) > 1 and canonical_relation(words[0]) and not canonical_relation(core):
        return " ".join(words[1:])
    return canonical_relation(core) or core


_NAME = r"[A-Za-z][A-Za-z.'’-]{0,30}"
_PAY_VERB = r"(?:send|sent|transfer|transferring|pay|paying|remit|wire|give|credit|move|schedule)"
_TO_NAME = re.compile(rf"\b(?:to|for)\s{{1,3}}((?:{_NAME})(?:\s{{1,3}}{_NAME}){{0,3}})", I)
_VERB_NAME_AMOUNT = re.compile(
    rf"\b(?:pay|send|transfer|give)\s{{1,3}}((?:{_NAME})(?:\s{{1,3}}{_NAME}){{0,2}})\s{{0,3}}(?=[₹$£€]|rs\.?\s?\d|inr\s?\d|usd\s?\d|\d)", I)
_KO_NAME = re.compile(rf"((?:{_NAME}\s{{1,3}})?{_NAME})\s{{1,3}}ko\b", I)
_PAYEE_NAME = re.compile(
    rf"\b(?:beneficiary|payee)(?:\s{{1,3}}name)?\s{{0,3}}(?:is|:|-)\s{{0,3}}((?:{_NAME})(?:\s{{1,3}}{_NAME}){{0,2}})"
    rf"|\badd\s{{1,3}}((?:{_NAME})(?:\s{{1,3}}{_NAME}){{0,2}})\s{{1,3}}as\s{{1,3}}(?:a\s{{1,3}})?(?:new\s{{1,3}})?(?:beneficiary|payee)", I)
_PAY_CONTEXT = re.compile(rf"\b{_PAY_VERB}\b|\bbhej\w*|\bde\s+do\b|\bdedo\b|\bbhejo\b|भेज|ट्रांसफर|भुगतान", I)
_KO_NAME_DEVANAGARI = re.compile(r"(?<![\u0900-\u097f])([\u0900-\u097f]{2,20})\s{1,3}को(?![\u0900-\u097f])")
_DEVANAGARI_STOP = frozenset("मुझे मुझको उसको उनको इसको इनको हमको किसको सबको आपको".split())


def _clean_name(words: list[str]) -> str | None:
    """Take the leading name words, skipping possessives, stopping at the first non-name word."""
    words = [w.strip(".'’-") for w in words]
    while words and words[0].lower() in ("my", "our", "his", "her", "their", "the", "dear"):
        words = words[1:]
    if not words:
        return None
    if words[0].lower() in _RELATIONS:
        # "my friend Ravi" names Ravi; "my mom" is the payee's nickname as saved
        if len(words) > 1 and words[1][:1].isupper() and words[1].lower() not in _NAME_STOP:
            words = words[1:]
        else:
            return words[0].lower()
    name: list[str] = []
    for w in words:
        if not w or w.lower() in _NAME_STOP or w.lower() in LOCATIONS or w.lower() in CITIES:
            break
        name.append(w)
    if not name:
        return None
    # "ravi" and "RAVI" → "Ravi"; mixed case as typed ("McKenzie") is kept.
    return " ".join(w if any(ch.isupper() for ch in w) and not (w.isupper() and len(w) >= 3) else w.capitalize()
                    for w in name)


def extract_beneficiary(msg: Message, found: dict[str, Any]) -> None:
    text = msg.text
    for m in _PAYEE_NAME.finditer(text):
        name = _clean_name((m.group(1) or m.group(2)).split())
        if name:
            found["beneficiary"] = name
            return
    if not _PAY_CONTEXT.search(text):
        return
    for m in _VERB_NAME_AMOUNT.finditer(text):
        words = m.group(1).split()
        if words and words[0].lower() not in _NAME_STOP:
            name = _clean_name(words)
            if name:
                found["beneficiary"] = name
                return
    verb = _PAY_CONTEXT.search(text)
    for m in _TO_NAME.finditer(text, verb.start() if verb else 0):
        words = m.group(1).split()
        if words and words[0].lower() in ("my", "the") and len(words) > 1 and words[1].lower() in (
                "savings", "saving", "current", "account", "own", "other", "fd", "rd", "wallet"):
            continue  # "to my savings": an own-account transfer, not a payee
        name = _clean_name(words)
        if name:
            found["beneficiary"] = name
            return
    for m in _KO_NAME_DEVANAGARI.finditer(text):
        if m.group(1) not in _DEVANAGARI_STOP:
            found["beneficiary"] = m.group(1)
            return
    for m in _KO_NAME.finditer(text):
        words = m.group(1).split()
        if len(words) == 2 and not (words[0][:1].isupper() and words[1][:1].isupper()):
            words = words[1:]
        if words[0].lower() in ("mujhe", "usko", "unko", "isko", "inko", "sabko", "kisko", "hum", "humko", "mujhko"):
            continue
        name = _clean_name(words)
        if name:
            found["beneficiary"] = name
            return
