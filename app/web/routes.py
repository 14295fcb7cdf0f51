"""Sahayak's own routes on the Chainlit server: the staff console, stored chat files, account
statements and branding.

Chainlit serves its single-page app from a catch-all route, so ours must come *before* it in the
route table; :func:`mount_all` puts them there (idempotent).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import FileResponse

from app.web import files, health, staff, statements

STATIC = Path(__file__).parent / "static"
branding = APIRouter()


@branding.get("/logo")
async def logo(theme: str = Query("light")) -> FileResponse:
    """Sahayak's logo for the login page and header (instead of Chainlit's)."""
    name = "logo_dark.svg" if theme == "dark" else "logo_light.svg"
    return FileResponse(STATIC / name, media_type="image/svg+xml")


@branding.get("/favicon")
async def favicon() -> FileResponse:
    return FileResponse(STATIC / "favicon.svg", media_type=mimetypes.types_map.get(".svg", "image/svg+xml"))


def mount_first(app: FastAPI, router: APIRouter) -> None:
    """Add ``router``'s routes at the front of ``app``'s route table, once."""
    # Remembered on the app: FastAPI may keep an included router as one opaque route entry.
    mounted: set[int] = getattr(app.state, "sahayak_mounted_routers", set())
    if id(router) in mounted:
        return
    app.state.sahayak_mounted_routers = mounted | {id(router)}
    before = len(app.router.routes)
    app.include_router(router)
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = added


def mount_all(app: FastAPI) -> None:
    """Mount the staff console, the chat-file store, statements, health/metrics and the branding ahead of Chainlit's routes."""
    for router in (staff.router, files.router, statements.router, health.router, branding):
        mount_first(app, router)
