"""One-time passwords: issue (and "send" by SMS to the demo outbox), verify, lock out.

Codes are stored only as salted hashes (:mod:`app.bank.security`). The demo SMS gateway is
``settings.outbox_dir / "sms.log"``: one line per message, appended after the challenge is
committed.
"""

from __future__ import annotations

import math
import re
import threading
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.bank.accounts import customer_row
from app.bank.clock import IST
from app.bank.db import Database, with_retry
from app.bank.errors import OtpLocked
from app.bank.models import OtpChallenge
from app.bank.security import hash_otp, new_otp_code, verify_otp_hash
from app.bank.text import mask_phone
from app.bank.views import OtpIssued, OtpResult

_sms_lock = threading.Lock()  # one writer per process appends whole lines to the outbox


class SmsOutbox:
    """The demo SMS gateway: appends ``[IST time] To <masked phone>: <text>`` to ``sms.log``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def send(self, phone: str, text: str) -> None:
        """Append one message to the outbox (creating the folder on first use)."""
        outbox = self.db.settings.outbox_dir
        outbox.mkdir(parents=True, exist_ok=True)
        line = f"[{self.db.now().astimezone(IST).isoformat(timespec='seconds')}] To {phone}: {text}\n"
        with _sms_lock, open(outbox / "sms.log", "a", encoding="utf-8") as fh:
            fh.write(line)


def _lockout_message(until: datetime, now: datetime) -> str:
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    return (
        f"Too many wrong OTPs. For your safety, OTPs are paused for {minutes} more minute"
        f"{'s' if minutes != 1 else ''} (until {until.astimezone(IST):%H:%M} IST)."
    )


def _active_lockout(s: Session, customer_id: int, now: datetime) -> datetime | None:
    return s.scalar(
        select(func.max(OtpChallenge.locked_until)).where(
            OtpChallenge.customer_id == customer_id, OtpChallenge.locked_until > now
        )
    )


class Otps:
    """Issue and verify OTP challenges, with attempt limits and lockout."""

    def __init__(self, db: Database, outbox: SmsOutbox | None = None) -> None:
        self.db = db
        self.outbox = outbox or SmsOutbox(db)

    def issue_otp(self, customer_id: int, purpose: str, reference: str, *, description: str | None = None) -> OtpIssued:
        """Send a 6-digit OTP for ``purpose``/``reference`` by SMS (appended to ``outbox/sms.log``).

        The code is stored only as a salted hash; an earlier pending OTP for the same
        purpose and reference stops working. Raises :class:`OtpLocked` during a lockout.
        ``description`` is the SMS wording (e.g. "a transfer of ₹25,000.00 to Ravi Kumar").
        """
        settings = self.db.settings
        ttl = settings.otp_ttl_seconds

        def run() -> tuple[OtpIssued, str]:
            with self.db.write() as s:
                customer = customer_row(s, customer_id, lock=True)
                now = self.db.now()
                until = _active_lockout(s, customer_id, now)
                if until is not None:
                    raise OtpLocked(_lockout_message(until, now))
                for old in s.scalars(
                    select(OtpChallenge).where(
                        OtpChallenge.customer_id == customer_id, OtpChallenge.purpose == purpose,
                        OtpChallenge.reference == reference, OtpChallenge.status == "pending",
                    )
                ):
                    old.status = "expired"
                challenge_id = uuid.uuid4().hex
                code = new_otp_code()
                expires = now + timedelta(seconds=ttl)
                s.add(OtpChallenge(
                    id=challenge_id, customer_id=customer_id, purpose=purpose, reference=reference,
                    code_hash=hash_otp(code, challenge_id), created_at=now, expires_at=expires,
                    max_attempts=settings.otp_max_attempts, status="pending",
                ))
                phone = mask_phone(customer.phone) if customer.phone else "your registered mobile"
                minutes = max(1, round(ttl / 60))
                what = description or re.sub(r"[_\s]+", " ", purpose).strip().lower() or "your request"
                sms = (
                    f"Your Sahayak OTP for {what} is {code}. "
                    f"Valid {minutes} min. Never share it."
                )
                return OtpIssued(challenge_id=challenge_id, expires_at=expires, sms_text=sms, masked_phone=phone), phone

        issued, phone = with_retry(run)
        # Written after the commit: never "send" a code for a challenge that does not exist.
        self.outbox.send(phone, issued.sms_text)
        return issued

    def verify_otp(self, customer_id: int, challenge_id: str, code: str, *, reference: str | None = None) -> OtpResult:
        """Check ``code`` for the customer's challenge (and ``reference`` when given).

        Wrong codes count; after ``otp_max_attempts`` the customer is locked out for
        ``otp_lockout_minutes``. Expired, superseded, already-used, another customer's or
        another request's challenges never verify.
        """

        def run() -> OtpResult:
            with self.db.write() as s:
                now = self.db.now()
                ch = s.scalars(
                    select(OtpChallenge).where(OtpChallenge.id == str(challenge_id)).with_for_update()
                    .execution_options(populate_existing=True)
                ).first()
                if ch is None or ch.customer_id != customer_id:
                    return OtpResult(ok=False, attempts_left=0, reason="not_found",
                                     message="That OTP request isn't valid. Let me send you a new OTP.")
                if reference is not None and ch.reference != reference:
                    return OtpResult(ok=False, attempts_left=0, reason="wrong_reference",
                                     message="That OTP was sent for a different request. Let me send you a new OTP.")
                until = _active_lockout(s, customer_id, now)
                if until is not None:
                    return OtpResult(ok=False, attempts_left=0, locked=True, reason="locked",
                                     message=_lockout_message(until, now))
                return self._check_code(ch, code, now)

        return with_retry(run)

    def _check_code(self, ch: OtpChallenge, code: str, now: datetime) -> OtpResult:
        """Verify ``code`` against a challenge of this customer, counting a wrong one (locked row)."""
        left = max(0, ch.max_attempts - ch.attempts)
        if ch.status == "verified":
            return OtpResult(ok=False, attempts_left=0, reason="already_used",
                             message="That OTP has already been used.")
        if ch.status != "pending" or now >= ch.expires_at:
            if ch.status == "pending":
                ch.status = "expired"
            return OtpResult(ok=False, attempts_left=0, expired=True, reason="expired",
                             message="That OTP has expired. I can send you a new one.")
        clean = re.sub(r"\s", "", str(code or ""))
        if re.fullmatch(r"\d{6}", clean) and verify_otp_hash(clean, ch.id, ch.code_hash):
            ch.status = "verified"
            ch.verified_at = now
            return OtpResult(ok=True, attempts_left=left, reason="verified", message="OTP verified.")
        ch.attempts += 1
        left = max(0, ch.max_attempts - ch.attempts)
        if left == 0:
            ch.status = "locked"
            ch.locked_until = now + timedelta(minutes=self.db.settings.otp_lockout_minutes)
            return OtpResult(ok=False, attempts_left=0, locked=True, reason="locked",
                             message=_lockout_message(ch.locked_until, now))
        return OtpResult(ok=False, attempts_left=left, reason="wrong_code",
                         message=f"That OTP is not correct. {left} attempt{'s' if left != 1 else ''} left.")
