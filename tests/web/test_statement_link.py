"""The statement link in the chat is signed, owner-only and expires: real HTTP requests through the
routes mounted on a FastAPI app, real Chainlit login cookies (HS256 JWTs), a real seeded bank and file."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import jwt
import pytest

SECRET = "test-secret-for-statement-links-0123456789abcdef"


class Clock:
    now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def _cookie(username: str) -> dict[str, str]:
    token = jwt.encode({"identifier": username, "display_name": None, "metadata": {},
                        "exp": datetime.now(timezone.utc) + timedelta(hours=1)}, SECRET, algorithm="HS256")
    return {"access_token": token}


@pytest.fixture()
def client_and_bank(fresh_home, monkeypatch):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app.bank.seed import seed
    from app.bank.service import BankService
    from app.core.settings import get_settings
    from app.web import runtime
    from app.web.routes import mount_all

    monkeypatch.setenv("CHAINLIT_AUTH_SECRET", SECRET)
    settings = get_settings()
    seed(settings.db_url)
    clock = Clock()
    bank = BankService(settings.db_url, settings=settings, clock=clock)
    monkeypatch.setattr(runtime, "_bank", bank)
    app = FastAPI()
    mount_all(app)
    return TestClient(app), bank, clock


def test_statement_link_is_owner_only_and_expires(client_and_bank) -> None:
    client, bank, clock = client_and_bank
    asha, ravi = bank.get_customer("asha"), bank.get_customer("ravi")
    today = clock.now.date()
    st = bank.create_statement(asha.id, "savings", (today - timedelta(days=30)).isoformat(), today.isoformat())
    url = bank.statement_link(st)

    r = client.get(url, cookies=_cookie("asha"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv") and "attachment" in r.headers["content-disposition"]
    assert r.headers["cache-control"] == "private, no-store"
    assert "Asha Menon" in r.text and "Priya Sharma" in r.text  # the seeded history is in it

    assert client.get(url, cookies=_cookie("ravi")).status_code == 404  # another customer: as if missing
    assert client.get(url).status_code == 401  # nobody logged in
    forged = jwt.encode({"identifier": "asha", "metadata": {}}, "not-the-secret", algorithm="HS256")
    assert client.get(url, cookies={"access_token": forged}).status_code == 401
    parts = urlsplit(url)
    assert client.get(parts.path + "?expires=9999999999&sig=" + "0" * 64, cookies=_cookie("asha")).status_code == 403
    other = bank.create_statement(ravi.id, "savings", today.isoformat(), today.isoformat())
    swapped = bank.statement_link(other).split("?")[0] + "?" + parts.query  # asha's signature on ravi's token
    assert client.get(swapped, cookies=_cookie("asha")).status_code == 403

    clock.now += timedelta(minutes=16)  # the link lives 15 minutes (data/bank_facts.yaml)
    assert client.get(url, cookies=_cookie("asha")).status_code == 403
