"""The API keys page in Chromium through nginx: a user creates a key, copies it once, uses it on /v1 and revokes it."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from tests.e2e.conftest import WAIT_MS, Stack, sign_in


async def test_a_user_creates_copies_uses_and_revokes_an_api_key(
    browser: Browser, stack: Stack, screenshots: Path
) -> None:
    context = await browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(WAIT_MS)
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.url)
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    await sign_in(page, stack, "keyholder")

    await page.get_by_role("link", name="API keys").click()
    await expect(page.locator(".api-keys-empty")).to_be_visible()
    await page.get_by_label("What it is for").fill("my editor")
    await page.get_by_role("button", name="Create key").click()
    secret_box = page.get_by_label("New API key")
    secret = await secret_box.input_value()
    assert secret.startswith("mcpa_")
    await page.get_by_role("button", name="Copy").click()
    await expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == secret
    await page.screenshot(path=str(screenshots / "api-keys.png"))

    models = await page.request.get(stack.url + "/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert models.status == 200
    assert "assistant" in [model["id"] for model in (await models.json())["data"]]

    await page.goto(stack.url + "/api-keys")  # the secret is not shown again
    await expect(page.get_by_label("New API key")).to_have_count(0)
    await expect(page.locator(".api-key-card")).to_have_count(1)
    await expect(page.locator(".api-key-card")).to_contain_text("my editor")
    await expect(page.locator("body")).not_to_contain_text(secret)
    await page.get_by_role("button", name="Revoke key: my editor").click()
    await expect(page.locator(".api-keys-empty")).to_be_visible()

    refused = await page.request.get(stack.url + "/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status == 401
    assert (await refused.json())["error"]["code"] == "invalid_api_key"
    await context.close()
