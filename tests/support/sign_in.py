"""A person signing in on a protected MCP server's authorization server, done over HTTP as a browser would."""

from __future__ import annotations

from typing import Any

import httpx


async def consent(authorization_url: str, *, account: str = "alice", allow: bool = True) -> str:
    """Open ``authorization_url``, answer the consent form, and return where the browser is sent back to.

    That is the client's redirect URI with ``code``, ``state`` and ``iss`` (or ``error``), not yet visited.
    """
    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as browser:
        authorize = await browser.get(authorization_url)
        assert authorize.status_code in (302, 303, 307), authorize.text
        consent_page = httpx.URL(authorize.headers["location"])
        request_id = consent_page.params["request"]
        form: dict[str, Any] = {"request": request_id, "account": account, "decision": "allow" if allow else "deny"}
        answered = await browser.post(consent_page.copy_with(query=None), data=form)
        assert answered.status_code == 302, answered.text
        return answered.headers["location"]


async def stats(base: str) -> dict[str, Any]:
    """What the protected test server saw: tokens issued, refreshes, revocations, bearer tokens."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{base}/_stats")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body
