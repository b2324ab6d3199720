"""Run the production nginx configuration (``nginx/``) for real, in front of upstreams the test chooses.

The templates are rendered the way ``nginx/render-templates.sh`` renders them with envsubst, and ``http.conf`` and
the snippets are used as they are; only the process-level main file (pid, logs, temporary paths) is the harness's
own, under the instance's prefix directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import ssl
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx

from tests.support.service import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
NGINX_DIR = REPO_ROOT / "nginx"
CERTIFICATE_SCRIPT = REPO_ROOT / "scripts" / "make-self-signed-cert.sh"
INSTALL_SCRIPT = "scripts/install-system-packages.sh"
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 10.0

# What envsubst recognises: ``$NAME`` (the longest identifier) and ``${NAME}``.
_PLACEHOLDER = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


class NginxNotInstalledError(RuntimeError):
    def __init__(self) -> None:
        super().__init__(f"nginx is not installed: run {INSTALL_SCRIPT} to install the system packages the tests use")


def template_defaults() -> dict[str, str]:
    """The placeholders of ``nginx/templates`` and their defaults, from ``nginx/defaults.env``."""
    defaults: dict[str, str] = {}
    for line in (NGINX_DIR / "defaults.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            defaults[name] = value
    return defaults


def render_template(text: str, values: Mapping[str, str]) -> str:
    """Substitute ``values`` in ``text`` as ``envsubst`` does when given their names; other ``$names`` stay."""

    def substitute(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        return values.get(name, match[0])

    return _PLACEHOLDER.sub(substitute, text)


def render_templates(output_dir: Path, values: Mapping[str, str]) -> list[Path]:
    """Render every ``nginx/templates/*.template`` into ``output_dir`` as ``render-templates.sh`` does."""
    output_dir.mkdir(parents=True, exist_ok=True)
    outputs: list[Path] = []
    for template in sorted((NGINX_DIR / "templates").glob("*.template")):
        output = output_dir / template.name.removesuffix(".template")
        output.write_text(render_template(template.read_text(), values))
        outputs.append(output)
    return outputs


@dataclass(frozen=True)
class NginxInstance:
    """A running nginx: its prefix directory holds ``conf/``, ``certs/``, ``logs/`` and temporary files."""

    prefix: Path
    http_port: int
    https_port: int
    variables: Mapping[str, str]

    @property
    def conf_dir(self) -> Path:
        return self.prefix / "conf"

    @property
    def certificate(self) -> Path:
        return self.prefix / "certs" / "tls.crt"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the instance's self-signed certificate (and nothing else)."""
        return ssl.create_default_context(cafile=self.certificate)

    def error_log(self) -> str:
        return _read(self.prefix / "logs" / "error.log")

    def access_log(self) -> list[dict[str, Any]]:
        """The access log's JSON lines so far (nginx writes a line once the response has gone)."""
        entries: list[dict[str, Any]] = []
        for line in _read(self.prefix / "logs" / "access.log").splitlines():
            entry: dict[str, Any] = json.loads(line)
            entries.append(entry)
        return entries


@asynccontextmanager
async def running_nginx(
    frontend_upstream: str,
    orchestrator_upstream: str,
    *,
    tmp_path: Path,
    overrides: Mapping[str, str] | None = None,
    trusted_proxies: Sequence[str] | None = None,
    ports: tuple[int, int] | None = None,
) -> AsyncGenerator[NginxInstance]:
    """Run nginx with the production configuration until the block ends.

    Args:
        frontend_upstream: ``host:port`` of the frontend (``FRONTEND_UPSTREAM``).
        orchestrator_upstream: ``host:port`` of the orchestrator (``ORCHESTRATOR_UPSTREAM``).
        tmp_path: a directory of the test's; the instance's prefix is made inside it.
        overrides: placeholder values instead of the defaults of ``nginx/defaults.env`` (a rate, for instance).
        trusted_proxies: addresses or CIDRs written into ``snippets/trusted-proxies.conf``, as a deployer behind a
            load balancer would; ``None`` keeps the production file (which trusts nobody).
        ports: the HTTP and HTTPS ports, when the public address must be known before nginx starts; free ones
            otherwise.

    Raises:
        NginxNotInstalledError: there is no ``nginx`` on the PATH.
        ValueError: ``overrides`` names something that is not a placeholder.
        RuntimeError: the configuration is refused by ``nginx -t``, or nginx does not answer in time.
    """
    executable = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if executable is None:
        raise NginxNotInstalledError
    defaults = template_defaults()
    unknown = set(overrides or {}) - set(defaults)
    if unknown:
        raise ValueError(f"not placeholders of nginx/templates: {sorted(unknown)}")

    prefix = tmp_path / "nginx"
    conf_dir = prefix / "conf"
    certs_dir = prefix / "certs"
    logs_dir = prefix / "logs"
    logs_dir.mkdir(parents=True)
    (prefix / "temp").mkdir()
    shutil.copytree(NGINX_DIR / "snippets", conf_dir / "snippets")
    shutil.copy(NGINX_DIR / "http.conf", conf_dir / "http.conf")
    if trusted_proxies is not None:
        (conf_dir / "snippets" / "trusted-proxies.conf").write_text(
            "".join(f"set_real_ip_from {address};\n" for address in trusted_proxies)
        )
    await anyio.run_process([str(CERTIFICATE_SCRIPT), str(certs_dir), "localhost"])

    http_port, https_port = ports or two_free_ports()
    variables = {
        **defaults,
        "FRONTEND_UPSTREAM": frontend_upstream,
        "ORCHESTRATOR_UPSTREAM": orchestrator_upstream,
        "HTTP_PORT": str(http_port),
        "HTTPS_PORT": str(https_port),
        "PUBLIC_HTTPS_PORT": str(https_port),
        "TLS_CERTIFICATE": str(certs_dir / "tls.crt"),
        "TLS_CERTIFICATE_KEY": str(certs_dir / "tls.key"),
        **(overrides or {}),
    }
    render_templates(conf_dir / "conf.d", variables)
    main_conf = conf_dir / "nginx.conf"
    main_conf.write_text(_main_conf(prefix))
    command = [executable, "-p", f"{prefix}/", "-c", str(main_conf)]

    checked = await anyio.run_process([*command, "-t", "-q"], check=False)
    if checked.returncode != 0:
        raise RuntimeError(f"nginx -t refused the configuration:\n{checked.stderr.decode(errors='replace')}")

    instance = NginxInstance(prefix, http_port, https_port, variables)
    with (logs_dir / "access.log").open("wb") as access_log, (logs_dir / "stderr.log").open("wb") as stderr:
        process = await anyio.open_process(
            [*command, "-g", "daemon off;"], stdout=access_log, stderr=stderr, start_new_session=True
        )
        try:
            await _wait_until_answering(instance, process)
            yield instance
        finally:
            with anyio.CancelScope(shield=True):
                await _stop(process)


def _main_conf(prefix: Path) -> str:
    # A master running as root hands its workers to "nobody", who may not enter pytest's private temporary
    # directories to write request bodies.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = prefix / "temp"
    return (
        f"{user}worker_processes 1;\n"
        f"pid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'logs' / 'error.log'} notice;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    client_body_temp_path {temp / 'client_body'};\n"
        f"    proxy_temp_path {temp / 'proxy'};\n"
        f"    fastcgi_temp_path {temp / 'fastcgi'};\n"
        f"    uwsgi_temp_path {temp / 'uwsgi'};\n"
        f"    scgi_temp_path {temp / 'scgi'};\n"
        "    include http.conf;\n"
        "}\n"
    )


def two_free_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


async def _wait_until_answering(instance: NginxInstance, process: anyio.abc.Process) -> None:
    async with httpx.AsyncClient(verify=instance.ssl_context(), timeout=2) as client:
        with anyio.move_on_after(START_TIMEOUT_SECONDS):
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"nginx exited with {process.returncode}:\n{instance.error_log()}")
                try:
                    if (await client.get(f"{instance.https_url}/nginx-health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.02)
    raise RuntimeError(f"nginx did not answer within {START_TIMEOUT_SECONDS} s:\n{instance.error_log()}")


async def _stop(process: anyio.abc.Process) -> None:
    if process.returncode is not None:
        return
    # SIGQUIT is nginx's graceful shutdown; a stream a test left open would hold it, hence the kill after a bound,
    # of the whole process group (nginx started it in its own session) so that no worker outlives its master.
    process.send_signal(signal.SIGQUIT)
    with anyio.move_on_after(STOP_TIMEOUT_SECONDS):
        await process.wait()
        return
    os.killpg(process.pid, signal.SIGKILL)
    await process.wait()


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
