"""Fixtures for the browser tests: the real stack (graph server, scoring service, Chainlit chat)
started once per session on free loopback ports with a fresh SAHAYAK_HOME and seeded bank, and
Debian's Chromium driven by Playwright. Screenshots of failing tests go to test-artifacts/."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from app.bank.seed import seed
from app.core.net import free_port
from app.core.settings import Settings
from app.ops.stack import start_stack
from tests.conftest import IN_CI, ROOT

CHROMIUM = os.environ.get("SAHAYAK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"
TURN_TIMEOUT_MS = 60_000  # one turn on a busy 2-core machine (model inference + DB + provenance)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def _need_chromium() -> None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        msg = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def web_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The whole app stack on free ports with its own state folder; stopped at the end."""
    _need_chromium()
    home = tmp_path_factory.mktemp("web-home")
    settings = Settings(home=home, scoring_port=free_port(), neo4j_uri=f"bolt://127.0.0.1:{free_port()}",
                        models_home=Path(os.environ["SAHAYAK_MODELS_HOME"]))
    settings.ensure_dirs()
    seed(settings.db_url)
    port = free_port()
    lines: list[str] = []
    stack = start_stack("127.0.0.1", port, settings, report=lines.append, chat_timeout=600)
    try:
        yield {"url": stack.url, "home": home, "settings": settings, "stack": stack, "log": lines}
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[object]:
    """One Chromium for the whole session. Playwright's sync API allows one instance per thread, and
    while it runs no other sync instance (nor asyncio.run) may start in this thread."""
    _need_chromium()
    # Deferred: playwright is heavy, and only the browser tests need it.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def browser(web_stack: dict, chromium_browser: object) -> object:
    """The session's Chromium, for tests of the whole stack."""
    return chromium_browser


@pytest.fixture()
def page(browser, web_stack: dict, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh browser context (no cookies) per test; a screenshot is kept when the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=web_stack["url"])
    context.set_default_timeout(TURN_TIMEOUT_MS)
    pg = context.new_page()
    try:
        yield pg
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-120:]
            try:
                pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            except Exception:  # noqa: BLE001 - the failure itself is what matters
                pass
        context.close()
