"""Which links a server may send a user to: its pages (elicitation), its authorization server's sign-in page."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def safe_link(url: str) -> bool:
    """Whether a user may be sent to ``url``: https, or plain http only on this machine (a loopback address).

    Anything else would carry what the link holds (an authorization request's PKCE challenge and state, a form's
    context) and what the page sends back in the clear, or use a scheme that is not a web page at all.
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False
