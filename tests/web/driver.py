"""A small page-object for the Chainlit chat, so the tests read like conversations."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

BOT = '[data-step-type="assistant_message"]'
USER = '[data-step-type="user_message"]'
TURN_TIMEOUT_MS = 60_000  # one turn on a busy 2-core machine (model inference + DB + provenance)


class ChatPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def login(self, username: str, password: str) -> None:
        self.page.goto("/login")
        self.page.fill("#email", username)
        self.page.fill("#password", password)
        self.page.click("button[type=submit]")

    def login_ok(self, username: str, password: str) -> None:
        self.login(username, password)
        expect(self.page.locator("#chat-input")).to_be_visible(timeout=TURN_TIMEOUT_MS)

    def bot_count(self) -> int:
        return self.page.locator(BOT).count()

    def last_bot(self):
        return self.page.locator(BOT).last

    def _await_reply(self, before: int) -> str:
        expect(self.page.locator(BOT)).to_have_count(before + 1, timeout=TURN_TIMEOUT_MS)
        # The turn is over when Chainlit swaps the stop button back for the send button.
        expect(self.page.locator("#stop-button")).to_have_count(0, timeout=TURN_TIMEOUT_MS)
        return self.last_bot().locator(".message-content").first.inner_text()

    def send(self, text: str) -> str:
        """Type a message, send it and return the assistant's reply text."""
        before = self.bot_count()
        expect(self.page.locator("#stop-button")).to_have_count(0, timeout=TURN_TIMEOUT_MS)
        submit = self.page.locator("#chat-submit")
        # After a thread's first reply Chainlit moves the page to /thread/<id> and re-renders the
        # composer, which can wipe text typed a moment earlier: type again until it sticks.
        for _ in range(5):
            self.page.fill("#chat-input", text)
            expect(self.page.locator("#chat-input")).to_have_value(text)
            try:
                expect(submit).to_be_enabled(timeout=5_000)
            except AssertionError:
                continue
            if self.page.locator("#chat-input").input_value() == text:
                break
        expect(submit).to_be_enabled(timeout=TURN_TIMEOUT_MS)
        submit.click()
        return self._await_reply(before)

    def click_button(self, label: str) -> str:
        """Press an action button of the latest reply and return the next reply."""
        before = self.bot_count()
        self.last_bot().get_by_role("button", name=label).click()
        return self._await_reply(before)

    def demo_sms_code(self) -> str:
        """The OTP shown in the latest reply's 'Demo SMS' element."""
        # The SMS is an inline element that may render a moment after the reply text.
        text = ""
        for _ in range(40):
            text = self.last_bot().inner_text()
            m = re.search(r"\b(\d{6})\b", text.split("Demo SMS", 1)[-1]) if "Demo SMS" in text else None
            if m:
                return m.group(1)
            self.page.wait_for_timeout(250)
        raise AssertionError(f"no 6-digit code in the Demo SMS: {text!r}")
