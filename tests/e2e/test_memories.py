"""The memories page in Chromium through nginx: a chat message becomes a memory; the user searches, adds and
deletes memories, and another user never sees them."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import WAIT_MS, Stack, send, sign_in, wait_for_reply
from tests.fakes.openai_server import FakeOpenAI, text


async def _new_page(browser: Browser) -> Page:
    context = await browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(WAIT_MS)
    return await context.new_page()


async def test_a_user_sees_searches_adds_and_deletes_their_memories(
    browser: Browser, page: Page, stack: Stack, fake_openai: FakeOpenAI, screenshots: Path
) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    await sign_in(page, stack, "rememberer")
    fake_openai.script(text("Noted, no peanuts."))
    await send(page, "My daughter is allergic to peanuts")
    await wait_for_reply(page, "Noted, no peanuts.")

    await page.get_by_role("link", name="Memories").click()
    cards = page.locator(".memory-card")
    await expect(cards).to_have_count(1)
    await expect(cards.first).to_contain_text("My daughter is allergic to peanuts")
    await expect(cards.first).to_contain_text("From a chat message")

    await page.get_by_label("Something the assistant should know about you").fill("I prefer metric units")
    await page.get_by_role("button", name="Save memory").click()
    await expect(cards).to_have_count(2)
    await page.screenshot(path=str(screenshots / "memories.png"))

    await page.get_by_role("searchbox", name="Search memories").fill("which foods should my kid avoid")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(cards.first).to_contain_text("allergic to peanuts")

    await page.get_by_role("link", name="Show all").click()
    await expect(page.get_by_role("list", name="Your memories")).to_be_visible()
    await expect(cards).to_have_count(2)
    await page.get_by_role("button", name="Delete memory: I prefer metric units").click()
    await expect(cards).to_have_count(1)
    await expect(page.locator(".memory-list")).not_to_contain_text("metric units")

    other = await _new_page(browser)
    await sign_in(other, stack, "stranger")
    await other.goto(stack.url + "/memories")
    await expect(other.locator(".memories-empty")).to_be_visible()
    await expect(other.locator("body")).not_to_contain_text("peanuts")
    api = await other.request.get(stack.url + "/api/memories?q=peanuts")
    assert api.status == 200
    assert await api.json() == []
    await other.context.close()
