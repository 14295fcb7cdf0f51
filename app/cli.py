"""The `sahayak` command line.

Each area registers its own commands from ``app/commands/<area>.py`` (a ``register(root)``
function), so adding a command group never means editing another group's code.
Errors are printed as one clear line with a non-zero exit code, never as a traceback
(set ``SAHAYAK_DEBUG=1`` to see the traceback).
"""

from __future__ import annotations

import importlib
import sys

import typer
from pydantic import ValidationError

from app.core.environment import apply_offline_env, private_umask
from app.core.errors import SahayakError
from app.core.settings import get_settings

apply_offline_env()  # before any command imports a model library
private_umask()  # everything written under SAHAYAK_HOME (and by the children we start) is owner-only

root = typer.Typer(
    name="sahayak",
    help="Sahayak — a private, auditable conversational banking assistant.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command groups, one module each under app/commands/.
COMMAND_MODULES = [
    "app.commands.conversation",  # chat, turn, classify
    "app.commands.bank",  # bank seed|reset
    "app.commands.intents",  # intents train|eval|export-feedback
    "app.commands.kb",  # kb index|search|eval, ask
    "app.commands.scoring",  # scoring serve|score|bench
    "app.commands.provenance",  # provenance verify|prove|keygen|rotate|flush|export, graph serve|import, audit …
    "app.commands.system",  # prepare, run
    "app.commands.report",  # report (monitoring)
]

for _name in COMMAND_MODULES:
    try:
        _mod = importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # a group whose module is not written yet
        if exc.name != _name:
            raise
        continue
    _mod.register(root)


def _debug() -> bool:
    """SAHAYAK_DEBUG, read through the settings (False when the settings themselves are invalid,
    which is then the error being reported)."""
    try:
        return get_settings().debug
    except ValidationError:
        return False


def main() -> None:
    """Console entry point: run the CLI, turning errors into one line and exit code 1."""
    try:
        # With standalone_mode=False click returns (not raises) the code of typer.Exit.
        rc = root(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except SystemExit:
        raise
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except SahayakError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the contract is "never a traceback"
        # Usage errors (typer vendors click; match on the interface, not the class).
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code)
        if _debug():
            raise
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
