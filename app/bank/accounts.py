"""Customers, log-in, accounts and saved payees (beneficiaries).

Every customer-facing lookup takes the authenticated ``customer_id`` and only ever looks at
that customer's rows. The ``*_in`` functions work inside a caller's transaction, so transfers,
OTPs and applications resolve and lock rows in the same transaction that changes them.
"""

from __future__ import annotations

import difflib
import re
from typing import Callable, Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.bank.db import Database
from app.bank.errors import Ambiguous, BankError, NotFound
from app.bank.models import Account, Beneficiary, Customer
from app.bank.security import burn_password_check, hash_password, verify_password
from app.bank.text import mask_phone, normalise
from app.bank.views import AccountView, BeneficiaryView, CustomerView

# The demo passwords printed in the README: never accepted as a new password.
_PUBLISHED_PASSWORDS = frozenset({"demo1234", "staff1234"})

_ACCOUNT_ORDER = {"savings": 0, "current": 1}


# ---------------------------------------------------------------------- views
def customer_view(c: Customer) -> CustomerView:
    """The detached view of a customer row (phone masked)."""
    return CustomerView(
        id=c.id, username=c.username, full_name=c.full_name, role=c.role, city=c.city,
        phone_masked=mask_phone(c.phone) if c.phone else "", email=c.email,
    )


def account_view(a: Account) -> AccountView:
    """The detached view of an account row (with its branch's name and IFSC)."""
    return AccountView(
        id=a.id, number=a.number, masked=a.masked, type=a.type, currency=a.currency, balance=a.balance,
        status=a.status, branch=a.branch.name if a.branch else None, ifsc=a.branch.ifsc if a.branch else None,
    )


def beneficiary_view(b: Beneficiary) -> BeneficiaryView:
    """The detached view of a saved payee (account number masked)."""
    return BeneficiaryView(
        id=b.id, name=b.name, nickname=b.nickname, masked_account=b.masked, ifsc=b.ifsc,
        bank_name=b.bank_name, internal=b.account_id is not None,
    )


