"""End-to-end: a customer in headless Chromium talking to the real stack (Chainlit chat →
Assistant pipeline → bank DB, retrieval, encrypted scoring service, provenance log)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.web.driver import BOT, USER, ChatPage

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CARD = "4111 1111 1111 1111"  # Luhn-valid test Visa number
CVV = "123"
AADHAAR = "2345 6789 0124"  # Verhoeff-valid


def _bank(web_stack: dict):
    from app.bank.service import BankService

    return BankService(web_stack["settings"].db_url)


def test_login_failure_keeps_you_out(page) -> None:
    chat = ChatPage(page)
    chat.login("asha", "not-the-password")
    expect(page.get_by_text("Unable to sign in")).to_be_visible()
    expect(page.locator("#chat-input")).to_have_count(0)
    assert page.url.endswith("/login")


def test_login_success_shows_starters(page) -> None:
    ChatPage(page).login_ok("asha", "demo1234")
    expect(page.get_by_text("Check my balance")).to_be_visible()
    expect(page.get_by_text("Loan enquiry")).to_be_visible()


def test_balance_with_pipeline_steps(page) -> None:
    chat = ChatPage(page)
    chat.login_ok("asha", "demo1234")
    reply = chat.send("What's my savings account balance?")
    assert re.search(r"savings account X+\d{4}: ₹[\d,]+\.\d\d", reply), reply
    # The pipeline is shown as collapsible steps; opening one shows the intent and its confidence.
    step = page.get_by_role("button", name=re.compile("Understanding")).last
    step.click()
    expect(page.get_by_text(re.compile(r"Task: Check_Balance — confidence \d+%"))).to_be_visible()


def test_transfer_under_threshold_with_confirm_button(page, web_stack) -> None:
    chat = ChatPage(page)
    chat.login_ok("asha", "demo1234")
    reply = chat.send("Send 2500 rupees to Ravi")
    assert "Please confirm" in reply and "₹2,500.00" in reply, reply
    done = chat.click_button("Confirm")
    m = re.search(r"Reference (TXN\w+)", done)
    assert m and "sent to Ravi" in done, done
    # The money really moved: the ledger has both legs of this transfer.
    assert len(_bank(web_stack).ledger(m.group(1))) >= 2
    # The pressed button is shown as the customer's answer and the buttons are gone.
    expect(page.locator(USER).last).to_contain_text("Yes")
    expect(page.get_by_role("button", name="Confirm")).to_have_count(0)


def test_cancel_button_moves_no_money(page, web_stack) -> None:
    chat = ChatPage(page)
    chat.login_ok("asha", "demo1234")
    bank = _bank(web_stack)
    customer = bank.get_customer("asha")
    before = bank.balance(customer.id).balance
    assert "Please confirm" in chat.send("Send 1000 rupees to Ravi")
    reply = chat.click_button("Cancel")
    assert "cancel" in reply.lower(), reply
    assert bank.balance(customer.id).balance == before


def test_transfer_above_threshold_needs_otp(page, web_stack) -> None:
    chat = ChatPage(page)
    chat.login_ok("asha", "demo1234")
    assert "Please confirm" in chat.send("Transfer 15000 rupees to Ravi")
    otp_prompt = chat.click_button("Confirm")
    assert "OTP" in otp_prompt, otp_prompt
    code = chat.demo_sms_code()
    done = chat.send(code)
    m = re.search(r"Reference (TXN\w+)", done)
    assert m and "₹15,000.00" in done, done
    assert len(_bank(web_stack).ledger(m.group(1))) >= 2
    # The code typed at the OTP prompt is kept nowhere: not in the chat history, the session or the log.
    # Only the simulated phone holds it: the SMS outbox and the live session's demo-SMS element.
    home = Path(web_stack["home"])
    for path in home.rglob("*"):
        if path.is_file() and "outbox" not in path.parts:
            blob = path.read_bytes()
            if blob.startswith(b"Demo SMS"):
                continue
            assert code.encode() not in blob, f"the OTP {code} is stored in {path}"


def test_card_block(page, web_stack) -> None:
    chat = ChatPage(page)
    chat.login_ok("ravi", "demo1234")
    reply = chat.send("Please block my debit card")
    assert "Block it now" in reply, reply
    done = chat.click_button("Confirm")
    assert "blocked" in done.lower(), done
    bank = _bank(web_stack)
    cards = bank.cards(bank.get_customer("ravi").id)
    assert any(c.type == "debit" and c.status == "blocked" for c in cards), cards


def test_branch_by_pincode(page) -> None:
    chat = ChatPage(page)
    chat.login_ok("asha", "demo1234")
    reply = chat.send("Find a branch near 400001")
    assert "400001" in reply and "Fort" in reply, reply


def test_faq_answer_with_clickable_citation(page) -> None:
    chat = ChatPage(page)
    chat.login_ok("asha", "demo1234")
    reply = chat.send("What are the NEFT timings?")
    assert "24x7" in reply and "Sources:" in reply, reply
    link = chat.last_bot().locator("a.element-link").first
    expect(link).to_be_visible()
    link.click()
    # The cited passage opens beside the chat.
    expect(page.get_by_text(re.compile("National Electronic Funds Transfer")).first).to_be_visible()


def test_reopened_thread_keeps_its_citations_for_its_owner_only(page, browser, web_stack) -> None:
    import sqlalchemy as sa

    from app.web.datalayer import chat_db_urls

    chat = ChatPage(page)
    chat.login_ok("asha", "demo1234")
    question = "What is the minimum balance for a savings account in a metro branch?"
    assert "Sources:" in chat.send(question)
    engine = sa.create_engine(chat_db_urls(web_stack["settings"])[1])
    try:
        with engine.connect() as conn:
            thread_id = conn.execute(sa.text('SELECT "id" FROM threads WHERE "name" = :q'), {"q": question}).scalar_one()
            urls = [u for (u,) in conn.execute(sa.text('SELECT "url" FROM elements WHERE "threadId" = :t'),
                                               {"t": thread_id})]
    finally:
        engine.dispose()
    assert urls and all(u.startswith("/chat-files/") for u in urls)
    # Reopen the thread from history: the answer still has its clickable sources with the passage text.
    page.goto(f"/thread/{thread_id}")
    link = page.locator(BOT).last.locator("a.element-link").first
    expect(link).to_be_visible()
    link.click()
    expect(page.get_by_text(re.compile(r"[Mm]inimum average balance")).first).to_be_visible()
    # The stored passage is served to its owner; another customer's login gets 403 for the same URL.
    assert page.request.get(urls[0]).status == 200
    other = browser.new_context(base_url=web_stack["url"])
    try:
        ChatPage(other.new_page()).login_ok("ravi", "demo1234")
        assert other.request.get(urls[0]).status == 403
        assert other.request.get(urls[0].split("?")[0]).status == 403  # no signature
    finally:
        other.close()


def test_out_of_scope_is_refused(page) -> None:
    chat = ChatPage(page)
    chat.login_ok("asha", "demo1234")
    reply = chat.send("What's the weather in Paris tomorrow?")
    assert "only help with banking" in reply, reply


# Answers as a customer would type them to the bot's own prompts (the last one is what the
# prompt itself suggests: "say 'none' if nothing").
LOAN_ANSWERS = [  # first matching prompt wins: "How much do you pay in EMIs" must not match "how much"
    ("emis", "none"),
    ("which loan", "personal"),
    ("how much", "5,00,000 rupees"),
    ("how many years", "3 years"),
    ("income", "80,000 rupees a month"),
]


def test_loan_enquiry_through_encrypted_scoring(page) -> None:
    chat = ChatPage(page)
    chat.login_ok("asha", "demo1234")
    transcript = [("Am I eligible for a personal loan?", chat.send("Am I eligible for a personal loan?"))]
    for _ in range(6):
        reply = transcript[-1][1]
        if "Scored on encrypted data" in reply:
            break
        answer = next((a for key, a in LOAN_ANSWERS if key in reply.lower()), None)
        if answer is None:
            break
        transcript.append((answer, chat.send(answer)))
    final = transcript[-1][1]
    assert "Scored on encrypted data" in final, "\n".join(f"you: {q}\nbot: {a}" for q, a in transcript)
    expect(page.get_by_role("button", name=re.compile("Encrypted scoring")).last).to_be_visible()


def test_pii_is_redacted_on_screen_and_on_disk(page, web_stack) -> None:
    chat = ChatPage(page)
    chat.login_ok("asha", "demo1234")
    chat.send(f"my card {CARD} cvv {CVV} and aadhaar {AADHAAR} please help")
    shown = page.locator(USER).last
    expect(shown).not_to_contain_text(CARD)
    expect(shown).to_contain_text("1111")  # last four stay visible, masked
    expect(shown).not_to_contain_text(AADHAAR)
    time.sleep(2.0)  # Chainlit persists in background tasks; provenance writes off the request path
    needles = [CARD.encode(), CARD.replace(" ", "").encode(), AADHAAR.encode(), AADHAAR.replace(" ", "").encode(),
               f"cvv {CVV}".encode()]
    leaks = []
    for path in Path(web_stack["home"]).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaks += [f"{path.name}: {n.decode()}" for n in needles if n in data]
    assert not leaks, leaks
