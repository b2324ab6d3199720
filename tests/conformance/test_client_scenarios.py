"""The MCP conformance suite's client scenarios against our MCP layer (``conformance/client.py``), with our baseline.

Every client scenario ``conformance list`` names runs in its own ``conformance client --scenario`` process, judged
against ``conformance/expected-failures.yml``; a few run at once. ``sse-retry`` runs alone afterwards: it times the
client's reconnection against the server's ``retry`` field to within a few hundred milliseconds, which a machine busy
with other scenarios can spoil. Node 22 and the suite come from ``tools/node`` (``make node-tools``); without them the
tests fail and say so.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio
import pytest
import yaml
from anyio.abc import ByteReceiveStream

from tests.support.node import NPM_BIN, REPO_ROOT, child_environment, npm_command

BASELINE: Final = REPO_ROOT / "conformance" / "expected-failures.yml"
CLIENT_COMMAND: Final = f"{sys.executable} -m conformance.client"
"""The suite splits this on spaces and appends the scenario server's URL."""

RUN_ALONE: Final = frozenset({"sse-retry"})
PARALLEL_SCENARIOS: Final = 4
CLIENT_TIMEOUT_SECONDS: Final = 60
"""The suite's bound on one client run; the client's own bounds (connect, each tool call) are shorter."""
SCENARIO_TIMEOUT_SECONDS: Final = 120.0
"""Our bound on one suite process (its server, the client, the verdict); past it the process group is killed."""

pytestmark = pytest.mark.timeout(900)

_ANSI: Final = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True, slots=True)
class ScenarioRun:
    """One ``conformance client --scenario`` process: its exit status (``None`` if it had to be killed) and output.

    Its stdout is the verdict against the baseline; its stderr the checks, and the client's output when it failed.
    """

    scenario: str
    returncode: int | None
    stdout: str
    stderr: str

    @property
    def unexpected_failures(self) -> list[str]:
        return _report_section(self.stdout, "Unexpected failures")

    @property
    def stale_entries(self) -> list[str]:
        return _report_section(self.stdout, "Stale baseline entries")

    @property
    def as_expected(self) -> bool:
        """Whether the scenario failed only where the baseline says it may (a stale entry is not a failure)."""
        if self.returncode == 0:
            return True
        return self.returncode == 1 and bool(self.stale_entries) and not self.unexpected_failures

    def summary(self) -> str:
        """The suite's verdict, the checks that failed, and why the client stopped, if it did."""
        status = "killed after a timeout" if self.returncode is None else f"exit {self.returncode}"
        telling = [
            line
            for line in self.stderr.splitlines()
            if re.search(
                r"\b(FAILURE|WARNING)\b|^\s+(Error|Warning): |Client exited|Client timed out|conformance client:", line
            )
        ]
        if not telling:
            telling = self.stderr.splitlines()[-20:]
        return "\n".join([f"== {self.scenario} ({status})", self.stdout.strip(), *telling[:40]])


def suite_command() -> Path:
    """The installed ``conformance`` command.

    Raises:
        NodeToolsMissing: ``tools/node`` is not installed; its message says to run ``make node-tools``.
    """
    return NPM_BIN / npm_command("conformance")


async def run_suite(*args: str, kill_after: float) -> tuple[int | None, str, str]:
    """Run ``conformance <args>`` from the repository root; its exit status (``None``: killed), stdout and stderr."""
    command = [str(suite_command()), *args]
    process = await anyio.open_process(command, cwd=REPO_ROOT, env=child_environment(), start_new_session=True)
    outputs: dict[str, bytes] = {}

    async def drain(name: str, stream: ByteReceiveStream | None) -> None:
        chunks: list[bytes] = []
        if stream is not None:
            async for chunk in stream:
                chunks.append(chunk)
        outputs[name] = b"".join(chunks)

    async with process:
        with anyio.move_on_after(kill_after) as waiting:
            async with anyio.create_task_group() as tg:
                tg.start_soon(drain, "stdout", process.stdout)
                tg.start_soon(drain, "stderr", process.stderr)
                await process.wait()
        if waiting.cancelled_caught:
            # The suite's server and our client live in its process group; none may outlive the run.
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    returncode = None if waiting.cancelled_caught else process.returncode
    return returncode, _text(outputs.get("stdout", b"")), _text(outputs.get("stderr", b""))


