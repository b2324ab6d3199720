"""Tool calls that wait for the user's approval, in a real browser: the card shows what would run, where and with
which arguments; a decision from the card (or from another tab, where the waiting call shows on loading the
conversation) lets the call run or tells the model it was denied."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import WAIT_MS, Stack, send, sign_in, wait_for_reply
from tests.fakes.openai_server import FakeOpenAI, text, tool_calls

ARGUMENTS = {"item": '<img src=x onerror="alert(1)"> the draft', "why": "done with it"}


async def test_a_call_waiting_for_approval_shows_its_tool_server_and_arguments_and_runs_once_allowed(
    page: Page, stack: Stack, fake_openai: FakeOpenAI, screenshots: Path
) -> None:
    await sign_in(page, stack, "approver")
    fake_openai.script(tool_calls([("test__forget", {"item": ARGUMENTS["item"]})]), text("Forgotten."))

    await send(page, "Forget the draft")
    card = page.locator(".approval-card")
    await expect(card).to_have_attribute("data-state", "waiting")
    await expect(card.locator(".approval-tool")).to_have_text("forget")
    await expect(card.locator(".approval-server")).to_have_text("test")
    # The full arguments, as indented JSON and as text: the markup in them is shown, never run.
    await expect(card.locator(".approval-arguments")).to_have_text(json.dumps({"item": ARGUMENTS["item"]}, indent=2))
    await expect(card.locator("img")).to_have_count(0)
    await expect(page.locator(".tool-card + .approval-card")).to_have_count(1)
    await expect(card).to_be_focused()
    for label in ("Allow once", "Allow in this conversation", "Always allow", "Deny"):
        await expect(card.get_by_role("button", name=label)).to_be_visible()
    await card.screenshot(path=screenshots / "approval-card.png")

    await card.get_by_role("button", name="Allow once").click()

    await expect(page.locator(".tool-card-result").first).to_have_text(f"forgot {ARGUMENTS['item']}")
    await wait_for_reply(page, "Forgotten.")
    await expect(card).to_have_attribute("data-state", "ended")
    await expect(card.locator(".interaction-card-status")).to_have_text("Allowed once")
    await expect(card.get_by_role("button")).to_have_count(0)


async def test_a_call_waiting_in_another_tab_shows_when_the_conversation_loads_and_is_denied_from_there(
    browser: Browser, page: Page, stack: Stack, fake_openai: FakeOpenAI
) -> None:
    await sign_in(page, stack, "two-tab-approver")
    fake_openai.script(tool_calls([("test__forget", ARGUMENTS)]), text("I left it alone."))
    await send(page, "Forget the draft")
    first = page.locator(".approval-card")
    await expect(first).to_have_attribute("data-state", "waiting")

    other = await browser.new_context(ignore_https_errors=True)
    other.set_default_timeout(WAIT_MS)
    second = await other.new_page()
    await sign_in(second, stack, "two-tab-approver")
    await second.goto(page.url)
    waiting = second.locator(".approval-card")
    await expect(waiting.locator(".approval-arguments")).to_have_text(json.dumps(ARGUMENTS, indent=2))
    await waiting.get_by_role("button", name="Deny").click()

    await expect(waiting.locator(".interaction-card-status")).to_have_text("Denied")
    await expect(first.locator(".interaction-card-status")).to_have_text("Denied")
    await expect(page.locator(".tool-card-result").first).to_contain_text("The user denied this tool call")
    await wait_for_reply(page, "I left it alone.")
    await other.close()
