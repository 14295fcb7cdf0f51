"""Training commands write their own provenance: one helper they share.

``record_run(run, command)`` signs the run (datasets, training activity, model) into this
installation's provenance log as soon as the training has finished, with the times the
trainer measured (see :mod:`provenance.training`).
"""

from __future__ import annotations

import sys
from typing import Any

from app.core.settings import get_settings
from privacy.redact import redact
from provenance.tracker import Tracker
from provenance.training import record_training_run


def record_run(run: dict[str, Any], command: str) -> dict[str, Any]:
    """Record one training run and flush it durably; returns ``{"model", "log"}`` or ``{"error"}``.

    A provenance failure does not undo the training (the weights are written); it is reported
    on stderr and in the command's JSON so the run can be recorded again.
    """
    settings = get_settings()
    tracker = Tracker(settings, redactor=redact)
    try:
        key = record_training_run(tracker, **run, command=command, settings=settings)
        tracker.flush(timeout=60)
        return {"model": key, "log": str(tracker.folder)}
    except Exception as exc:  # noqa: BLE001 - reported, never hides the trained model
        print(f"warning: the training was not recorded in the provenance log: {exc}", file=sys.stderr)
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        tracker.close(timeout=30)