async def listed_client_scenarios() -> list[str]:
    """The client scenarios ``conformance list`` names, in its order."""
    returncode, stdout, stderr = await run_suite("list", kill_after=SCENARIO_TIMEOUT_SECONDS)
    assert returncode == 0, f"conformance list failed: {stderr}"
    section = stdout.partition("Client scenarios")[2].partition("\n\n")[0]
    scenarios = re.findall(r"^\s+- (\S+)", section, flags=re.MULTILINE)
    assert scenarios, f"conformance list named no client scenarios:\n{stdout}"
    return scenarios


async def run_scenario(scenario: str, results: Path) -> ScenarioRun:
    assert " " not in sys.executable, f"the suite splits its client command on spaces; move the venv: {sys.executable}"
    returncode, stdout, stderr = await run_suite(
        "client",
        *("--command", CLIENT_COMMAND, "--scenario", scenario),
        *("--expected-failures", str(BASELINE)),
        *("--timeout", str(CLIENT_TIMEOUT_SECONDS * 1000), "-o", str(results)),
        kill_after=SCENARIO_TIMEOUT_SECONDS,
    )
    return ScenarioRun(scenario, returncode, stdout, stderr)


class ClientScenarios:
    """Every client scenario, run the first time a test asks and kept for the module's other tests.

    The run happens inside a test rather than in a fixture, so a missing ``tools/node`` fails that test.
    """

    def __init__(self, results: Path) -> None:
        self.results = results
        """Where the suite keeps each scenario's checks and the client's output (``<scenario>-<time>/``)."""
        self._runs: list[ScenarioRun] | None = None
        self._lock = anyio.Lock()

    async def runs(self) -> list[ScenarioRun]:
        async with self._lock:
            if self._runs is None:
                self._runs = await self._run_all()
            return self._runs

    async def _run_all(self) -> list[ScenarioRun]:
        scenarios = await listed_client_scenarios()
        runs: dict[str, ScenarioRun] = {}
        limiter = anyio.CapacityLimiter(PARALLEL_SCENARIOS)

        async def run(scenario: str) -> None:
            async with limiter:
                runs[scenario] = await run_scenario(scenario, self.results)

        async with anyio.create_task_group() as tg:
            for scenario in scenarios:
                if scenario not in RUN_ALONE:
                    tg.start_soon(run, scenario)
        for scenario in scenarios:
            if scenario in RUN_ALONE:
                runs[scenario] = await run_scenario(scenario, self.results)
        return [runs[scenario] for scenario in scenarios]


@pytest.fixture(scope="module")
def client_scenarios(tmp_path_factory: pytest.TempPathFactory) -> ClientScenarios:
    return ClientScenarios(tmp_path_factory.mktemp("conformance-results"))


async def test_every_client_scenario_passes_or_fails_only_as_the_baseline_expects(
    client_scenarios: ClientScenarios,
) -> None:
    runs = await client_scenarios.runs()
    report = "\n\n".join(run.summary() for run in runs if not run.as_expected)
    failed = [run.scenario for run in runs if not run.as_expected]
    assert not failed, (
        f"{len(failed)} of {len(runs)} client scenarios did not end as {BASELINE.name} expects "
        f"(checks and client output in {client_scenarios.results}):\n\n{report}"
    )


async def test_no_scenario_the_baseline_excuses_passes_now(client_scenarios: ClientScenarios) -> None:
    stale = [entry for run in await client_scenarios.runs() for entry in run.stale_entries]
    assert not stale, f"these now pass; remove them from {BASELINE.name}: {', '.join(stale)}"


async def test_the_baseline_names_only_client_scenarios_of_the_suite_and_says_why() -> None:
    scenarios = set(await listed_client_scenarios())
    document = yaml.safe_load(BASELINE.read_text())
    assert set(document) == {"client"}, "the baseline is for client scenarios only"
    entries: list[str] = document["client"]
    unknown = [entry for entry in entries if entry.partition(":")[0] not in scenarios]
    assert not unknown, f"{BASELINE.name} names scenarios the suite does not list: {unknown}"
    items = [line for line in BASELINE.read_text().splitlines() if line.lstrip().startswith("- ")]
    unexplained = [line.strip() for line in items if "#" not in line]
    assert not unexplained, f"every entry of {BASELINE.name} needs a comment saying why: {unexplained}"
    assert len(items) == len(entries), "every entry sits on its own line"


def _report_section(report: str, title: str) -> list[str]:
    """The entries the suite lists under ``title`` in its baseline report (one ``  <mark> <entry>`` line each)."""
    lines = report.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(title)), None)
    if start is None:
        return []
    entries: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        entries.append(line.strip().split(" ", 1)[-1])
    return entries


def _text(output: bytes) -> str:
    return _ANSI.sub("", output.decode(errors="replace"))
