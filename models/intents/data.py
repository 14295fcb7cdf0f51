"""Loading intent training data: the project's YAML folder or a CSV file.

A YAML file holds one intent: ``intent`` (the label), ``description`` (one sentence, used by
the zero-shot and LLM approaches) and ``examples`` (a list of utterances). A CSV file has a
``text`` column and a label column (``label`` unless told otherwise).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from app.core.errors import SahayakError
from app.core.paths import DATA_DIR, REPO_ROOT

OOS_LABEL = "Out_Of_Scope"


@dataclass
class Dataset:
    """Texts with their labels, the files they came from and optional label descriptions."""

    texts: list[str]
    labels: list[str]
    files: list[Path] = field(default_factory=list)
    descriptions: dict[str, str] = field(default_factory=dict)

    @property
    def label_set(self) -> list[str]:
        """The distinct labels, sorted (the model's class order)."""
        return sorted(set(self.labels))

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: "list[int]") -> "Dataset":
        """The rows at ``idx`` (same files and descriptions)."""
        return Dataset([self.texts[i] for i in idx], [self.labels[i] for i in idx], self.files, self.descriptions)


def resolve_path(path: str | Path) -> Path:
    """``path`` as given if it exists, else a ``data/...`` path inside the shipped-data folder
    (:data:`DATA_DIR`, which ``SAHAYAK_DATA_DIR`` may move), else relative to the code."""
    p = Path(path)
    if p.exists() or p.is_absolute():
        return p
    if p.parts and p.parts[0] == "data" and (DATA_DIR.joinpath(*p.parts[1:])).exists():
        return DATA_DIR.joinpath(*p.parts[1:])
    alt = REPO_ROOT / p
    return alt if alt.exists() else p


def _read_yaml(path: Path) -> list[tuple[str, str, list[str]]]:
    """(intent, description, examples) for each intent in a file.

    A file is either one intent (``intent``/``description``/``examples``) or several under an
    ``intents:`` list (the shape ``sahayak intents export-feedback`` writes).
    """
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SahayakError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    docs = doc.get("intents") if isinstance(doc, dict) and "intents" in doc else [doc]
    out = []
    for d in docs or []:
        if not isinstance(d, dict) or "intent" not in d or not isinstance(d.get("examples"), list):
            raise SahayakError(f"{path}: expected a mapping with 'intent', 'description' and an 'examples' list")
        bad = [e for e in d["examples"] if not isinstance(e, str)]
        if bad:
            # An unquoted "a: b" or a bare number silently becomes a mapping/int in YAML.
            raise SahayakError(f"{path}: every example must be a string; quote {bad[0]!r}")
        out.append((str(d["intent"]), str(d.get("description") or ""), [e.strip() for e in d["examples"] if e.strip()]))
    return out


def load_dataset(path: str | Path, label_column: str = "label", text_column: str = "text") -> Dataset:
    """Read a YAML folder (one intent per file), a single YAML file, or a CSV file."""
    p = resolve_path(path)
    if not p.exists():
        raise SahayakError(f"training data not found: {p}")
    if p.is_dir():
        files = sorted(list(p.glob("*.yaml")) + list(p.glob("*.yml")))
        if not files:
            raise SahayakError(f"no *.yaml intent files in {p}")
    elif p.suffix.lower() in {".yaml", ".yml"}:
        files = [p]
    elif p.suffix.lower() == ".csv":
        return _load_csv(p, label_column, text_column)
    else:
        raise SahayakError(f"unsupported data file {p}: use a folder of YAML files or a .csv")
    texts: list[str] = []
    labels: list[str] = []
    descriptions: dict[str, str] = {}
    for f in files:
        for intent, description, examples in _read_yaml(f):
            if description or intent not in descriptions:
                descriptions[intent] = description
            texts.extend(examples)
            labels.extend([intent] * len(examples))
    return Dataset(texts, labels, files, descriptions)


def _load_csv(path: Path, label_column: str, text_column: str) -> Dataset:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        for col in (text_column, label_column):
            if col not in cols:
                raise SahayakError(f"{path}: no column {col!r} (columns: {', '.join(cols)})")
        rows = [(r[text_column].strip(), r[label_column].strip()) for r in reader if r[text_column].strip()]
    if not rows:
        raise SahayakError(f"{path}: no rows")
    texts, labels = zip(*rows)
    # No descriptions in a CSV: the label name itself ("card_arrival" -> "card arrival") stands in.
    descriptions = {lab: lab.replace("_", " ") for lab in set(labels)}
    return Dataset(list(texts), list(labels), [path], descriptions)


def stratified_split(labels: list[str], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded stratified (train, validation) index split; every label keeps ≥ 1 training row."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(i)
    train, val = [], []
    for lab in sorted(by_label):
        idx = by_label[lab]
        rng.shuffle(idx)
        n_val = min(len(idx) - 1, int(round(len(idx) * val_fraction)))
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return sorted(train), sorted(val)
