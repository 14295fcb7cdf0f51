"""The demo bank: customers, accounts, cards, beneficiaries, branches/ATMs, loan products.

:func:`seed` is idempotent (it adds whatever is missing, keyed on natural keys, and never
touches existing rows); :func:`reset` drops every bank table and seeds again. Loan numbers
come from ``data/bank_facts.yaml``, the single source of product facts.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Callable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.bank.clock import IST, utcnow
from app.bank.db import drop_all, init_db, session_scope, with_retry
from app.bank.facts import FACTS_PATH, load_facts
from app.bank.models import (
    CARD_PAYMENTS_ACCOUNT_NUMBER,
    CLEARING_ACCOUNT_NUMBER,
    Account,
    Beneficiary,
    Branch,
    Card,
    CardBill,
    CardDispatch,
    Customer,
    LedgerEntry,
    LoanProduct,
    Transfer,
)
from app.bank.schema import Base
from app.bank.security import hash_password
from app.core.settings import get_settings

__all__ = ["BANK_USERNAME", "CLEARING_ACCOUNT_NUMBER", "FACTS_PATH", "clear", "load_facts", "reseed", "reset", "seed"]

BANK_USERNAME = "sahayak-bank"

BRANCH_HOURS = "Mon-Sat 10:00-16:00 (closed 2nd and 4th Saturday)"
ATM_HOURS = "24x7"

# code, name suffix, kind, address, area, city, pincode, lat, lon, phone
_BRANCHES: list[tuple[str, str, str, str, str, str, str, float, float, str]] = [
    # Mumbai
    ("MUM001", "Fort", "both", "14 Sir Pherozeshah Mehta Road, Fort", "Fort", "Mumbai", "400001", 18.9322, 72.8351, "022-2266 0101"),
    ("MUM002", "Colaba", "both", "Shop 3, Colaba Causeway, near Regal Cinema", "Colaba", "Mumbai", "400005", 18.9067, 72.8147, "022-2284 0102"),
    ("MUM003", "Nariman Point", "atm", "Express Towers lobby, Ramnath Goenka Marg, Nariman Point", "Nariman Point", "Mumbai", "400021", 18.9256, 72.8242, ""),
    ("MUM004", "Churchgate", "atm", "Churchgate Station concourse, Maharshi Karve Road", "Churchgate", "Mumbai", "400020", 18.9322, 72.8264, ""),
    ("MUM005", "Dadar", "both", "Kohinoor Square, N C Kelkar Road, Dadar West", "Dadar", "Mumbai", "400028", 19.0213, 72.8424, "022-2430 0105"),
    ("MUM006", "Dadar East", "atm", "Dr Ambedkar Road, near Dadar TT, Dadar East", "Dadar", "Mumbai", "400014", 19.0178, 72.8478, ""),
    ("MUM007", "Worli", "branch", "Ground floor, Ceejay House, Dr Annie Besant Road, Worli", "Worli", "Mumbai", "400018", 19.0176, 72.8162, "022-2493 0107"),
    ("MUM008", "Lower Parel", "both", "Kamala Mills Compound, Senapati Bapat Marg, Lower Parel", "Lower Parel", "Mumbai", "400013", 18.9953, 72.8300, "022-2490 0108"),
    ("MUM009", "Bandra West", "both", "Hill Road, opposite Elco Market, Bandra West", "Bandra", "Mumbai", "400050", 19.0596, 72.8295, "022-2642 0109"),
    ("MUM010", "Bandra Kurla Complex", "both", "G Block, Bandra Kurla Complex, Bandra East", "BKC", "Mumbai", "400051", 19.0660, 72.8683, "022-2659 0110"),
    ("MUM011", "Santacruz", "atm", "Linking Road, near Santacruz Station, Santacruz West", "Santacruz", "Mumbai", "400054", 19.0810, 72.8410, ""),
    ("MUM012", "Andheri West", "both", "Lokhandwala Complex Back Road, Andheri West", "Andheri", "Mumbai", "400053", 19.1414, 72.8256, "022-2639 0112"),
    ("MUM013", "Andheri DN Nagar", "atm", "J P Road, near D N Nagar Metro, Andheri West", "Andheri", "Mumbai", "400058", 19.1197, 72.8468, ""),
    ("MUM014", "Andheri East", "both", "Chakala, Andheri-Kurla Road, Andheri East", "Andheri", "Mumbai", "400069", 19.1136, 72.8697, "022-2683 0114"),
    ("MUM015", "Goregaon", "atm", "S V Road, near Goregaon Station, Goregaon West", "Goregaon", "Mumbai", "400062", 19.1663, 72.8486, ""),
    ("MUM016", "Malad", "both", "Infiniti Mall Road, Link Road, Malad West", "Malad", "Mumbai", "400064", 19.1874, 72.8347, "022-2880 0116"),
    ("MUM017", "Borivali", "both", "Dattapada Road, Borivali East", "Borivali", "Mumbai", "400066", 19.2307, 72.8567, "022-2870 0117"),
    ("MUM018", "Powai", "both", "Hiranandani Gardens, Central Avenue, Powai", "Powai", "Mumbai", "400076", 19.1176, 72.9060, "022-2570 0118"),
    ("MUM019", "Ghatkopar", "atm", "M G Road, Ghatkopar East", "Ghatkopar", "Mumbai", "400077", 19.0860, 72.9081, ""),
    ("MUM020", "Chembur", "branch", "Union Park, near Diamond Garden, Chembur", "Chembur", "Mumbai", "400071", 19.0522, 72.9005, "022-2522 0120"),
    ("MUM021", "Mulund", "atm", "Nahur Road, Mulund West", "Mulund", "Mumbai", "400080", 19.1726, 72.9425, ""),
    ("THN001", "Thane", "both", "Gokhale Road, Naupada, Thane West", "Thane", "Thane", "400602", 19.1907, 72.9714, "022-2540 0122"),
    ("THN002", "Thane Station", "atm", "Station Road, Thane West", "Thane", "Thane", "400601", 19.1860, 72.9756, ""),
    # Navi Mumbai
    ("NVM001", "Vashi", "both", "Sector 17, Palm Beach Road, Vashi", "Vashi", "Navi Mumbai", "400703", 19.0771, 72.9986, "022-2789 0124"),
    ("NVM002", "Nerul", "atm", "Sector 19, near Nerul Station, Nerul West", "Nerul", "Navi Mumbai", "400706", 19.0330, 73.0297, ""),
    ("NVM003", "CBD Belapur", "both", "Sector 11, CBD Belapur", "Belapur", "Navi Mumbai", "400614", 19.0189, 73.0395, "022-2757 0126"),
    ("NVM004", "Kharghar", "both", "Sector 7, Kharghar", "Kharghar", "Navi Mumbai", "410210", 19.0473, 73.0699, "022-2774 0127"),
    ("NVM005", "Airoli", "atm", "Sector 3, Airoli", "Airoli", "Navi Mumbai", "400708", 19.1590, 72.9986, ""),
    # Pune
    ("PUN001", "Shivajinagar", "both", "Jangli Maharaj Road, Shivajinagar", "Shivajinagar", "Pune", "411005", 18.5308, 73.8475, "020-2553 0129"),
    ("PUN002", "Kothrud", "both", "Karve Road, near Dahanukar Colony, Kothrud", "Kothrud", "Pune", "411038", 18.5074, 73.8077, "020-2546 0130"),
    ("PUN003", "Hinjewadi", "both", "Phase 1, Rajiv Gandhi Infotech Park, Hinjewadi", "Hinjewadi", "Pune", "411057", 18.5913, 73.7389, "020-2293 0131"),
    ("PUN004", "Viman Nagar", "atm", "Nagar Road, near Phoenix Marketcity, Viman Nagar", "Viman Nagar", "Pune", "411014", 18.5679, 73.9143, ""),
    ("PUN005", "Koregaon Park", "both", "North Main Road, Koregaon Park", "Koregaon Park", "Pune", "411001", 18.5362, 73.8940, "020-2615 0133"),
    ("PUN006", "Camp", "atm", "M G Road, Camp", "Camp", "Pune", "411001", 18.5158, 73.8785, ""),
    ("PUN007", "Baner", "branch", "Baner Road, near Balewadi Phata, Baner", "Baner", "Pune", "411045", 18.5590, 73.7868, "020-2729 0135"),
    ("PUN008", "Hadapsar", "atm", "Magarpatta City Gate, Hadapsar", "Hadapsar", "Pune", "411028", 18.5089, 73.9260, ""),
    ("PUN009", "Aundh", "atm", "ITI Road, Aundh", "Aundh", "Pune", "411007", 18.5580, 73.8075, ""),
    # Delhi
    ("DEL001", "Connaught Place", "both", "N Block, Middle Circle, Connaught Place", "Connaught Place", "New Delhi", "110001", 28.6315, 77.2167, "011-2341 0138"),
    ("DEL002", "Karol Bagh", "both", "Ajmal Khan Road, Karol Bagh", "Karol Bagh", "New Delhi", "110005", 28.6519, 77.1909, "011-2572 0139"),
    ("DEL003", "Chandni Chowk", "atm", "Chandni Chowk Road, near Town Hall", "Chandni Chowk", "Delhi", "110006", 28.6506, 77.2303, ""),
    ("DEL004", "Saket", "both", "Press Enclave Marg, Saket", "Saket", "New Delhi", "110017", 28.5245, 77.2066, "011-2956 0141"),
    ("DEL005", "Nehru Place", "atm", "Nehru Place Market, near Satyam Cinema", "Nehru Place", "New Delhi", "110019", 28.5494, 77.2530, ""),
    ("DEL006", "Lajpat Nagar", "branch", "Central Market, Lajpat Nagar II", "Lajpat Nagar", "New Delhi", "110024", 28.5677, 77.2433, "011-2981 0143"),
    ("DEL007", "Dwarka", "both", "Sector 6 Market, Dwarka", "Dwarka", "New Delhi", "110075", 28.5921, 77.0460, "011-2508 0144"),
    ("DEL008", "Rohini", "both", "Sector 7, near Rohini East Metro, Rohini", "Rohini", "Delhi", "110085", 28.7158, 77.1123, "011-2705 0145"),
    ("DEL009", "Rajouri Garden", "atm", "J Block Market, Rajouri Garden", "Rajouri Garden", "New Delhi", "110027", 28.6415, 77.1209, ""),
]

# username, full name, phone, email, role, city, home branch code
_PEOPLE: list[tuple[str, str, str, str, str, str, str]] = [
    ("asha", "Asha Menon", "+919820011234", "asha.menon@example.in", "customer", "Mumbai", "MUM009"),
    ("ravi", "Ravi Kumar", "+919822045678", "ravi.kumar@example.in", "customer", "Pune", "PUN001"),
    ("meera", "Meera Iyer", "+919833067890", "meera.iyer@sahayakbank.example", "staff", "Mumbai", "MUM001"),
]
# The seeded demo people: with their published passwords they may not sign in when SAHAYAK_ENV=production.
DEMO_USERNAMES = frozenset(p[0] for p in _PEOPLE)

# username, number, type, balance
_ACCOUNTS: list[tuple[str, str, str, str]] = [
    ("asha", "501000427781", "savings", "125000.00"),
    ("asha", "502000429034", "current", "340000.00"),
    ("ravi", "501000583362", "savings", "48500.00"),
    ("ravi", "502000584410", "current", "75000.00"),
]

# username, last4, type, network, variant, linked account number (None for credit)
_CARDS: list[tuple[str, str, str, str, str, str | None]] = [
    ("asha", "4321", "debit", "Visa", "Platinum", "501000427781"),
    ("asha", "8765", "credit", "Mastercard", "Signature", None),
    ("ravi", "1122", "debit", "RuPay", "Classic", "501000583362"),
    ("ravi", "3344", "credit", "Visa", "Gold", None),
]

# owner, name, nickname, account number, ifsc (None = our branch of the payee), bank, internal target
_BENEFICIARIES: list[tuple[str, str, str | None, str, str | None, str, bool]] = [
    ("asha", "Ravi Kumar", "ravi", "501000583362", None, "Sahayak Bank", True),
    ("asha", "Priya Sharma", None, "50100234567890", "HDFC0000240", "HDFC Bank", False),
    ("asha", "Mom", "mom", "30987650918", "SBIN0000691", "State Bank of India", False),
    ("asha", "Vikram Nair", None, "917010045612", "UTIB0000004", "Axis Bank", False),
    ("ravi", "Asha Menon", "asha", "501000427781", None, "Sahayak Bank", True),
    ("ravi", "Landlord Deshpande", "landlord", "000401567890", "ICIC0000004", "ICICI Bank", False),
    ("ravi", "Sunita Kumar", "sister", "20045678123", "SBIN0001234", "State Bank of India", False),
]

# Card deliveries: username, last4, reason, status, requested (days ago), dispatched (days ago), courier,
# tracking reference, expected (days from now), delivered (days ago)
_DISPATCHES: list[tuple[str, str, str, str, int, int | None, str | None, str | None, int | None, int | None]] = [
    ("asha", "8765", "replacement", "dispatched", 4, 2, "Blue Dart", "BD7041255390", 3, None),
    ("asha", "4321", "new", "delivered", 210, 206, "India Post", "EK482913775IN", None, 202),
    ("ravi", "1122", "renewal", "processing", 1, None, None, None, 6, None),
    ("ravi", "3344", "new", "delivered", 120, 117, "DTDC", "D61028834", None, 113),
]

# Credit-card bills: username, last4, statement (days ago), due (days from now), total due, minimum due
_BILLS: list[tuple[str, str, int, int, str, str]] = [
    ("asha", "8765", 12, 8, "18450.00", "922.50"),
    ("ravi", "3344", 5, 15, "6200.00", "310.00"),
]

# Past transfers (statements and transfer status have something to show): key, owner, from account,
# payee name (None: to `to_account`), to account number, amount, status, age, failure reason.
_HISTORY: list[tuple[str, str, str, str | None, str | None, str, str, timedelta, str | None]] = [
    ("seed-ravi-asha", "ravi", "501000583362", "Asha Menon", None, "2000.00", "completed", timedelta(days=20), None),
    ("seed-asha-own", "asha", "502000429034", None, "501000427781", "20000.00", "completed", timedelta(days=15), None),
    ("seed-asha-priya", "asha", "501000427781", "Priya Sharma", None, "5000.00", "completed", timedelta(days=8), None),
    ("seed-ravi-landlord", "ravi", "501000583362", "Landlord Deshpande", None, "18000.00", "completed",
     timedelta(days=5), None),
    ("seed-asha-vikram", "asha", "501000427781", "Vikram Nair", None, "12000.00", "failed", timedelta(days=3),
     "Axis Bank did not confirm the credit in time, so the transfer was stopped; your account was not debited."),
    ("seed-ravi-sunita", "ravi", "501000583362", "Sunita Kumar", None, "4000.00", "failed", timedelta(days=1),
     "State Bank of India rejected it: the account number and name did not match. Your account was not debited."),
    ("seed-asha-mom", "asha", "501000427781", "Mom", None, "3000.00", "pending", timedelta(hours=2), None),
]

_LOAN_NAMES = {
    "home": "Sahayak Home Loan",
    "car": "Sahayak Car Loan",
    "personal": "Sahayak Personal Loan",
    "education": "Sahayak Education Loan",
    "gold": "Sahayak Gold Loan",
}


def _ifsc(prefix: str, code: str) -> str:
    # IFSC: 4 letters, a zero, then 6 branch characters; our branch codes are 3 letters + 3 digits.
    return (prefix + code)[:11]


@lru_cache(maxsize=32)
def _demo_password_hash(username: str, password: str) -> str:
    # scrypt is deliberately slow; a process that re-seeds (tests, `bank reset`) reuses each
    # demo user's salted hash. Different users still get different salts.
    return hash_password(password)


def _ensure(session: Session, model: type, key: Callable[[Any], tuple], wanted: list[dict[str, Any]]) -> tuple[dict[tuple, Any], int]:
    """Rows of ``model`` for each spec in ``wanted``, adding those whose natural key is missing.

    One query for the existing rows and one flush for the new ones keeps seeding fast.
    """
    existing = {key(row): row for row in session.scalars(select(model))}
    missing = [model(**spec) for spec in wanted if key(_Spec(spec)) not in existing]
    if missing:
        session.add_all(missing)
        session.flush()
        existing.update({key(row): row for row in missing})
    return existing, len(missing)


class _Spec:
    """Attribute access over a dict, so one key function serves rows and specs."""

    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)


def _seed_in(session: Session, password: str, staff_password: str, facts: dict[str, Any]) -> dict[str, int]:
    added: dict[str, int] = {}
    prefix = facts["bank"]["ifsc_prefix"]
    bank_name = facts["bank"]["name"]

    by_code, added["branches"] = _ensure(session, Branch, lambda b: (b.code,), [
        dict(code=code, name=f"{bank_name}, {name}", kind=kind, address=address, area=area, city=city,
             pincode=pincode, latitude=lat, longitude=lon, phone=phone,
             hours=ATM_HOURS if kind == "atm" else BRANCH_HOURS + ("; ATM 24x7" if kind == "both" else ""),
             ifsc=None if kind == "atm" else _ifsc(prefix, code))
        for code, name, kind, address, area, city, pincode, lat, lon, phone in _BRANCHES
    ])
    branches = {k[0]: b for k, b in by_code.items()}

    people_specs = [dict(username=BANK_USERNAME, full_name=bank_name, role="system", password_hash="!disabled",
                         city="Mumbai", phone="", email="")]
    for username, full_name, phone, email, role, city, _home in _PEOPLE:
        pw = staff_password if role == "staff" else password
        people_specs.append(dict(username=username, full_name=full_name, phone=phone, email=email, role=role,
                                 city=city, password_hash=_demo_password_hash(username, pw)))
    by_name, added["customers"] = _ensure(session, Customer, lambda c: (c.username,), people_specs)
    people = {k[0]: c for k, c in by_name.items()}
    home_branch = {p[0]: branches[p[6]] for p in _PEOPLE}

    account_specs = [dict(number=number, type="clearing", currency="INR", balance=Decimal("0.00"),
                          customer_id=None, branch_id=branches["MUM001"].id)
                     for number in (CLEARING_ACCOUNT_NUMBER, CARD_PAYMENTS_ACCOUNT_NUMBER)]
    account_specs += [
        dict(number=number, type=type_, currency="INR", balance=Decimal(balance), customer_id=people[username].id,
             branch_id=home_branch[username].id)
        for username, number, type_, balance in _ACCOUNTS
    ]
    by_number, added["accounts"] = _ensure(session, Account, lambda a: (a.number,), account_specs)
    accounts = {k[0]: a for k, a in by_number.items()}

    cards, added["cards"] = _ensure(session, Card, lambda c: (c.customer_id, c.last4), [
        dict(customer_id=people[username].id, last4=last4, type=type_, network=network, variant=variant,
             status="active", account_id=accounts[linked].id if linked else None)
        for username, last4, type_, network, variant, linked in _CARDS
    ])

    payees = []
    for owner, name, nickname, number, ifsc, payee_bank, internal in _BENEFICIARIES:
        target = accounts.get(number) if internal else None
        payees.append(dict(
            customer_id=people[owner].id, name=name, nickname=nickname, account_number=number,
            ifsc=ifsc or _ifsc(prefix, target.branch.code if target and target.branch else "MUM001"),
            bank_name=payee_bank, account_id=target.id if target else None,
        ))
    by_payee, added["beneficiaries"] = _ensure(session, Beneficiary, lambda b: (b.customer_id, b.name), payees)

    now = utcnow()
    card_ids = {(username, last4): cards[(people[username].id, last4)].id for username, last4, *_ in _CARDS}
    _dispatches, added["card_dispatches"] = _ensure(session, CardDispatch, lambda d: (d.card_id,), [
        dict(card_id=card_ids[(user, last4)], reason=reason, status=status, requested_at=now - timedelta(days=asked),
             dispatched_at=now - timedelta(days=sent) if sent is not None else None, courier=courier,
             tracking_ref=tracking, expected_by=now + timedelta(days=expected) if expected is not None else None,
             delivered_at=now - timedelta(days=delivered) if delivered is not None else None)
        for user, last4, reason, status, asked, sent, courier, tracking, expected, delivered in _DISPATCHES
    ])
    _bills, added["card_bills"] = _ensure(session, CardBill, lambda b: (b.card_id,), [
        dict(card_id=card_ids[(user, last4)], statement_date=now - timedelta(days=ago), due_date=now + timedelta(days=due),
             total_due=Decimal(total), minimum_due=Decimal(minimum), paid=Decimal("0.00"))
        for user, last4, ago, due, total, minimum in _BILLS
    ])
    added["transfers"] = _seed_history(session, now, people, accounts, {k: b for k, b in by_payee.items()})

    _loans, added["loan_products"] = _ensure(session, LoanProduct, lambda p: (p.kind,), [
        dict(kind=kind, name=_LOAN_NAMES.get(kind, f"{bank_name} {kind.capitalize()} Loan"),
             rate_min=Decimal(str(spec["rate_pct_min"])), rate_max=Decimal(str(spec["rate_pct_max"])),
             max_tenure_years=int(spec["max_tenure_years"]),
             min_amount=Decimal(str(spec["min_amount_inr"])), max_amount=Decimal(str(spec["max_amount_inr"])),
             processing_fee_pct=Decimal(str(spec["processing_fee_pct"])))
        for kind, spec in facts["loans"].items()
    ])
    return added


def _seed_history(session: Session, now: datetime, people: dict[str, Customer], accounts: dict[str, Account],
                  payees: dict[tuple, Beneficiary]) -> int:
    """Add the past transfers and their ledger entries once (all or none), leaving every balance as
    seeded: each entry's running balance is worked out backwards from today's balance."""
    keys = [h[0] for h in _HISTORY]
    if session.scalar(select(Transfer.id).where(Transfer.idempotency_key.in_(keys)).limit(1)) is not None:
        return 0
    clearing = accounts[CLEARING_ACCOUNT_NUMBER]
    entries: list[tuple[datetime, Account, Decimal, Transfer, str]] = []
    for key, owner, from_number, payee_name, to_number, amount, status, age, reason in _HISTORY:
        when = now - age
        source = accounts[from_number]
        payee = payees[(people[owner].id, payee_name)] if payee_name else None
        target = accounts[to_number] if to_number else (payee.account if payee and payee.account else clearing)
        value = Decimal(amount)
        t = Transfer(idempotency_key=key, reference=f"TXN{when.astimezone(IST):%y%m%d}{hashlib.sha256(key.encode()).hexdigest()[:8].upper()}",
                     from_account_id=source.id, to_beneficiary_id=payee.id if payee else None, to_account_id=target.id,
                     amount=value, status=status, channel="netbanking", created_by=people[owner].id, created_at=when,
                     completed_at=when if status == "completed" else None,
                     failure_code="beneficiary_bank" if status == "failed" else None, failure_reason=reason)
        session.add(t)
        if status != "failed":  # a pending transfer has left the account and waits for the other bank
            to_name = payee.name if payee else f"own {target.type} account {target.masked}"
            entries.append((when, source, -value, t, f"To {to_name}"))
            entries.append((when, target, value, t, f"From {source.masked}"))
    session.flush()
    running = {a.id: a.balance for a in accounts.values()}
    ledger = []
    for when, account, value, t, text in sorted(entries, key=lambda e: e[0], reverse=True):
        ledger.append(LedgerEntry(account_id=account.id, transfer_id=t.id, amount=value, balance_after=running[account.id],
                                  description=f"{text} {t.reference}", created_at=when))
        running[account.id] -= value
    session.add_all(ledger)
    session.flush()
    return len(_HISTORY)


def seed(url: str | None = None, password: str | None = None, *, staff_password: str | None = None) -> dict[str, int]:
    """Create the schema and add any missing demo data; returns how many rows of each kind were added.

    Customers get ``password`` (default ``settings.demo_password``), staff get
    ``staff_password`` (default ``settings.staff_password``). Existing rows are left alone.
    """
    settings = get_settings()
    password = password or settings.demo_password
    staff_password = staff_password or settings.staff_password
    facts = load_facts()
    init_db(url)

    def run() -> dict[str, int]:
        with session_scope(url, write=True) as session:
            return _seed_in(session, password, staff_password, facts)

    return with_retry(run)


def reset(url: str | None = None, password: str | None = None) -> dict[str, int]:
    """Drop every bank table (all balances, transfers, sessions, tickets) and seed again."""
    drop_all(url)
    return seed(url, password)


def clear(url: str | None = None) -> None:
    """Delete every row of every bank table but keep the schema (faster than :func:`reset`)."""
    init_db(url)

    def run() -> None:
        with session_scope(url, write=True) as session:
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(delete(table))

    with_retry(run)


def reseed(url: str | None = None, password: str | None = None) -> dict[str, int]:
    """:func:`clear` then :func:`seed`: the demo bank as new, without dropping tables."""
    clear(url)
    return seed(url, password)
