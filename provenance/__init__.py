"""Provenance: signed, hash-chained, Merkle-checkpointed lineage of every turn and model.

Public API (see docs/provenance.md)::

    from provenance import get_tracker
    t = get_tracker()
    rid = t.record_turn(turn_id=..., session_id=..., ...)   # returns at once
    t.flush()                                              # durable + signed checkpoint
"""

from provenance.tracker import ProvenanceError, Tracker, dataset_hash, get_tracker, reset_tracker

__all__ = ["ProvenanceError", "Tracker", "dataset_hash", "get_tracker", "reset_tracker"]
