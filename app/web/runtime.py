"""Process-wide objects of the web app: one Assistant and one BankService for all sessions,
and the Chainlit environment (auth secret, app root) shared by `sahayak run` and the tests."""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.environment import apply_offline_env
from app.core.paths import REPO_ROOT
from app.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from app.conversation.assistant import Assistant
    from app.bank.service import BankService

CHAT_APP = REPO_ROOT / "app" / "web" / "chat.py"

_lock = threading.RLock()  # get_assistant() calls get_bank() while holding it
_assistant: "Assistant | None" = None
_bank: "BankService | None" = None


def get_bank() -> "BankService":
    """The shared BankService (its engine pool is thread-safe)."""
    global _bank
    if _bank is None:
        with _lock:
            if _bank is None:
                from app.bank.service import BankService

                _bank = BankService(get_settings().db_url)
    return _bank


def get_assistant() -> "Assistant":
    """The one Assistant of this process (thread-safe; shared by every chat session)."""
    global _assistant
    if _assistant is None:
        with _lock:
            if _assistant is None:
                from app.conversation.assistant import Assistant

                _assistant = Assistant(bank=get_bank())
    return _assistant


def close_assistant() -> None:
    """Flush provenance durably at shutdown (only if an Assistant was ever created)."""
    if _assistant is not None:
        _assistant.close()


def auth_secret(settings: Settings | None = None) -> str:
    """CHAINLIT_AUTH_SECRET: the environment's, else one generated once under $SAHAYAK_HOME.

    The file is created with mode 0600 so only the service user can mint login tokens.
    """
    if os.environ.get("CHAINLIT_AUTH_SECRET"):
        return os.environ["CHAINLIT_AUTH_SECRET"]
    s = settings or get_settings()
    s.ensure_dirs()
    path = s.keys_dir / "chainlit_auth_secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def chainlit_env(settings: Settings | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the Chainlit child process (secret, app root, offline models)."""
    s = settings or get_settings()
    env = dict(base if base is not None else os.environ)
    env["CHAINLIT_AUTH_SECRET"] = auth_secret(s)
    env["CHAINLIT_APP_ROOT"] = str(REPO_ROOT)
    env["SAHAYAK_HOME"] = str(Path(s.home).resolve())
    apply_offline_env(env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env