# ---------------------------------------------------------------------- in-transaction lookups
def customer_row(session: Session, customer_id: int, *, lock: bool = False) -> Customer:
    """The customer's row (``lock=True``: ``FOR UPDATE``); :class:`NotFound` for staff, system or unknown ids."""
    stmt = select(Customer).where(Customer.id == customer_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    customer = session.scalars(stmt).first()
    if customer is None or customer.role != "customer":
        raise NotFound("I couldn't find your customer profile. Please log in again.")
    return customer


def accounts_of(session: Session, customer_id: int) -> list[Account]:
    """The customer's account rows, savings first."""
    rows = session.scalars(select(Account).where(Account.customer_id == customer_id)).all()
    return sorted(rows, key=lambda a: (_ACCOUNT_ORDER.get(a.type, 9), a.id))


def resolve_account_in(session: Session, customer_id: int, ref: str | None) -> Account:
    """The customer's account row meant by ``ref`` (see :meth:`Accounts.resolve_account`)."""
    accounts = accounts_of(session, customer_id)
    if not accounts:
        raise NotFound("You don't have any accounts with us yet.")
    listing = ", ".join(f"{a.type.capitalize()} {a.masked}" for a in accounts)
    text = normalise(ref or "savings")
    words = text.split()
    if "saving" in text or "sb" in words:
        wanted = "savings"
    elif "current" in text or "ca" in words:
        wanted = "current"
    else:
        wanted = ""
    if wanted:
        matches = [a for a in accounts if a.type == wanted]
        if not matches:
            raise NotFound(f"You don't have a {wanted} account. Your accounts: {listing}.", choices=[listing])
    else:
        digits = re.sub(r"\D", "", text)
        if len(digits) < 4:
            raise NotFound(f"I couldn't tell which account you mean by '{ref}'. Your accounts: {listing}.")
        matches = [a for a in accounts if a.number == digits or a.number.endswith(digits)]
        if not matches:
            raise NotFound(f"You have no account ending {digits[-4:]}. Your accounts: {listing}.")
    if len(matches) > 1:
        labels = [f"{a.type.capitalize()} {a.masked}" for a in matches]
        raise Ambiguous(f"Which account: {', '.join(labels)}?", choices=labels)
    return matches[0]


def match_beneficiary(rows: Sequence[Beneficiary], name: str) -> Beneficiary:
    """The payee among ``rows`` called ``name`` (see :meth:`Accounts.resolve_beneficiary`)."""
    known = ", ".join(b.name for b in rows)
    query = normalise(name or "")
    query = re.sub(r"^(to|my|mr|mrs|ms|dr)\s+", "", query)
    if not rows:
        raise NotFound("You have no saved payees yet. Add one in net banking first.")
    if not query:
        raise NotFound(f"Who should I send it to? Your saved payees: {known}.", choices=[b.name for b in rows])

    def pick(found: Iterable[Beneficiary]) -> Beneficiary | None:
        unique = list(dict.fromkeys(found))
        if len(unique) == 1:
            return unique[0]
        if len(unique) > 1:
            names = [b.name for b in unique]
            raise Ambiguous(f"I found more than one payee like that: {', '.join(names)}. Which one?", choices=names)
        return None

    def keys(b: Beneficiary) -> list[str]:
        return [normalise(b.name)] + ([normalise(b.nickname)] if b.nickname else [])

    stages: list[Callable[[Beneficiary], bool]] = [
        lambda b: query in keys(b),
        lambda b: query in normalise(b.name).split(),
        lambda b: len(query) >= 3 and any(k.startswith(query) or any(t.startswith(query) for t in k.split()) for k in keys(b)),
    ]
    for stage in stages:
        chosen = pick(b for b in rows if stage(b))
        if chosen is not None:
            return chosen
    vocabulary: dict[str, list[Beneficiary]] = {}
    for b in rows:
        for k in keys(b) + normalise(b.name).split():
            vocabulary.setdefault(k, []).append(b)
    close = difflib.get_close_matches(query, list(vocabulary), n=5, cutoff=0.75)
    chosen = pick(b for k in close for b in vocabulary[k])
    if chosen is not None:
        return chosen
    raise NotFound(f"I couldn't find a payee called '{name}'. Your saved payees: {known}.", choices=[b.name for b in rows])


# ---------------------------------------------------------------------- the service part
class Accounts:
    """Log-in, customer profiles, accounts and beneficiaries (read-only)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def authenticate(self, username: str, password: str) -> CustomerView | None:
        """The customer or staff member with these credentials, else ``None``.

        The password check is constant-time and an unknown username costs the same as a
        wrong password, so timing does not reveal which usernames exist.
        """
        with self.db.read() as s:
            person = s.scalars(select(Customer).where(Customer.username == username.strip().lower())).first()
            if person is None or person.role == "system":
                burn_password_check(password)
                return None
            if not verify_password(password, person.password_hash):
                return None
            return customer_view(person)

    def set_password(self, username: str, password: str) -> None:
        """Give ``username`` a new password (an administrator's step, e.g. before a production deploy).

        Raises :class:`NotFound` for an unknown person and :class:`BankError` for a weak password."""
        if len(password) < 10 or password.lower() in _PUBLISHED_PASSWORDS or password.strip() != password:
            raise BankError("Choose a password of at least 10 characters that is not a published demo password.")
        with self.db.write() as s:
            person = s.scalars(select(Customer).where(Customer.username == username.strip().lower())).first()
            if person is None or person.role == "system":
                raise NotFound(f"no customer or staff member called {username!r}")
            person.password_hash = hash_password(password)

    def get_customer(self, username: str) -> CustomerView | None:
        """The customer or staff member called ``username`` (case-insensitive), else ``None``."""
        with self.db.read() as s:
            person = s.scalars(select(Customer).where(Customer.username == username.strip().lower())).first()
            return None if person is None or person.role == "system" else customer_view(person)

    def get_customer_by_id(self, customer_id: int) -> CustomerView | None:
        """The person with this id, else ``None``."""
        with self.db.read() as s:
            person = s.get(Customer, customer_id)
            return None if person is None or person.role == "system" else customer_view(person)

    def accounts(self, customer_id: int) -> list[AccountView]:
        """The customer's accounts, savings first."""
        with self.db.read() as s:
            return [account_view(a) for a in accounts_of(s, customer_id)]

    def resolve_account(self, customer_id: int, ref: str | None = None) -> AccountView:
        """One of the customer's accounts from "savings" / "current" / last 4 digits / full number.

        ``None`` means the savings account. Raises :class:`NotFound` (also for another
        customer's account number — the message never reveals that it exists) or
        :class:`Ambiguous`.
        """
        with self.db.read() as s:
            return account_view(resolve_account_in(s, customer_id, ref))

    def beneficiaries(self, customer_id: int) -> list[BeneficiaryView]:
        """The customer's saved payees, by name."""
        with self.db.read() as s:
            return [beneficiary_view(b) for b in self._beneficiary_rows(s, customer_id)]

    def resolve_beneficiary(self, customer_id: int, name: str) -> BeneficiaryView:
        """The customer's payee called ``name``: exact name or nickname (any case), then a
        first/last name, then a prefix, then a close spelling (difflib).

        Raises :class:`Ambiguous` listing the candidates, or :class:`NotFound` listing the
        customer's payees.
        """
        with self.db.read() as s:
            return beneficiary_view(match_beneficiary(self._beneficiary_rows(s, customer_id), name))

    @staticmethod
    def _beneficiary_rows(session: Session, customer_id: int) -> list[Beneficiary]:
        return list(session.scalars(
            select(Beneficiary).where(Beneficiary.customer_id == customer_id).order_by(Beneficiary.id)
        ))
