"""Support around the conversation: hand-off tickets for human agents, and feedback on turns.

Both live in the bank's database (tables ``handoff_tickets`` and ``feedback``). Callers redact
transcripts, reasons, texts and comments; the store redacts them again before writing (redaction
is idempotent), so no caller can put a card or Aadhaar number into a ticket by forgetting to.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from app.bank.clock import new_reference
from app.bank.db import Database
from app.bank.errors import BankError, NotFound
from app.bank.models import Customer, Feedback, HandoffTicket
from privacy.redact import redact


class HandoffView(BaseModel):
    """A hand-off ticket (a detached copy)."""

    model_config = ConfigDict(frozen=True)

    reference: str
    session_id: str
    user_id: str | None
    reason: str
    transcript: str
    status: str
    created_at: datetime
    claimed_by: str | None


class FeedbackView(BaseModel):
    """One stored rating of a turn (a detached copy)."""

    model_config = ConfigDict(frozen=True)

    id: int
    session_id: str
    turn_id: str
    user_id: str | None
    text: str
    predicted_intent: str | None
    correct_intent: str | None
    rating: int
    comment: str | None
    created_at: datetime


def _handoff_view(t: HandoffTicket) -> HandoffView:
    return HandoffView(
        reference=t.reference, session_id=t.session_id, user_id=t.user_id, reason=t.reason,
        transcript=t.transcript, status=t.status, created_at=t.created_at, claimed_by=t.claimed_by,
    )


def _feedback_view(f: Feedback) -> FeedbackView:
    return FeedbackView(
        id=f.id, session_id=f.session_id, turn_id=f.turn_id, user_id=f.user_id, text=f.text,
        predicted_intent=f.predicted_intent, correct_intent=f.correct_intent, rating=f.rating,
        comment=f.comment, created_at=f.created_at,
    )


class SupportStore:
    """Hand-off tickets (open → claimed → closed) and turn feedback, each call in its own transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ hand-off
    def create_handoff(self, session_id: str, user_id: str | None, reason: str, transcript: str) -> str:
        """Open a ticket for a human agent; returns its reference (``HO-…``).

        ``transcript`` should already be redacted by the caller; it is redacted again here.
        """
        reason, transcript = redact(reason or ""), redact(transcript or "")
        with self.db.write() as s:
            now = self.db.now()
            ticket = HandoffTicket(
                reference=new_reference("HO-", now), session_id=session_id, user_id=user_id, reason=reason[:256],
                transcript=transcript, status="open", created_at=now,
            )
            s.add(ticket)
            s.flush()
            return ticket.reference

    def list_handoffs(self, status: str | None = "open") -> list[HandoffView]:
        """Hand-off tickets with this status (``None`` = all), oldest first."""
        with self.db.read() as s:
            stmt = select(HandoffTicket).order_by(HandoffTicket.created_at, HandoffTicket.id)
            if status:
                stmt = stmt.where(HandoffTicket.status == status)
            return [_handoff_view(t) for t in s.scalars(stmt)]

    def claim_handoff(self, reference: str, staff_username: str) -> HandoffView:
        """A staff member takes an open ticket (a claimed ticket cannot be claimed twice)."""
        with self.db.write() as s:
            staff = s.scalars(select(Customer).where(Customer.username == staff_username)).first()
            if staff is None or staff.role != "staff":
                raise BankError("Only staff can claim hand-off tickets.")
            ticket = s.scalars(select(HandoffTicket).where(HandoffTicket.reference == reference).with_for_update()).first()
            if ticket is None:
                raise NotFound(f"No hand-off ticket {reference}.")
            if ticket.status != "open":
                raise BankError(f"Ticket {reference} is already {ticket.status} by {ticket.claimed_by or 'someone'}.")
            ticket.status, ticket.claimed_by, ticket.claimed_at = "claimed", staff.username, self.db.now()
            return _handoff_view(ticket)

    def close_handoff(self, reference: str) -> HandoffView:
        """Mark a ticket as resolved."""
        with self.db.write() as s:
            ticket = s.scalars(select(HandoffTicket).where(HandoffTicket.reference == reference).with_for_update()).first()
            if ticket is None:
                raise NotFound(f"No hand-off ticket {reference}.")
            ticket.status, ticket.closed_at = "closed", self.db.now()
            return _handoff_view(ticket)

    # ------------------------------------------------------------------ feedback
    def add_feedback(
        self,
        session_id: str,
        turn_id: str,
        rating: int,
        *,
        user_id: str | None = None,
        text: str = "",
        predicted_intent: str | None = None,
        correct_intent: str | None = None,
        comment: str | None = None,
    ) -> int:
        """Store a rating (+1 / -1) of one turn, with an optional corrected intent; returns its id.

        ``text`` and ``comment`` should already be redacted by the caller; they are redacted again here.
        """
        text = redact(text or "")
        comment = redact(comment) if comment else comment
        if rating not in (1, -1):
            raise BankError("Feedback rating must be +1 or -1.")
        with self.db.write() as s:
            row = Feedback(
                session_id=session_id, turn_id=turn_id, user_id=user_id, text=text, predicted_intent=predicted_intent,
                correct_intent=correct_intent, rating=rating, comment=comment, created_at=self.db.now(),
            )
            s.add(row)
            s.flush()
            return row.id

    def list_feedback(self, limit: int | None = None, *, rating: int | None = None) -> list[FeedbackView]:
        """Stored feedback, oldest first (optionally only one rating)."""
        with self.db.read() as s:
            stmt = select(Feedback).order_by(Feedback.created_at, Feedback.id)
            if rating is not None:
                stmt = stmt.where(Feedback.rating == rating)
            if limit is not None:
                stmt = stmt.limit(limit)
            return [_feedback_view(f) for f in s.scalars(stmt)]
