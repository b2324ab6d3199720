"""The whole assistant as deployed: nginx (TLS) in front of the frontend and the orchestrator, real MCP servers,
the fake model and the fake sign-in provider, driven by headless Chromium through Playwright."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from playwright.async_api import Error as PlaywrightError

from tests.fakes.mcp_http import ProtectedTestServer, running_protected_server
from tests.fakes.oauth_provider import FakeOAuthProvider, FakeOAuthServer
from tests.fakes.openai_server import FakeOpenAIServer
from tests.orchestrator.api.conftest import REPO_ROOT, stdio_test_server
from tests.support.frontend_process import frontend_process
from tests.support.nginx import running_nginx, two_free_ports
from tests.support.process import orchestrator_process
from tests.support.service import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CLIENT_ID = "e2e-google-client"
CLIENT_SECRET = "e2e-google-client-secret"
WAIT_MS = 20_000
# Assertions wait as long as actions do: on a busy machine a page reload alone can take longer than the default 5 s.
expect.set_options(timeout=WAIT_MS)


@dataclass(frozen=True)
class Stack:
    url: str
    """The public address: nginx over HTTPS."""
    oauth: FakeOAuthProvider
    protected: ProtectedTestServer
    """An MCP server each user signs in to (OAuth), with its authorization server."""


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory, openai_server: FakeOpenAIServer) -> AsyncGenerator[Stack]:
    root = tmp_path_factory.mktemp("e2e")
    jwt_secret = "e2e-jwt-secret-" + os.urandom(24).hex()
    # nginx's ports are chosen first: the orchestrator sends users back from sign-ins under the public address.
    nginx_ports = two_free_ports()
    public_url = f"https://localhost:{nginx_ports[1]}"
    async with running_protected_server() as protected:
        servers = root / "servers.json"
        catalog = {"command": sys.executable, "args": ["-m", "tests.fakes.mcp_catalog_server"], "cwd": str(REPO_ROOT)}
        entries = {"test": stdio_test_server(), "catalog": catalog, "protected": {"url": protected.url, "oauth": True}}
        servers.write_text(json.dumps({"mcpServers": entries}))
        orchestrator_env = {
            "ENVIRONMENT": "production",
            "OPENAI_API_KEY": openai_server.api_key,
            "OPENAI_BASE_URL": openai_server.base_url,
            "OPENAI_MODEL": "fake-gpt",
            "DATA_DIR": str(root / "orchestrator"),
            "MCP_CONFIG": str(servers),
            "MCP_SERVICE_TOKEN": "e2e-service-token-" + os.urandom(24).hex(),
            "JWT_SECRET_KEY": jwt_secret,
            "TOKEN_ENCRYPTION_KEY": "e2e-token-key-" + os.urandom(24).hex(),
            "PUBLIC_URL": public_url,
            "LOG_LEVEL": "WARNING",
        }
        with FakeOAuthServer() as oauth_server:
            async with orchestrator_process(orchestrator_env, root) as (_, orchestrator_url):
                frontend_port = free_port()
                # Every test signs in again; the production sign-in rate (a few a minute per address) would refuse it.
                async with running_nginx(
                    f"127.0.0.1:{frontend_port}",
                    orchestrator_url.removeprefix("http://"),
                    tmp_path=root,
                    overrides={"RATE_LIMIT_SIGN_IN": "600r/m", "RATE_LIMIT_SIGN_IN_BURST": "100"},
                    ports=nginx_ports,
                ):
                    oauth_server.provider.register_client(
                        CLIENT_ID, CLIENT_SECRET, f"{public_url}/auth/google/callback"
                    )
                    frontend_env = {
                        "ENVIRONMENT": "production",
                        "FRONTEND_SECRET_KEY": "e2e-frontend-secret-" + os.urandom(24).hex(),
                        "FRONTEND_WORKERS": "1",
                        "JWT_SECRET_KEY": jwt_secret,
                        "PUBLIC_URL": public_url,
                        "ORCHESTRATOR_URL": orchestrator_url,
                        "REDIS_URL": "redis://127.0.0.1:6379/0",
                        "GOOGLE_CLIENT_ID": CLIENT_ID,
                        "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
                        "GOOGLE_DISCOVERY_URL": oauth_server.discovery_url,
                        "DATA_DIR": str(root / "frontend"),
                        "LOG_LEVEL": "WARNING",
                    }
                    async with frontend_process(frontend_env, root, frontend_port):
                        yield Stack(public_url, oauth_server.provider, protected)


@pytest.fixture(scope="session")
async def browser() -> AsyncGenerator[Browser]:
    if shutil.which("chromium", path="/usr/bin") is None:
        raise RuntimeError("Chromium is missing: run scripts/install-system-packages.sh (make system-packages)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
async def context(browser: Browser, request: pytest.FixtureRequest) -> AsyncGenerator[BrowserContext]:
    opened = await browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    opened.set_default_timeout(WAIT_MS)
    yield opened
    if request.node.stash.get(_CALL_FAILED, False):
        # What each page showed when the test failed, in the report ("Captured stdout teardown").
        for shown in opened.pages:
            try:
                body = (await shown.locator("body").inner_text(timeout=2_000))[:3_000]
            except PlaywrightError as exc:
                body = f"(unreadable: {exc.message})"
            print(f"--- {shown.url} ---\n{body}")
    await opened.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the journey saves its screenshots: ``SCREENSHOTS_DIR`` (``make screenshots``) or a temporary folder."""
    directory = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


async def sign_in(page: Page, stack: Stack, login: str) -> None:
    """Sign in through the fake Google, typing ``login`` on its page, and wait for the chat page."""
    await page.goto(stack.url + "/")
    await page.get_by_role("link", name="Continue with Google").click()
    await page.get_by_label("Username").fill(login)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(stack.url + "/")
    await page.locator("#composer-input").wait_for()
    # The page's script has run (the composer's buttons work), not only its HTML arrived.
    await wait_for_idle(page)


async def send(page: Page, message: str) -> None:
    await page.locator("#composer-input").fill(message)
    await page.locator("#composer-input").press("Enter")


async def wait_for_idle(page: Page) -> None:
    # A locator, not wait_for_function: string predicates need eval, which the page's CSP forbids.
    await expect(page.locator("body")).to_have_attribute("data-turn-state", "idle", timeout=WAIT_MS)


async def wait_for_reply(page: Page, containing: str) -> None:
    """Wait until the last reply contains ``containing`` and the turn has ended."""
    await expect(page.locator(".message.assistant .message-body").last).to_contain_text(containing)
    await wait_for_idle(page)
