"""Publishing files and folders atomically: a reader sees the old version or the new one, never half.

Every writer of state that another process may read at the same time (models, indexes, key rings,
log heads, cursors, stored chat files) goes through these two functions. :func:`private_secret`
creates the per-install secrets (owner-only, created once, race-free).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o600, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` in one rename (the temporary file is created ``mode``).

    ``durable`` also fsyncs the file and its folder, for state that must survive a power cut.
    """
    path = Path(path)
    body = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, body)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


@contextmanager
def publishing(target: str | os.PathLike[str], *, keep_existing: bool = False) -> Iterator[Path]:
    """Build a folder next to ``target`` and publish it by rename when the block succeeds.

    Readers see the old folder or the complete new one, never a half-built one. On an exception the half-built folder is removed and ``target`` is left as it was. With
    ``keep_existing`` a ``target`` that appeared meanwhile (another process finished first) wins.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            if keep_existing:
                shutil.rmtree(tmp, ignore_errors=True)
                return
            # Move the old copy aside first so the new one lands in a single rename.
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def private_secret(path: str | os.PathLike[str], nbytes: int = 32) -> str:
    """The secret stored in ``path``, generated (random, URL-safe) on first use.

    The file is created owner-only (0600) with ``O_EXCL``, so two processes starting together
    agree on one secret; an existing file that others could read is narrowed to 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(nbytes))
            f.flush()
            os.fsync(f.fileno())
    value = path.read_text(encoding="utf-8").strip()
    if not value:  # a half-written file from a crash: never run with an empty password
        raise OSError(f"secret file {path} is empty; delete it to generate a new one")
    return value
