"""`sahayak chat` (terminal chat) and `sahayak turn` (one turn, JSON out)."""

from __future__ import annotations

import json
import sys
import uuid
from typing import Optional

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from app.bank.seed import seed
from app.conversation.wiring import build_assistant, serving_process
from app.core.errors import SahayakError
from app.core.types import MessageEnvelope, TurnResult


def register(root: typer.Typer) -> None:
    root.command("chat")(chat)
    root.command("turn")(turn)


def _assistant():
    seed()  # idempotent: the demo bank exists on first use
    serving_process()
    return build_assistant()


def turn(
    text: Optional[str] = typer.Argument(None, help="The customer's message (omit with --jsonl)."),
    user: Optional[str] = typer.Option(None, "--user", "-u", help="Customer username (e.g. asha)."),
    session: Optional[str] = typer.Option(None, "--session", "-s", help="Session id; reuse it to continue a conversation."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    jsonl: bool = typer.Option(False, "--jsonl", help='Read {"user", "session", "text"} per line from stdin, '
                               "write one JSON result per line (one process, flushed per line)."),
) -> None:
    """Process one message in a persistent session and print the result (or a stream with --jsonl)."""
    if jsonl:
        _turn_stream()
        return
    if text is None or not user or not session:
        raise typer.BadParameter("give the message, --user and --session (or use --jsonl)")
    assistant = _assistant()
    try:
        result = assistant.handle(MessageEnvelope(user_id=user, session_id=session, channel="cli", text=text))
    finally:
        assistant.close()  # provenance is durable before the process exits
    if as_json:
        typer.echo(json.dumps(result.public(), ensure_ascii=False, default=str))
    else:
        typer.echo(result.reply)
        if result.data.get("sms"):
            typer.echo(f"[SMS] {result.data['sms']}")


def _turn_stream() -> None:
    """One turn per stdin line; a bad line gets an ``{"error": …}`` line and the stream goes on."""
    assistant = _assistant()
    try:
        for n, line in enumerate(sys.stdin, 1):
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
                if not isinstance(msg, dict) or not isinstance(msg.get("text"), str) or not msg.get("session"):
                    raise ValueError('each line needs "session" and "text" (and "user" when logged in)')
                result = assistant.handle(MessageEnvelope(user_id=msg.get("user"), session_id=str(msg["session"]),
                                                          channel="cli", text=msg["text"]))
                out: dict = result.public()
            except (ValueError, SahayakError) as exc:
                out = {"line": n, "error": str(exc)}
            sys.stdout.write(json.dumps(out, ensure_ascii=False, default=str) + "\n")
            sys.stdout.flush()  # a driver reads each reply before it writes the next line
    finally:
        assistant.close()


def chat(
    user: str = typer.Option(..., "--user", "-u", help="Customer username (e.g. asha)."),
    session: Optional[str] = typer.Option(None, "--session", "-s", help="Continue an existing session."),
    debug: bool = typer.Option(False, "--debug", help="Show intent, confidence, entities and state each turn."),
) -> None:
    """Chat with Sahayak in the terminal (type 'quit' to leave)."""
    console = Console()
    session = session or f"cli-{uuid.uuid4().hex[:12]}"
    with console.status("Loading models…"):
        assistant = _assistant()
        assistant.warm_up()
    console.print(Panel.fit(f"Sahayak — logged in as [bold]{user}[/]  (session {session}). "
                            "Type 'quit' to leave.", style="cyan"))
    try:
        while True:
            try:
                text = console.input("[bold green]you ›[/] ")
            except EOFError:
                break
            if text.strip().lower() in {"quit", "exit", ":q"}:
                break
            if not text.strip():
                continue
            result = assistant.handle(MessageEnvelope(user_id=user, session_id=session, channel="cli", text=text))
            _print_reply(console, result, debug)
    finally:
        assistant.close()
        console.print("[dim]Session saved. Goodbye.[/]")


def _print_reply(console: Console, result: TurnResult, debug: bool) -> None:
    """One reply of the terminal chat: text, demo SMS, sources and (with --debug) the pipeline's view."""
    # Text objects never interpret markup, so a reply can't inject rich styling.
    console.print(Text.assemble(("sahayak › ", "bold cyan"), result.reply))
    if result.data.get("sms"):
        console.print(Text.assemble(("📱 SMS to your phone: ", "yellow"), result.data["sms"]))
    for c in result.data.get("citations", []) or []:
        console.print(Text(f"   source: {c.get('doc_id')} — {c.get('title')}", style="dim"))
    if debug:
        console.print(Text(f"intent={result.intent} ({result.confidence:.2f}) handler={result.handler} "
                           f"state={result.state} entities={json.dumps(result.entities, default=str)} "
                           f"{result.timings_ms.get('total', 0):.0f} ms", style="dim"))
