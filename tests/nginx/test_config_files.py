"""The files of nginx/ and the scripts that go with them, without a running nginx."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

from tests.support.nginx import CERTIFICATE_SCRIPT, NGINX_DIR, render_templates, template_defaults

# ${NAME} or $NAME in upper case: how placeholders are written, and what nginx's own variables never look like.
UPPER_CASE_VARIABLE = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)\b")


def test_the_harness_renders_the_templates_exactly_as_render_templates_sh_does(tmp_path: Path) -> None:
    chosen = {"FRONTEND_UPSTREAM": "10.0.0.5:8000", "HTTPS_PORT": "8443", "RATE_LIMIT_API": "3r/s"}
    environment = {"PATH": os.environ["PATH"], **chosen, "RATE_LIMIT_GENERAL": ""}
    subprocess.run(
        [str(NGINX_DIR / "render-templates.sh"), str(NGINX_DIR), str(tmp_path / "script")],
        env=environment,
        check=True,
        capture_output=True,
    )

    rendered = render_templates(tmp_path / "harness", {**template_defaults(), **chosen})

    assert rendered
    for output in rendered:
        assert (tmp_path / "script" / output.name).read_text() == output.read_text()


def test_every_placeholder_in_the_templates_has_a_default_and_every_default_is_used() -> None:
    used = {
        name
        for template in (NGINX_DIR / "templates").glob("*.template")
        for name in UPPER_CASE_VARIABLE.findall(template.read_text())
    }

    assert used == set(template_defaults())


def test_the_shared_files_hold_no_placeholders_since_they_are_not_rendered() -> None:
    shared = [NGINX_DIR / "nginx.conf", NGINX_DIR / "http.conf", *(NGINX_DIR / "snippets").glob("*.conf")]

    assert {path.name: UPPER_CASE_VARIABLE.findall(path.read_text()) for path in shared} == {
        path.name: [] for path in shared
    }


def test_every_placeholder_is_documented_in_the_readme() -> None:
    readme = (NGINX_DIR / "README.md").read_text()

    assert [name for name in template_defaults() if f"`{name}`" not in readme] == []


def test_the_certificate_script_names_the_host_and_keeps_the_key_private(tmp_path: Path) -> None:
    subprocess.run([str(CERTIFICATE_SCRIPT), str(tmp_path), "assistant.example"], check=True, capture_output=True)

    names = subprocess.run(
        ["openssl", "x509", "-in", str(tmp_path / "tls.crt"), "-noout", "-ext", "subjectAltName"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert re.findall(r"(?:DNS|IP Address):[\w.]+", names) == [
        "DNS:assistant.example",
        "DNS:localhost",
        "IP Address:127.0.0.1",
    ]
    assert stat.S_IMODE((tmp_path / "tls.key").stat().st_mode) == 0o600
