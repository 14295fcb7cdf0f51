"""Branches and ATMs near a pincode or a place (haversine distance from the place)."""

from __future__ import annotations

import difflib
import math
import re

from sqlalchemy import select

from app.bank.db import Database
from app.bank.errors import NotFound
from app.bank.models import Branch
from app.bank.text import normalise
from app.bank.views import BranchView

BRANCH_RADIUS_KM = 40.0  # "near" stops here: no Delhi branches for a Mumbai pincode


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def branch_view(b: Branch, distance: float | None) -> BranchView:
    """The detached view of a branch, with its distance (km, one decimal) when known."""
    return BranchView(
        code=b.code, name=b.name, kind=b.kind, address=b.address, area=b.area, city=b.city, pincode=b.pincode,
        latitude=b.latitude, longitude=b.longitude, phone=b.phone, hours=b.hours, ifsc=b.ifsc,
        distance_km=None if distance is None else round(distance, 1),
    )


def _nearest(rows: list[Branch], anchor_rows: list[Branch], first: list[Branch], limit: int) -> list[BranchView]:
    lat = sum(b.latitude for b in anchor_rows) / len(anchor_rows)
    lon = sum(b.longitude for b in anchor_rows) / len(anchor_rows)
    dist = {b.code: haversine_km(lat, lon, b.latitude, b.longitude) for b in rows}
    head = sorted(first, key=lambda b: dist[b.code])
    tail = sorted((b for b in rows if b not in head and dist[b.code] <= BRANCH_RADIUS_KM), key=lambda b: dist[b.code])
    return [branch_view(b, dist[b.code]) for b in (head + tail)[:limit]]


def _near_pincode(rows: list[Branch], pin: str, cities: list[str], limit: int) -> list[BranchView]:
    exact = [b for b in rows if b.pincode == pin]
    anchor_rows = exact
    for size in range(5, 2, -1):
        if anchor_rows:
            break
        anchor_rows = [b for b in rows if b.pincode[:size] == pin[:size]]
    if not anchor_rows:
        raise NotFound(f"We have no branches near pincode {pin} yet. We are in {', '.join(cities)}.")
    return _nearest(rows, anchor_rows, exact, limit)


def _near_place(rows: list[Branch], text: str, cities: list[str], limit: int) -> list[BranchView]:
    q = normalise(text)
    q = re.sub(r"\b(near|nearest|in|at|the|branch|branches|atm|atms|me|my|area)\b", " ", q)
    q = re.sub(r"\s+", " ", q).strip()
    if not q:
        raise NotFound("Tell me a pincode or an area, for example 400050 or Bandra.")
    places = sorted({normalise(b.area) for b in rows} | {normalise(c) for c in cities})
    for term in [q] + difflib.get_close_matches(q, places, n=1, cutoff=0.75):
        area_hits = [b for b in rows if normalise(b.area) == term or term in normalise(b.area).split()
                     or (len(term) >= 4 and (normalise(b.area) in term or term in normalise(b.area)))]
        if area_hits:
            return _nearest(rows, area_hits, area_hits, limit)
        city_hits = [b for b in rows if normalise(b.city) == term or term in normalise(b.city)]
        if city_hits:
            city_hits.sort(key=lambda b: (b.kind != "both", b.code))
            return [branch_view(b, None) for b in city_hits[:limit]]
        name_hits = [b for b in rows if len(term) >= 4 and (term in normalise(b.name) or term in normalise(b.address))]
        if name_hits:
            return _nearest(rows, name_hits, name_hits, limit)
    raise NotFound(f"I don't know a branch near '{text}'. Try a pincode, or one of: {', '.join(cities)}.")


class Branches:
    """Branch and ATM search."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def branches_near(self, query: str, limit: int = 3, *, kind: str | None = None) -> list[BranchView]:
        """Branches/ATMs near a pincode or a place name.

        A 6-digit pincode: branches with exactly that pincode first, then the nearest
        others (haversine from the pincode's location, estimated from branches sharing the
        longest pincode prefix when none has it). A place: branches in that area first, then
        the nearest others; a city name lists that city's branches; small misspellings are
        tolerated. ``kind="atm"`` or ``"branch"`` keeps only places offering it.
        Raises :class:`NotFound` when the place is unknown.
        """
        with self.db.read() as s:
            rows = list(s.scalars(select(Branch).order_by(Branch.code)))
        if kind in ("atm", "branch"):
            rows = [b for b in rows if b.kind in (kind, "both")]
        if not rows:
            raise NotFound("We have no branches or ATMs on record.")
        cities = sorted({b.city for b in rows})
        text = (query or "").strip()
        pin_match = re.search(r"(?<!\d)(\d{3}\s?\d{3})(?!\d)", text)
        pin = re.sub(r"\s", "", pin_match.group(1)) if pin_match else ""
        if pin:
            return _near_pincode(rows, pin, cities, limit)
        return _near_place(rows, text, cities, limit)
