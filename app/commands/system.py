"""`sahayak prepare` (models, indexes, keys, demo bank) and `sahayak run` (the whole stack)."""

from __future__ import annotations

import signal
import time
from typing import Any, Callable

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from app.bank.seed import seed
from app.core.errors import SahayakError
from app.conversation.wiring import PREPARE_STEPS
from app.core.settings import get_settings
from app.ops.stack import Stack, start_stack
from app.web.chatdb import chat_db_urls, create_schema
from app.web.runtime import auth_secret
from models.scoring import artifact_path, load_artifact
from models.scoring.train import train as train_scoring_model
from provenance.keys import keyring_for


def register(root: typer.Typer) -> None:
    root.command("prepare")(prepare)
    root.command("run")(run)


def _steps() -> list[tuple[str, Callable[[Any], str]]]:
    """Each preparation step calls the owning module's public function and returns a summary."""

    def seed_bank(settings: Any) -> str:
        counts = seed(settings.db_url)
        return ", ".join(f"{k} {v}" for k, v in counts.items()) if isinstance(counts, dict) else "seeded"

    def provenance_keys(settings: Any) -> str:
        ring = keyring_for(settings)
        signer = ring.active() if ring.exists() else ring.generate(settings.signing_algorithm)
        return f"signing key {signer.key_id} ({signer.alg})"

    def chat_secret(settings: Any) -> str:
        auth_secret(settings)
        return "login token secret ready"

    def scoring_model(settings: Any) -> str:
        try:
            model = load_artifact(settings)
        except SahayakError:  # no (readable) artifact yet: train one
            path = train_scoring_model().save(settings.models_dir / "scoring")
            return f"trained scoring model → {path}"
        return f"scoring model {model.version} at {artifact_path(settings)}"

    def chat_history_db(settings: Any) -> str:
        create_schema(chat_db_urls(settings)[1])
        return "chat history schema ready"

    cheap = [
        ("Seed the demo bank", seed_bank),
        ("Provenance signing key", provenance_keys),
        ("Chat login secret", chat_secret),
        ("Chat history database", chat_history_db),
        ("Encrypted-scoring model", scoring_model),
    ]
    # The pipeline's models and index (the composition root names them): the only place the product
    # trains and indexes; each step is quick when its output is current.
    return cheap + list(PREPARE_STEPS)


def prepare() -> None:
    """Prepare everything `sahayak run` needs (idempotent; later runs reuse the cache)."""
    _prepare()


def _prepare() -> None:
    settings = get_settings()
    settings.ensure_dirs()
    console = Console()
    steps = _steps()
    t_all = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as progress:
        overall = progress.add_task("preparing Sahayak", total=len(steps))
        for label, fn in steps:
            task = progress.add_task(f"  {label}", total=1)
            t0 = time.perf_counter()
            try:
                summary = fn(settings)
            except SahayakError:
                raise
            except Exception as exc:  # noqa: BLE001 - name the step that failed, in one line
                raise SahayakError(f"prepare step '{label}' failed: {type(exc).__name__}: {exc}") from exc
            progress.update(task, completed=1, visible=False)
            progress.console.print(f"[green]✓[/] {label} — {summary} ({time.perf_counter() - t0:.1f}s)")
            progress.advance(overall)
    console.print(f"[green]ready[/] in {time.perf_counter() - t_all:.1f}s (state under {settings.home.resolve()})")


def run(
    host: str = typer.Option(None, "--host", help="Interface to bind (loopback by default)."),
    port: int = typer.Option(None, "--port", help="Port of the chat (default SAHAYAK_PORT or 8000)."),
    skip_prepare: bool = typer.Option(False, "--skip-prepare", help="Do not check models/indexes first."),
) -> None:
    """Start the graph server, the encrypted scoring service and the chat, restarting any that
    crashes (with back-off, logged to $SAHAYAK_HOME/logs/stack.log); Ctrl-C stops them all."""
    settings = get_settings()
    console = Console()
    host = host or settings.host
    port = port or settings.port
    t0 = time.perf_counter()

    def _sigterm(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    # Installed before anything starts: a SIGTERM during start-up must still stop the children.
    signal.signal(signal.SIGTERM, _sigterm)
    if not skip_prepare:
        # The chat process only loads models: anything missing or stale is trained here, with
        # progress, before the stack starts (a warm start only checks fingerprints).
        _prepare()
    stack = start_stack(host, port, settings, report=lambda m: console.print(f"[cyan]›[/] {m}"))
    failed = _supervise(stack, console, ready_s=time.perf_counter() - t0)
    if failed:
        raise SahayakError(failed)


def _supervise(stack: Stack, console: Console, ready_s: float) -> str:
    """Say the stack is up, then supervise it until Ctrl-C/SIGTERM: a crashed component is
    restarted with back-off (:meth:`Stack.supervise`) while the others keep serving. Stops it all
    at the end.

    Returns "" after Ctrl-C, else the component that could not be brought back.
    """
    stopping = False
    failed = ""
    try:
        console.print(f"[bold green]Sahayak is running:[/] {stack.url}  (staff console: {stack.url}/staff) "
                      f"— ready in {ready_s:.1f}s. Press Ctrl-C to stop.")
        while True:
            time.sleep(1.0)
            lost = stack.supervise()
            if lost:
                names = ", ".join(c.name + (f" (log: {c.log})" if c.log else "") for c in lost)
                failed = f"stopped unexpectedly and could not be restarted: {names}"
                break
    except KeyboardInterrupt:
        stopping = True
    finally:
        # A second Ctrl-C or SIGTERM (an impatient operator, a supervisor's retry) must not cut the
        # shutdown short and orphan the children still to be stopped: it stops them, whatever comes.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        console.print("stopping…" if stopping else "shutting down…")
        stack.stop(lambda m: console.print(f"[cyan]›[/] {m}"))
        console.print("[green]all services stopped[/]")
    return failed
