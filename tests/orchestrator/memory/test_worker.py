import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from orchestrator.memory.worker import WorkerStopped, WorkerThread

WAIT_SECONDS = 5


class Boom(Exception):
    pass


@pytest.fixture
async def worker() -> AsyncIterator[WorkerThread]:
    worker = WorkerThread("test-worker")
    yield worker
    await worker.stop()


async def test_calls_run_on_one_other_thread_in_the_order_they_were_submitted(worker: WorkerThread) -> None:
    ran: list[tuple[int, int]] = []

    def call(index: int) -> int:
        ran.append((index, threading.get_ident()))
        return index

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(worker.run(lambda index=index: call(index))) for index in range(20)]

    assert [task.result() for task in tasks] == list(range(20))
    assert [index for index, _ in ran] == list(range(20))
    assert len({thread for _, thread in ran}) == 1
    assert ran[0][1] != threading.get_ident()


async def test_an_error_reaches_its_caller_and_the_worker_keeps_serving(worker: WorkerThread) -> None:
    def fail() -> None:
        raise Boom

    with pytest.raises(Boom):
        await worker.run(fail)

    assert await worker.run(lambda: "still here") == "still here"


async def test_a_call_cancelled_before_it_starts_is_skipped(worker: WorkerThread) -> None:
    release = threading.Event()
    ran: list[str] = []
    blocker = asyncio.create_task(worker.run(lambda: release.wait(WAIT_SECONDS)))
    skipped = asyncio.create_task(worker.run(lambda: ran.append("skipped")))
    await asyncio.sleep(0)  # let both tasks submit their calls

    skipped.cancel()
    with pytest.raises(asyncio.CancelledError):
        await skipped
    release.set()

    assert await blocker is True
    await worker.run(lambda: ran.append("after"))
    assert ran == ["after"]


async def test_stopping_finishes_submitted_calls_and_refuses_new_ones() -> None:
    worker = WorkerThread("test-worker")
    release = threading.Event()
    pending = asyncio.create_task(worker.run(lambda: release.wait(WAIT_SECONDS)))
    await asyncio.sleep(0)  # let the call be submitted

    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0)
    release.set()
    await stopping

    assert await pending is True
    with pytest.raises(WorkerStopped):
        await worker.run(lambda: None)
