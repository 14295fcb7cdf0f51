"""`sahayak bank seed|reset|show|branches|handoffs|sms` — the demo bank from the command line."""

from __future__ import annotations

import sys
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from app.bank.seed import reset, seed
from app.bank.service import BankService
from app.bank.db import Database
from app.bank.views import CustomerView
from app.conversation.support import SupportStore
from app.core.errors import SahayakError
from app.core.money import format_money
from app.core.settings import get_settings

bank_app = typer.Typer(help="The demo bank: seed, reset and inspect it.", no_args_is_help=True)

URL_HELP = "SQLAlchemy URL (default: SAHAYAK_DATABASE_URL or sqlite under SAHAYAK_HOME)."


def register(root: typer.Typer) -> None:
    root.add_typer(bank_app, name="bank")


def _console() -> Console:
    return Console()


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} +{n}" for name, n in counts.items())


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@bank_app.command("set-password")
def set_password_cmd(
    user: str = typer.Option(..., "--user", "-u", help="Customer or staff username."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the new password from stdin (scripts)."),
) -> None:
    """Set a new password — what a bank does for the seeded accounts before SAHAYAK_ENV=production."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    BankService(get_settings().db_url).set_password(user, password)
    _console().print(f"[green]✓[/] new password set for {user}")


@bank_app.command("seed")
def seed_cmd(url: Optional[str] = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """Create the tables and add the demo customers, accounts, cards, payees, branches and loans (idempotent)."""
    target = url or get_settings().db_url
    with _console().status("seeding the demo bank …"):
        counts = seed(target)
    typer.echo(f"seeded {_safe_url(target)}: {_counts_line(counts)}")


@bank_app.command("reset")
def reset_cmd(
    url: Optional[str] = typer.Option(None, "--url", help=URL_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Drop every bank table (balances, transfers, sessions, tickets, feedback) and seed again."""
    target = url or get_settings().db_url
    if not yes:
        typer.confirm(f"Erase all bank data in {_safe_url(target)} and re-seed the demo bank?", abort=True)
    with _console().status("resetting the demo bank …"):
        counts = reset(target)
    typer.echo(f"reset {_safe_url(target)}: {_counts_line(counts)}")


@bank_app.command("show")
def show_cmd(
    user: str = typer.Option(..., "--user", "-u", help="Username, e.g. asha or ravi."),
    url: Optional[str] = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """A customer's profile, accounts, cards, payees and latest transfers."""
    bank = BankService(url)
    customer = bank.get_customer(user)
    if customer is None:
        raise SahayakError(f"no user '{user}' in {_safe_url(bank.url)} (run `sahayak bank seed` first?)")
    console = _console()
    console.print(f"[bold]{customer.full_name}[/] ({customer.username}, {customer.role}, {customer.city}) "
                  f"phone {customer.phone_masked}")
    if customer.role != "customer":
        return
    for build in (_accounts_table, _cards_table, _payees_table, _transfers_table):
        console.print(build(bank, customer))


def _accounts_table(bank: BankService, customer: CustomerView) -> Table:
    accounts = Table(title="Accounts")
    for col in ("account", "type", "balance", "status", "branch", "IFSC"):
        accounts.add_column(col, justify="right" if col == "balance" else "left", no_wrap=col in ("account", "balance"))
    for a in bank.accounts(customer.id):
        accounts.add_row(a.masked, a.type, format_money(a.balance), a.status, a.branch or "", a.ifsc or "")
    return accounts


def _cards_table(bank: BankService, customer: CustomerView) -> Table:
    cards = Table(title="Cards")
    for col in ("card", "type", "network", "variant", "status"):
        cards.add_column(col)
    for c in bank.cards(customer.id):
        cards.add_row(f"XXXX {c.last4}", c.type, c.network, c.variant, c.status)
    return cards


def _payees_table(bank: BankService, customer: CustomerView) -> Table:
    payees = Table(title="Beneficiaries")
    for col in ("name", "nickname", "account", "IFSC", "bank"):
        payees.add_column(col)
    for b in bank.beneficiaries(customer.id):
        payees.add_row(b.name, b.nickname or "", b.masked_account, b.ifsc, b.bank_name + (" (internal)" if b.internal else ""))
    return payees


def _transfers_table(bank: BankService, customer: CustomerView) -> Table:
    transfers = Table(title=f"Latest transfers (today: {format_money(bank.daily_total(customer.id))} "
                            f"of {format_money(bank.settings.daily_transfer_limit)})")
    for col in ("reference", "when (UTC)", "from", "to", "amount", "status"):
        transfers.add_column(col, justify="right" if col == "amount" else "left", no_wrap=col in ("reference", "amount"))
    for t in bank.recent_transfers(customer.id, limit=10):
        transfers.add_row(t.reference, f"{t.created_at:%Y-%m-%d %H:%M}", t.from_account, t.beneficiary,
                          format_money(t.amount), t.status + (f" ({t.failure_code})" if t.failure_code else ""))
    return transfers


@bank_app.command("branches")
def branches_cmd(
    query: str = typer.Argument(..., help="A pincode (400050) or a place (Bandra, Pune)."),
    limit: int = typer.Option(3, "--limit", "-n", min=1, max=50),
    kind: Optional[str] = typer.Option(None, "--kind", help="atm | branch"),
    url: Optional[str] = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Branches and ATMs near a pincode or place."""
    table = Table(title=f"Near {query}")
    for col in ("code", "name", "kind", "address", "pincode", "km", "hours"):
        table.add_column(col)
    for b in BankService(url).branches_near(query, limit=limit, kind=kind):
        table.add_row(b.code, b.name, b.kind, b.address, b.pincode,
                      "" if b.distance_km is None else f"{b.distance_km:.1f}", b.hours)
    _console().print(table)


@bank_app.command("handoffs")
def handoffs_cmd(
    status: str = typer.Option("open", "--status", help="open | claimed | closed | all"),
    url: Optional[str] = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Conversations handed over to a human agent."""
    table = Table(title=f"Hand-off tickets ({status})")
    for col in ("reference", "created (UTC)", "user", "session", "reason", "status", "claimed by"):
        table.add_column(col, no_wrap=col in ("reference", "status"))
    for t in SupportStore(Database(url)).list_handoffs(None if status == "all" else status):
        table.add_row(t.reference, f"{t.created_at:%Y-%m-%d %H:%M}", t.user_id or "-", t.session_id, t.reason,
                      t.status, t.claimed_by or "")
    _console().print(table)


@bank_app.command("sms")
def sms_cmd(last: int = typer.Option(5, "--last", "-n", min=1, help="How many messages to show.")) -> None:
    """The latest messages of the SMS outbox (where demo OTPs are 'sent')."""
    path = get_settings().outbox_dir / "sms.log"
    if not path.exists():
        typer.echo(f"no SMS sent yet ({path})")
        return
    for line in path.read_text(encoding="utf-8").splitlines()[-last:]:
        typer.echo(line)
