"""Process-wide objects of the web app: one Assistant, one BankService and one SupportStore for
all sessions (built by :mod:`app.conversation.wiring`), and the Chainlit environment (auth secret,
app root) shared by `sahayak run` and the tests."""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from pathlib import Path

from app.bank.service import BankService
from app.conversation import wiring
from app.conversation.assistant import Assistant
from app.conversation.support import SupportStore
from app.core.environment import apply_offline_env
from app.core.paths import REPO_ROOT
from app.core.settings import Settings, get_settings

CHAT_APP = REPO_ROOT / "app" / "web" / "chat.py"
# Chainlit's configuration as shipped; copied under $SAHAYAK_HOME at each launch (chainlit_root).
CHAINLIT_CONFIG = REPO_ROOT / ".chainlit" / "config.toml"
CHAINLIT_README = REPO_ROOT / "chainlit.md"

_lock = threading.RLock()  # get_assistant() calls get_bank() while holding it
_assistant: Assistant | None = None
_bank: BankService | None = None
_support: SupportStore | None = None


def get_bank() -> BankService:
    """The shared BankService (its engine pool is thread-safe)."""
    global _bank
    if _bank is None:
        with _lock:
            if _bank is None:
                _bank = wiring.build_bank(wiring.build_settings())
    return _bank


def get_support() -> SupportStore:
    """The shared hand-off and feedback store (on the shared bank's database)."""
    global _support
    if _support is None:
        with _lock:
            if _support is None:
                _support = wiring.build_support(get_bank())
    return _support


def get_assistant() -> Assistant:
    """The one Assistant of this process (thread-safe; shared by every chat session)."""
    global _assistant
    if _assistant is None:
        with _lock:
            if _assistant is None:
                _assistant = wiring.build_assistant(bank=get_bank())
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


def chainlit_root(settings: Settings | None = None) -> Path:
    """Chainlit's app root, ``$SAHAYAK_HOME/chainlit``, with the shipped config copied in.

    Chainlit writes into its app root (``.files`` for uploads, ``.chainlit/translations``), so
    the root is under ``SAHAYAK_HOME``, never the repository or the current directory.
    """
    s = settings or get_settings()
    root = (Path(s.home) / "chainlit").resolve()
    (root / ".chainlit").mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copyfile(CHAINLIT_CONFIG, root / ".chainlit" / "config.toml")
    shutil.copyfile(CHAINLIT_README, root / "chainlit.md")
    # No web fonts from a third party (Chainlit's default pulls Inter from Google): the chat's CSP
    # allows our own origin only, and a bank page should not tell anyone else who opened it.
    (root / "public").mkdir(exist_ok=True, mode=0o700)
    (root / "public" / "theme.json").write_text('{"custom_fonts": []}\n', encoding="utf-8")
    return root


def chainlit_env(settings: Settings | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the Chainlit child process (secret, app root, cookies, offline models)."""
    s = settings or get_settings()
    env = dict(base if base is not None else os.environ)
    env["CHAINLIT_AUTH_SECRET"] = auth_secret(s)
    env["CHAINLIT_APP_ROOT"] = str(chainlit_root(s))
    env["CHAINLIT_COOKIE_SAMESITE"] = "strict"  # see app/web/security.py (Secure is added over TLS)
    env["SAHAYAK_HOME"] = str(Path(s.home).resolve())
    apply_offline_env(env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env
