"""Signing in to an OAuth-protected MCP server from the browser: inside a conversation, and on the servers page."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import BrowserContext, Page, expect

from tests.e2e.conftest import Stack, send, sign_in, wait_for_reply
from tests.fakes.openai_server import FakeOpenAI, text, tool_calls


async def consent_in(page: Page, account: str) -> None:
    """On the protected server's consent page: allow, as ``account``."""
    await page.get_by_label("Account").fill(account)
    await page.get_by_role("button", name="Allow").click()


async def test_a_conversation_asks_to_sign_in_and_the_reply_goes_on_after_consent(
    context: BrowserContext, page: Page, stack: Stack, fake_openai: FakeOpenAI, screenshots: Path
) -> None:
    await sign_in(page, stack, "connector")
    fake_openai.script(
        tool_calls([("protected__sign_in", {})]), tool_calls([("protected__whoami", {})]), text("You are Ada there.")
    )

    await send(page, "Who am I on the protected server?")
    card = page.locator(".interaction-card")
    await expect(card).to_have_attribute("data-kind", "authorization")
    await expect(card).to_contain_text("Sign in to protected")
    await expect(card.locator(".interaction-url-text")).to_have_text(stack.protected.base)
    await card.screenshot(path=screenshots / "sign-in-card.png")
    async with context.expect_page() as opened:
        await card.get_by_role("button", name="Sign in").click()
    sign_in_tab = await opened.value
    await consent_in(sign_in_tab, "ada")

    await expect(sign_in_tab.locator("h1")).to_have_text("Signed in: protected")
    await wait_for_reply(page, "You are Ada there.")
    await expect(card.locator(".interaction-card-status")).to_have_text("Signed in")
    await expect(page.locator(".tool-card-result").last).to_have_text("signed in as ada")


async def test_the_servers_page_connects_and_disconnects_a_protected_server(page: Page, stack: Stack) -> None:
    await sign_in(page, stack, "page-connector")
    await page.goto(stack.url + "/servers")
    card = page.locator('.server-card[data-server-id="protected"]')
    await expect(card.locator(".status-badge")).to_have_text("Sign-in needed")

    await card.get_by_role("link", name="Sign in to protected").click()
    await consent_in(page, "grace")
    await expect(page.locator("h1")).to_have_text("Signed in: protected")
    await page.goto(stack.url + "/servers")
    await expect(card).to_contain_text("Signed in")
    page.once("dialog", lambda dialog: dialog.accept())
    await card.get_by_role("button", name="Disconnect from protected").click()

    await expect(card.get_by_role("link", name="Sign in to protected")).to_be_visible()
    await expect(card).to_contain_text("Not signed in")
