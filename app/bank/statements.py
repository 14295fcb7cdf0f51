"""Account statements: a CSV file of one account's ledger for a period, behind a signed, expiring link.

:meth:`Statements.create` writes ``$SAHAYAK_HOME/statements/<token>.csv`` (mode 0600; the token is
random, so names reveal nothing) and records who owns it and until when it may be fetched;
:meth:`Statements.link` signs a link to it (:mod:`app.core.links`, the scheme of the chat file
store); :meth:`Statements.open` is what the web route serves: only to the owner, only before expiry.
"""

from __future__ import annotations

import csv
import io
import secrets
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from app.bank.accounts import customer_row, resolve_account_in
from app.bank.clock import IST
from app.bank.db import Database, with_retry
from app.bank.errors import BankError, NotFound
from app.bank.facts import load_facts
from app.bank.models import Account, LedgerEntry, Statement, Transfer
from app.bank.views import StatementView
from app.core.fsutil import write_atomic
from app.core.links import LinkSigner, load_secret

ROUTE = "/statements"
CSV_MIME = "text/csv; charset=utf-8"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """A text cell that a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _ist_start(day: date) -> datetime:
    return datetime.combine(day, dtime(0, 0), tzinfo=IST)


def statement_view(row: Statement, account: Account) -> StatementView:
    """The detached view of a statement record."""
    return StatementView(
        token=row.token, account_masked=account.masked, account_type=account.type, period_from=row.period_from,
        period_to=row.period_to, filename=row.filename, rows=row.rows, created_at=row.created_at,
        expires_at=row.expires_at,
    )


class Statements:
    """Generate statement files and serve them to their owner."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def folder(self) -> Path:
        return Path(self.db.settings.home) / "statements"

    def signer(self) -> LinkSigner:
        """The link signer of statements (key from ``$SAHAYAK_HOME/keys/link_secret``)."""
        return LinkSigner(load_secret(self.db.settings.keys_dir), ROUTE, "statements")

    def create(self, customer_id: int, account_ref: str | None, period_from: str, period_to: str) -> StatementView:
        """Write the statement of the customer's account for ``period_from``..``period_to`` (ISO dates,
        IST, both included) and return its record; raises :class:`BankError` for an impossible period."""
        try:
            start_day, end_day = date.fromisoformat(period_from), date.fromisoformat(period_to)
        except ValueError:
            raise BankError("Please give the period as dates, for example 'last month' or 'Jan to March'.") from None
        rules = load_facts()["service_requests"]
        if start_day > end_day:
            raise BankError("The start of the period is after its end.")
        if (end_day - start_day).days + 1 > int(rules["statement_max_days"]):
            raise BankError(f"One statement covers at most {rules['statement_max_days']} days; please choose a shorter period.")
        ttl = timedelta(minutes=int(rules["statement_link_validity_minutes"]))

        def run() -> tuple[StatementView, bytes]:
            with self.db.write() as s:
                customer = customer_row(s, customer_id)
                account = resolve_account_in(s, customer_id, account_ref)
                start, end = _ist_start(start_day), _ist_start(end_day + timedelta(days=1))
                later = s.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                    LedgerEntry.account_id == account.id, LedgerEntry.created_at >= start)) or 0
                opening = account.balance - Decimal(later)
                entries = s.execute(
                    select(LedgerEntry, Transfer.reference).join(Transfer, Transfer.id == LedgerEntry.transfer_id)
                    .where(LedgerEntry.account_id == account.id, LedgerEntry.created_at >= start,
                           LedgerEntry.created_at < end)
                    .order_by(LedgerEntry.created_at, LedgerEntry.id)
                ).all()
                buf = io.StringIO()
                out = csv.writer(buf)
                out.writerow([load_facts()["bank"]["name"], "Account statement"])
                out.writerow(["Customer", _cell(customer.full_name)])
                out.writerow(["Account", f"{account.type.capitalize()} {account.masked}"])
                out.writerow(["Period", f"{start_day.isoformat()} to {end_day.isoformat()}"])
                out.writerow(["Opening balance", f"{opening:.2f}"])
                out.writerow([])
                out.writerow(["Date (IST)", "Description", "Reference", "Debit", "Credit", "Balance"])
                closing = opening  # the running balance from the opening one, so each statement adds up
                for entry, reference in entries:
                    closing += entry.amount
                    text = entry.description.removesuffix(reference).strip()
                    out.writerow([
                        entry.created_at.astimezone(IST).strftime("%Y-%m-%d %H:%M"), _cell(text), reference,
                        f"{-entry.amount:.2f}" if entry.amount < 0 else "", f"{entry.amount:.2f}" if entry.amount > 0 else "",
                        f"{closing:.2f}",
                    ])
                out.writerow([])
                out.writerow(["Closing balance", f"{closing:.2f}"])
                now = self.db.now()
                row = Statement(
                    token=secrets.token_urlsafe(24), customer_id=customer_id, account_id=account.id,
                    period_from=start_day.isoformat(), period_to=end_day.isoformat(),
                    filename=f"statement-{account.number[-4:]}-{start_day:%Y%m%d}-{end_day:%Y%m%d}.csv",
                    rows=len(entries), created_at=now, expires_at=now + ttl,
                )
                s.add(row)
                s.flush()
                return statement_view(row, account), buf.getvalue().encode("utf-8")

        view, body = with_retry(run)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self._path(view.token), body, mode=0o600)
        return view

    def link(self, view: StatementView) -> str:
        """The signed link (relative URL) to a statement, valid until the statement expires."""
        return self.signer().url(view.token, view.expires_at.timestamp())

    def check_link(self, token: str, expires: str | None, sig: str | None) -> bool:
        """True when a link's signature is good and its time has not passed (by this bank's clock)."""
        return self.signer().check(token, expires, sig, now=self.db.now().timestamp())

    def open(self, token: str, customer_id: int) -> tuple[bytes, str]:
        """(CSV bytes, file name) of the customer's own, unexpired statement; :class:`NotFound` otherwise
        (another customer's statement reads exactly like a missing one)."""
        with self.db.read() as s:
            row = s.scalars(select(Statement).where(Statement.token == token)).first()
            if row is None or row.customer_id != customer_id or row.expires_at <= self.db.now():
                raise NotFound("That statement link is not valid any more. Ask me for the statement again.")
            path = self._path(row.token)
            if not path.exists():
                raise NotFound("That statement file is no longer available. Ask me for the statement again.")
            return path.read_bytes(), row.filename

    def _path(self, token: str) -> Path:
        # Tokens are URL-safe base64 (letters, digits, - and _): they cannot leave the folder.
        if not token or not all(ch.isalnum() or ch in "-_" for ch in token):
            raise NotFound("That statement link is not valid.")
        return self.folder / f"{token}.csv"
