"""Read MCP server definitions: ``mcpServers`` files (JSON or YAML) and discovered URLs.

The file format is the one Claude Desktop, Cursor, Cline and VS Code share::

    {"mcpServers": {
        "git":    {"command": "uvx", "args": ["mcp-server-git"], "env": {"GIT_AUTHOR": "${USER}"}},
        "search": {"url": "https://search.example/mcp", "headers": {"Authorization": "Bearer ${SEARCH_TOKEN}"}}
    }}

VS Code's ``{"servers": {...}}`` spelling is accepted too. Per server:

* stdio: ``command`` (required), ``args``, ``env``, ``cwd`` (relative to the file's folder).
* HTTP: ``url`` (required), ``headers``. Transport from ``type`` (or ``transport``): ``stdio``, ``http``,
  ``streamable-http``, ``streamableHttp`` or ``sse``; without it a ``url`` is streamable HTTP unless its path (after
  ``${VAR}`` expansion) ends in ``/sse``.
* ours: ``timeout`` (tool-call seconds), ``connectTimeout`` (seconds), ``disabled``; and what the server is trusted
  with, both off by default: ``sendUserId`` (the caller's user id in each tool call's ``_meta``) and
  ``useServiceToken`` (the orchestrator's service token as its bearer token); ``share``, off by default too: its
  tools are offered to other MCP clients through the assistant's own ``/mcp`` endpoint. ``oauth`` (HTTP servers):
  ``true``, or ``{"clientId", "clientSecret", "tokenEndpointAuthMethod", "scope"}`` for pre-registered credentials:
  each user signs in to the server (a server answering 401 is treated so without it). ``toolPolicy``: what happens
  when the model calls the server's tools, over their annotations: ``{"default": "run"|"ask"|"deny", "tools":
  {"<tool>": "run"|"ask"|"deny"}}``; ``maxConcurrentCalls``: how many of its tool calls run at once (default
  ``MCP_MAX_CONCURRENT_CALLS``).
* ignored: ``description``, ``alwaysAllow``, ``autoApprove`` (other clients' UI and approval hints; ignoring an
  auto-approve list only means more approvals here, never fewer).

Any other key is an error, so a typo cannot silently drop a setting. ``envFile`` is refused rather than ignored: a
server started without the variables it expects fails in confusing ways; put them in ``env`` instead.

``${VAR}``, ``${VAR:-default}`` and ``${env:VAR}`` are expanded from the environment in ``command``, ``args``,
``env``, ``cwd``, ``url`` and ``headers``; a variable that is not set and has no default is an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, cast
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from orchestrator.errors import ConfigurationError
from orchestrator.mcp.redaction import public_url
from orchestrator.mcp.types import (
    MAX_CONCURRENT_CALLS,
    SERVER_ID_PATTERN,
    OAuthClientConfig,
    ServerConfig,
    ServerSource,
    ToolPolicy,
    ToolPolicyConfig,
    Transport,
)

_STDIO_KEYS: Final = frozenset({"command", "args", "env", "cwd"})
_HTTP_KEYS: Final = frozenset({"url", "headers", "oauth"})
_COMMON_KEYS: Final = frozenset(
    {
        "type",
        "transport",
        "timeout",
        "connectTimeout",
        "disabled",
        "sendUserId",
        "useServiceToken",
        "share",
        "roots",
        "toolPolicy",
        "maxConcurrentCalls",
    }
)
IGNORED_KEYS: Final = frozenset({"description", "alwaysAllow", "autoApprove"})
"""Keys other MCP clients write that carry nothing for us; accepted and ignored."""

_REFUSED_KEYS: Final = {
    "envFile": "'envFile' is not supported; put the variables in 'env' (values may use ${VAR})",
}

_TRANSPORT_NAMES: Final[Mapping[str, Transport]] = {
    "stdio": "stdio",
    "http": "streamable-http",
    "streamable-http": "streamable-http",
    "streamableHttp": "streamable-http",
    "sse": "sse",
}

_POLICIES: Final[Mapping[str, ToolPolicy]] = {"run": "run", "ask": "ask", "deny": "deny"}

_VARIABLE = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SERVER_ID = re.compile(SERVER_ID_PATTERN)
_MAX_ID_LENGTH: Final = 48

# The ServerConfig fields whose names differ from the file's keys, for validation messages.
_FIELD_KEYS: Final = {
    "tool_timeout_seconds": "timeout",
    "connect_timeout_seconds": "connectTimeout",
    "send_user_id": "sendUserId",
    "use_service_token": "useServiceToken",
    "tool_policy": "toolPolicy",
    "max_concurrent_calls": "maxConcurrentCalls",
}
_FLAG_KEYS: Final = {"sendUserId": "send_user_id", "useServiceToken": "use_service_token", "share": "share"}
"""Our true/false keys and the ServerConfig fields they set."""


def load_servers_file(path: str | Path, *, environ: Mapping[str, str] | None = None) -> list[ServerConfig]:
    """Read a servers file; ``.json`` is parsed as JSON, ``.yaml``/``.yml`` as YAML.

    Args:
        path: The file to read.
        environ: Where ``${VAR}`` values come from; ``os.environ`` by default.

    Raises:
        ConfigurationError: the file cannot be read or parsed, or any entry is invalid (one problem per entry
            and field, all collected).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise ConfigurationError([f"{path}: a servers file must end in .json, .yaml or .yml"])
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError([f"{path}: cannot read the servers file ({exc.strerror or exc})"]) from exc
    try:
        data = _parse_json(text) if suffix == ".json" else _parse_yaml(text)
    except _DuplicateKeyError as exc:
        raise ConfigurationError([f"{path}: {exc}"]) from exc
    except json.JSONDecodeError as exc:
        raise ConfigurationError([f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError([f"{path}: invalid YAML: {exc}"]) from exc
    return parse_servers(data, environ=environ, base_dir=path.parent)


def parse_servers(
    data: object,
    *,
    environ: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    source: ServerSource = "config",
) -> list[ServerConfig]:
    """Turn an already-parsed servers document into configs, in file order.

    Raises:
        ConfigurationError: with one message per problem, collected across all entries.
    """
    if not isinstance(data, Mapping):
        raise ConfigurationError(["the servers file must hold an object with an 'mcpServers' object"])
    document = cast(Mapping[str, Any], data)
    present = [key for key in ("mcpServers", "servers") if key in document]
    if not present:
        raise ConfigurationError(["the servers file has no 'mcpServers' object"])
    if len(present) > 1:
        raise ConfigurationError(["the servers file has both 'mcpServers' and 'servers'; keep one"])
    section = present[0]
    entries = document[section]
    if entries is None:
        return []
    if not isinstance(entries, Mapping):
        raise ConfigurationError([f"'{section}' must be an object mapping server ids to servers"])
    reader = _EntryReader(environ if environ is not None else os.environ, base_dir)
    configs: list[ServerConfig] = []
    for server_id, entry in cast(Mapping[Any, Any], entries).items():
        config = reader.read(f"{section}.{server_id}", str(server_id), entry, source)
        if config is not None:
            configs.append(config)
    if reader.problems:
        raise ConfigurationError(reader.problems)
    return configs


def servers_from_urls(urls: Iterable[str]) -> list[ServerConfig]:
    """Configs for discovered server URLs, with ids derived from host, port and path.

    The same URL given twice yields one server. A URL whose path ends in ``/sse`` uses the legacy SSE transport.

    Raises:
        ConfigurationError: a URL is not http(s), or two different URLs would get the same id.
    """
    problems: list[str] = []
    configs: list[ServerConfig] = []
    seen: dict[str, str] = {}
    for raw in urls:
        url = raw.strip()
        if not url:
            continue
        parts = urlsplit(url)
        if not _is_http_url(url):
            shown = public_url(url) if parts.scheme and parts.hostname else url
            problems.append(f"discovery: {shown!r} is not an http:// or https:// URL")
            continue
        server_id = url_server_id(url)
        if server_id in seen:
            if seen[server_id] != url:
                problems.append(
                    f"discovery: {public_url(seen[server_id])!r} and {public_url(url)!r} both map to id {server_id!r}"
                )
            continue
        seen[server_id] = url
        transport: Transport = "sse" if _is_sse_path(parts.path) else "streamable-http"
        configs.append(ServerConfig(id=server_id, transport=transport, url=url, source="discovery"))
    if problems:
        raise ConfigurationError(problems)
    return configs


def url_server_id(url: str) -> str:
    """A stable server id for ``url``: ``host-port-path`` made legal, shortened with a hash when too long."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    raw = f"{parts.hostname or 'server'}-{port}-{parts.path}"
    cleaned = re.sub(r"[^a-zA-Z0-9_]+", "-", raw).strip("-_")
    if len(cleaned) <= _MAX_ID_LENGTH:
        return cleaned
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{cleaned[: _MAX_ID_LENGTH - 9].rstrip('-_')}-{digest}"


class _EntryReader:
    """Validates entries one by one, collecting every problem instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str], base_dir: Path | None) -> None:
        self.problems: list[str] = []
        self._environ = environ
        self._base_dir = base_dir

    def read(self, where: str, server_id: str, entry: object, source: ServerSource) -> ServerConfig | None:
        start = len(self.problems)
        if not _SERVER_ID.fullmatch(server_id):
            self._problem(where, "a server id is 1-48 letters, digits, '_' or '-', starting with a letter or digit")
        if not isinstance(entry, Mapping):
            self._problem(where, "a server must be an object")
            return None
        fields = cast(Mapping[Any, Any], entry)
        for key in fields:
            key = str(key)
            if key in _REFUSED_KEYS:
                self._problem(f"{where}.{key}", _REFUSED_KEYS[key])
            elif key not in _STDIO_KEYS | _HTTP_KEYS | _COMMON_KEYS | IGNORED_KEYS:
                self._problem(f"{where}.{key}", "unknown key (check the spelling)")
        transport = self._transport(where, fields)
        values: dict[str, Any] = {"id": server_id, "source": source}
        if transport is not None:
            values["transport"] = transport
            if transport == "stdio":
                self._read_stdio(where, fields, values)
            else:
                self._read_http(where, fields, transport, values)
        self._read_behaviour(where, fields, values)
        if len(self.problems) > start or transport is None:
            return None
        try:
            return ServerConfig(**values)
        except ValidationError as exc:
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else ""
                key = _FIELD_KEYS.get(field, field)
                self._problem(f"{where}.{key}" if key and key != "id" else where, str(error["msg"]))
            return None

    def _transport(self, where: str, fields: Mapping[Any, Any]) -> Transport | None:
        declared: list[str] = [key for key in ("type", "transport") if key in fields]
        if len(declared) > 1 and fields["type"] != fields["transport"]:
            self._problem(where, "'type' and 'transport' disagree; keep one")
            return None
        if declared:
            key = declared[0]
            value = fields[key]
            if not isinstance(value, str) or value not in _TRANSPORT_NAMES:
                names = ", ".join(repr(name) for name in _TRANSPORT_NAMES)
                self._problem(f"{where}.{key}", f"must be one of {names}")
                return None
            transport = _TRANSPORT_NAMES[value]
            if transport == "stdio" and "command" not in fields:
                self._problem(where, "a stdio server needs a 'command'")
                return None
            if transport != "stdio" and "url" not in fields:
                self._problem(where, f"a {transport} server needs a 'url'")
                return None
            return transport
        if "command" in fields and "url" in fields:
            self._problem(where, "a server has either a 'command' (stdio) or a 'url' (HTTP), not both")
            return None
        if "command" in fields:
            return "stdio"
        if "url" in fields:
            # Expanded without reporting: a missing variable is reported once, when the URL itself is read.
            url = fields["url"]
            expanded = _expand_variables(url, self._environ)[0] if isinstance(url, str) else None
            return "sse" if expanded is not None and _is_sse_path(urlsplit(expanded).path) else "streamable-http"
        self._problem(where, "a server needs a 'command' (stdio) or a 'url' (HTTP)")
        return None

    def _read_stdio(self, where: str, fields: Mapping[Any, Any], values: dict[str, Any]) -> None:
        for key in _HTTP_KEYS & fields.keys():
            self._problem(f"{where}.{key}", "a stdio server takes 'command', not HTTP settings")
        command = self._string(f"{where}.command", fields["command"])
        if command is not None:
            if command.strip():
                values["command"] = command
            else:
                self._problem(f"{where}.command", "must not be empty")
        if "args" in fields:
            args = fields["args"]
            if isinstance(args, list):
                items = cast(list[Any], args)
                expanded = [self._string(f"{where}.args[{index}]", item) for index, item in enumerate(items)]
                values["args"] = tuple(arg for arg in expanded if arg is not None)
            else:
                self._problem(f"{where}.args", "must be a list of strings")
        if "env" in fields:
            values["env"] = self._string_map(f"{where}.env", fields["env"])
        if "cwd" in fields:
            cwd = self._string(f"{where}.cwd", fields["cwd"])
            if cwd is not None:
                values["cwd"] = str(self._base_dir / cwd) if self._base_dir is not None else cwd

    def _read_http(self, where: str, fields: Mapping[Any, Any], transport: Transport, values: dict[str, Any]) -> None:
        for key in _STDIO_KEYS & fields.keys():
            self._problem(f"{where}.{key}", f"a {transport} server takes 'url', not stdio settings")
        url = self._string(f"{where}.url", fields["url"])
        if url is not None:
            if not _is_http_url(url):
                self._problem(f"{where}.url", "must be an http:// or https:// URL")
            else:
                values["url"] = url
        if "headers" in fields:
            values["headers"] = self._string_map(f"{where}.headers", fields["headers"])
        if "oauth" in fields:
            oauth = self._oauth(f"{where}.oauth", fields["oauth"])
            if oauth is not None:
                values["oauth"] = oauth

    def _oauth(self, where: str, value: object) -> OAuthClientConfig | None:
        """``oauth``: ``true`` (each user signs in; the assistant registers itself), or pre-registered credentials."""
        if value is True:
            return OAuthClientConfig()
        if not isinstance(value, Mapping):
            self._problem(
                where, "must be true or an object with clientId, clientSecret, tokenEndpointAuthMethod, scope"
            )
            return None
        fields = cast(Mapping[Any, Any], value)
        known = {"clientId": "client_id", "clientSecret": "client_secret", "scope": "scope"}
        values: dict[str, Any] = {}
        for key, item in fields.items():
            key = str(key)
            if key in known:
                text = self._string(f"{where}.{key}", item)
                if text is not None:
                    values[known[key]] = text
            elif key == "tokenEndpointAuthMethod":
                methods = ("client_secret_basic", "client_secret_post", "none")
                if item in methods:
                    values["token_endpoint_auth_method"] = item
                else:
                    self._problem(f"{where}.{key}", f"must be one of {', '.join(methods)}")
            else:
                self._problem(f"{where}.{key}", "unknown key (check the spelling)")
        if "client_secret" in values and "client_id" not in values:
            self._problem(where, "'clientSecret' needs a 'clientId'")
            return None
        return OAuthClientConfig(**values)

    def _read_behaviour(self, where: str, fields: Mapping[Any, Any], values: dict[str, Any]) -> None:
        for key, field, upper in (
            ("timeout", "tool_timeout_seconds", 3600),
            ("connectTimeout", "connect_timeout_seconds", 600),
        ):
            if key not in fields:
                continue
            value = fields[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= upper:
                self._problem(f"{where}.{key}", f"must be a number of seconds, more than 0 and at most {upper}")
            else:
                values[field] = float(value)
        if "disabled" in fields:
            disabled = fields["disabled"]
            if isinstance(disabled, bool):
                values["enabled"] = not disabled
            else:
                self._problem(f"{where}.disabled", "must be true or false")
        for key, field in _FLAG_KEYS.items():
            if key not in fields:
                continue
            flag = fields[key]
            if isinstance(flag, bool):
                values[field] = flag
            else:
                self._problem(f"{where}.{key}", "must be true or false")
        if "roots" in fields:
            values["roots"] = self._roots(f"{where}.roots", fields["roots"])
        if "toolPolicy" in fields:
            policy = self._tool_policy(f"{where}.toolPolicy", fields["toolPolicy"])
            if policy is not None:
                values["tool_policy"] = policy
        if "maxConcurrentCalls" in fields:
            limit = fields["maxConcurrentCalls"]
            if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CONCURRENT_CALLS:
                self._problem(f"{where}.maxConcurrentCalls", f"must be a whole number from 1 to {MAX_CONCURRENT_CALLS}")
            else:
                values["max_concurrent_calls"] = limit

    def _tool_policy(self, where: str, value: object) -> ToolPolicyConfig | None:
        """``toolPolicy``: ``{"default": policy, "tools": {tool: policy}}``, a policy being run, ask or deny."""
        if not isinstance(value, Mapping):
            self._problem(where, 'must be an object such as {"default": "ask", "tools": {"read_file": "run"}}')
            return None
        fields = cast(Mapping[Any, Any], value)
        start = len(self.problems)
        default: ToolPolicy | None = None
        tools: dict[str, ToolPolicy] = {}
        for key, item in fields.items():
            key = str(key)
            if key == "default":
                default = self._policy(f"{where}.default", item)
            elif key == "tools":
                if not isinstance(item, Mapping):
                    self._problem(f"{where}.tools", "must be an object of tool names to run, ask or deny")
                    continue
                for tool, policy in cast(Mapping[Any, Any], item).items():
                    checked = self._policy(f"{where}.tools.{tool}", policy)
                    if checked is not None:
                        tools[str(tool)] = checked
            else:
                self._problem(f"{where}.{key}", "unknown key (expected 'default' and 'tools')")
        if len(self.problems) > start:
            return None
        return ToolPolicyConfig(default=default, tools=tools)

    def _policy(self, where: str, value: object) -> ToolPolicy | None:
        policy = _POLICIES.get(value) if isinstance(value, str) else None
        if policy is not None:
            return policy
        self._problem(where, "must be 'run', 'ask' or 'deny'")
        return None

    def _roots(self, where: str, value: object) -> tuple[str, ...]:
        """``roots``: the directories (paths or ``file://`` URIs) offered to a server that asks for roots."""
        if not isinstance(value, list):
            self._problem(where, "must be a list of directories")
            return ()
        roots: list[str] = []
        for index, item in enumerate(cast(list[Any], value)):
            text = self._string(f"{where}[{index}]", item)
            if text is None:
                continue
            path = text.removeprefix("file://")
            if not Path(path).is_absolute() and self._base_dir is not None:
                path = str((self._base_dir / path).resolve())
            if not Path(path).is_absolute():
                self._problem(f"{where}[{index}]", "must be an absolute directory (or relative to the servers file)")
                continue
            roots.append(Path(path).as_uri())
        return tuple(roots)

    def _string(self, where: str, value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self._problem(where, "must be a string")
            return None
        return self._expand(where, str(value))

    def _string_map(self, where: str, value: object) -> dict[str, str]:
        if not isinstance(value, Mapping):
            self._problem(where, "must be an object of names to strings")
            return {}
        result: dict[str, str] = {}
        for key, item in cast(Mapping[Any, Any], value).items():
            if isinstance(item, bool):
                item = "true" if item else "false"
            text = self._string(f"{where}.{key}", item)
            if text is not None:
                result[str(key)] = text
        return result

    def _expand(self, where: str, text: str) -> str | None:
        expanded, missing = _expand_variables(text, self._environ)
        for name in missing:
            self._problem(where, f"environment variable {name!r} is not set (use ${{{name}:-default}} for a default)")
        return None if missing else expanded

    def _problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")


def _expand_variables(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """``text`` with ``${VAR}`` references expanded, and the names of the variables that are not set."""
    missing: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                missing.append(name)
                return ""
            return default
        return value

    return _VARIABLE.sub(substitute, text), missing


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    try:
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _is_sse_path(path: str) -> bool:
    return path.rstrip("/").endswith("/sse")


class _DuplicateKeyError(ValueError):
    pass


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _parse_json(text: str) -> object:
    return json.loads(text, object_pairs_hook=_reject_duplicates)


def _parse_yaml(text: str) -> object:
    _check_yaml_duplicates(yaml.SafeLoader(text).get_single_node())
    return yaml.safe_load(text)


def _check_yaml_duplicates(node: yaml.Node | None) -> None:
    """Refuse duplicate mapping keys, which plain YAML silently overwrites."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                name = str(key.value)
                if name in seen:
                    raise _DuplicateKeyError(f"duplicate key {name!r}")
                seen.add(name)
            _check_yaml_duplicates(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_yaml_duplicates(item)
