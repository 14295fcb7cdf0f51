"""The provenance package's error (its own module so the writer, recovery and API share it)."""

from __future__ import annotations

from app.core.errors import SahayakError


class ProvenanceError(SahayakError):
    """The audit log cannot be written or is damaged; money movement must not proceed."""
