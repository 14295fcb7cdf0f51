"""Loan products (numbers from data/bank_facts.yaml via the seed) and account-opening applications."""

from __future__ import annotations

from sqlalchemy import select

from app.bank.accounts import customer_row
from app.bank.clock import new_reference
from app.bank.db import Database, with_retry
from app.bank.errors import BankError, NotFound
from app.bank.models import AccountApplication, LoanProduct
from app.bank.text import normalise
from app.bank.views import ApplicationView, LoanProductView


def loan_view(p: LoanProduct) -> LoanProductView:
    """The detached view of a loan product."""
    return LoanProductView(
        kind=p.kind, name=p.name, rate_min=p.rate_min, rate_max=p.rate_max, max_tenure_years=p.max_tenure_years,
        min_amount=p.min_amount, max_amount=p.max_amount, processing_fee_pct=p.processing_fee_pct,
    )


class Products:
    """Loan products and applications for new accounts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def loan_products(self) -> list[LoanProductView]:
        """Every loan product (numbers from data/bank_facts.yaml via the seed)."""
        with self.db.read() as s:
            rows = s.scalars(select(LoanProduct).order_by(LoanProduct.id)).all()
            return [loan_view(p) for p in rows]

    def loan_product(self, kind: str) -> LoanProductView:
        """The loan product of one kind (home, car, personal, education, gold)."""
        with self.db.read() as s:
            row = s.scalars(select(LoanProduct).where(LoanProduct.kind == (kind or "").strip().lower())).first()
            if row is None:
                kinds = ", ".join(s.scalars(select(LoanProduct.kind).order_by(LoanProduct.id)))
                raise NotFound(f"We don't offer a '{kind}' loan. Our loans: {kinds}.")
            return loan_view(row)

    def open_account(self, customer_id: int, account_type: str) -> ApplicationView:
        """Submit a request to open a savings or current account.

        Asking again while an application of the same type is still ``submitted`` returns
        that application instead of filing a duplicate.
        """
        wanted = normalise(account_type or "")
        if "saving" in wanted:
            wanted = "savings"
        elif "current" in wanted:
            wanted = "current"
        else:
            raise BankError("I can open a savings or a current account. Which one would you like?")

        def run() -> ApplicationView:
            with self.db.write() as s:
                customer_row(s, customer_id, lock=True)
                app = s.scalars(
                    select(AccountApplication).where(
                        AccountApplication.customer_id == customer_id, AccountApplication.account_type == wanted,
                        AccountApplication.status == "submitted",
                    )
                ).first()
                if app is None:
                    now = self.db.now()
                    app = AccountApplication(customer_id=customer_id, account_type=wanted,
                                             reference=new_reference("APP-", now), status="submitted", created_at=now)
                    s.add(app)
                    s.flush()
                return ApplicationView(reference=app.reference, account_type=app.account_type, status=app.status,
                                       created_at=app.created_at)

        return with_retry(run)
