"""Process environment every entry point sets at start-up: offline model libraries, and an
owner-only umask for everything the process writes (``bank.db`` and its WAL, ``chainlit.db``, the
SMS outbox, keys, provenance, the graph files)."""

from __future__ import annotations

import os
from typing import MutableMapping

# Models come from installed packages, never from a hub (this machine cannot download);
# tokenizers' own thread pool fights torch's on 2 cores.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def apply_offline_env(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Set the offline variables in ``env`` (default: this process) unless already set; returns it."""
    target = os.environ if env is None else env
    for key, value in OFFLINE_ENV.items():
        target.setdefault(key, value)
    return target


PRIVATE_UMASK = 0o077


def private_umask() -> int:
    """Make every file and folder this process (and its children) creates owner-only; returns the
    previous umask. Bits already masked stay masked (never loosens a stricter umask)."""
    old = os.umask(PRIVATE_UMASK)
    os.umask(old | PRIVATE_UMASK)
    return old
