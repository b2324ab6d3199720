"""What MCP servers offer besides tools, in a real browser: questions during a turn (a form, a sampling request),
resources attached to a message or linked from a tool result, and prompts that fill the composer."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Page, Route, expect

from tests.e2e.conftest import WAIT_MS, Stack, send, sign_in, wait_for_reply
from tests.fakes.mcp_catalog_server import README
from tests.fakes.openai_server import FakeOpenAI, text, tool_calls


async def test_a_server_asks_for_a_form_and_the_answer_from_the_browser_reaches_the_tool(
    page: Page, stack: Stack, fake_openai: FakeOpenAI, screenshots: Path
) -> None:
    await sign_in(page, stack, "form-filler")
    fake_openai.script(tool_calls([("catalog__ask_name", {})]), text("Nice to meet you, Ada."))

    await send(page, "Who am I?")
    question = page.locator(".interaction-card")
    await expect(question).to_have_attribute("data-state", "waiting")
    await expect(question).to_have_attribute("data-kind", "elicitation")
    await expect(question).to_contain_text("catalog")
    await expect(question).to_contain_text("Who are you?")
    await expect(question.locator(".interaction-card-countdown")).to_contain_text("left")
    # The card sits under the card of the call that asked, and takes the focus.
    await expect(page.locator(".tool-card + .interaction-card")).to_have_count(1)
    await expect(question.get_by_label("Name")).to_be_focused()
    await question.get_by_label("Name").fill("Ada")
    await question.get_by_label("Age").fill("36")
    await question.screenshot(path=screenshots / "question-card.png")
    # An answer the API refuses: its reason shows in the card, and the form stays as filled in.
    await page.route("**/interactions/*", _refuse_once)
    await question.get_by_role("button", name="Submit").click()
    await expect(question.get_by_role("alert")).to_have_text("age: must be a whole number")
    await expect(question).to_have_attribute("data-state", "waiting")
    await expect(question.get_by_label("Age")).to_have_value("36")
    await page.unroute("**/interactions/*", _refuse_once)
    await question.get_by_role("button", name="Submit").click()

    await expect(page.locator(".tool-card-result").first).to_have_text("hello Ada, 36")
    await wait_for_reply(page, "Nice to meet you, Ada.")
    await expect(question).to_have_attribute("data-state", "ended")
    await expect(question.locator(".interaction-card-status")).to_have_text("Answered")
    await expect(question.get_by_role("button")).to_have_count(0)
    await expect(question.locator(".interaction-answer")).to_contain_text("Ada")


async def _refuse_once(route: Route) -> None:
    await route.fulfill(status=422, json={"detail": "age: must be a whole number", "code": "invalid_input"})


async def test_a_question_waiting_in_another_tab_can_be_answered_from_there(
    browser: Browser, page: Page, stack: Stack, fake_openai: FakeOpenAI
) -> None:
    await sign_in(page, stack, "two-tabs")
    fake_openai.script(tool_calls([("catalog__ask_name", {})]), text("Hello from the first tab."))
    await send(page, "Who am I?")
    first = page.locator(".interaction-card")
    await expect(first).to_have_attribute("data-state", "waiting")

    other = await browser.new_context(ignore_https_errors=True)
    other.set_default_timeout(WAIT_MS)
    second = await other.new_page()
    await sign_in(second, stack, "two-tabs")
    await second.goto(page.url)
    waiting = second.locator(".interaction-card")
    await expect(waiting).to_contain_text("Who are you?")
    await waiting.get_by_label("Name").fill("Grace")
    await waiting.get_by_label("Age").fill("85")
    await waiting.get_by_role("button", name="Submit").click()

    # The second tab follows the running reply too, so it sees the question end and the rest of the reply.
    await expect(waiting.locator(".interaction-card-status")).to_have_text("Answered")
    await expect(first.locator(".interaction-card-status")).to_have_text("Answered")
    await expect(page.locator(".tool-card-result").first).to_have_text("hello Grace, 85")
    await wait_for_reply(page, "Hello from the first tab.")
    await wait_for_reply(second, "Hello from the first tab.")
    await expect(waiting).to_have_attribute("data-state", "ended")
    await other.close()


async def test_a_sampling_request_allowed_in_the_browser_runs_the_model_for_the_tool(
    page: Page, stack: Stack, fake_openai: FakeOpenAI
) -> None:
    await sign_in(page, stack, "sampler")
    fake_openai.script(
        tool_calls([("catalog__ask_model", {"question": "What is 2+2?"})]), text("4"), text("The model said 4.")
    )

    await send(page, "Ask your model")
    question = page.locator(".interaction-card")
    await expect(question).to_have_attribute("data-kind", "sampling")
    await expect(question).to_contain_text("The server catalog asks to use the model")
    await expect(question).to_contain_text("Answer briefly.")
    await expect(question).to_contain_text("What is 2+2?")
    await question.get_by_role("button", name="Allow").click()

    await expect(page.locator(".tool-card-result").first).to_have_text("model says: 4")
    await wait_for_reply(page, "The model said 4.")
    await expect(question.locator(".interaction-card-status")).to_have_text("Allowed")
    assert fake_openai.requests[1]["messages"][0] == {"role": "system", "content": "Answer briefly."}


async def test_resources_attached_through_the_picker_reach_the_model_and_show_collapsed_in_the_message(
    page: Page, stack: Stack, fake_openai: FakeOpenAI
) -> None:
    await sign_in(page, stack, "attacher")
    fake_openai.script(text("It says welcome."))

    await page.locator("#attach-resource").click()
    picker = page.get_by_role("dialog", name="Attach a resource")
    await picker.get_by_role("button", name="Read me").click()
    await expect(picker).to_be_hidden()
    # A template: the user writes the concrete URI.
    await page.locator("#attach-resource").click()
    await picker.get_by_label("item").fill("catalog://items/42")
    await picker.get_by_role("button", name="Attach", exact=True).click()
    # One more, taken off again.
    await page.locator("#attach-resource").click()
    await picker.get_by_role("button", name="logo").click()
    chips = page.locator(".attachment-chip")
    await expect(chips).to_have_count(3)
    await page.get_by_role("button", name="Remove the attachment catalog://logo").click()
    await expect(chips).to_have_count(2)
    await send(page, "What does this say?")
    await wait_for_reply(page, "It says welcome.")

    sent = fake_openai.requests[-1]["messages"][-1]["content"]
    assert "What does this say?" in sent
    assert README in sent
    assert "item 42" in sent
    assert "catalog://logo" not in sent
    await expect(chips).to_have_count(0)
    attached = page.locator(".message.user .message-attachment")
    await expect(attached).to_have_count(2)
    await expect(attached.first.locator("summary")).to_have_text("Attached: catalog://readme")
    await expect(attached.first.locator("pre")).to_be_hidden()
    await page.reload()
    await expect(page.locator(".message.user .message-attachment")).to_have_count(2)
    await expect(page.locator(".message.user .message-body").first).to_contain_text("What does this say?")


async def test_a_prompt_from_the_picker_fills_the_composer(page: Page, stack: Stack) -> None:
    await sign_in(page, stack, "prompter")

    await page.locator("#prompt-picker").click()
    picker = page.get_by_role("dialog", name="Use a prompt")
    await picker.get_by_role("button", name="Summarize").click()
    await picker.get_by_role("button", name="Use prompt").click()
    await expect(picker.get_by_role("alert")).to_contain_text("topic")
    await picker.get_by_label("topic").fill("MCP")
    await picker.get_by_role("button", name="Use prompt").click()

    await expect(picker).to_be_hidden()
    await expect(page.locator("#composer-input")).to_have_value("Summarize MCP in a short style.")
    await expect(page.locator("#composer-input")).to_be_focused()


async def test_a_resource_linked_from_a_tool_result_opens_in_a_dialog(
    page: Page, stack: Stack, fake_openai: FakeOpenAI
) -> None:
    await sign_in(page, stack, "reader")
    # `touch` answers "touched <uri>": given a link as its URI, its result links to the server's readme.
    fake_openai.script(tool_calls([("catalog__touch", {"uri": "[resource: catalog://readme]"})]), text("Touched."))
    await send(page, "touch it")
    await wait_for_reply(page, "Touched.")

    await page.locator(".tool-card-result").get_by_role("button", name="catalog://readme").click()
    dialog = page.locator("#resource-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator(".resource-text")).to_have_text(README)
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
