"""agentmarket.aio's primitive: synchronous code run on the event loop with its awaits handed to the loop."""

from __future__ import annotations

import contextvars

import anyio
import pytest

from agentmarket.aio import await_, run_sync
from agentmarket.errors import ConfigError, InvalidInput

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def test_await_outside_run_sync_is_a_typed_error() -> None:
    async def main() -> None:
        with pytest.raises(ConfigError, match="await"):
            await_(anyio.sleep(0))

    anyio.run(main)


def test_results_and_typed_errors_cross_back() -> None:
    def ok(x: int) -> int:
        await_(anyio.sleep(0))
        return x * 2

    def bad() -> None:
        await_(anyio.sleep(0))
        raise InvalidInput("no", param="x")

    async def main() -> None:
        assert await run_sync(ok, 21) == 42
        with pytest.raises(InvalidInput):
            await run_sync(bad)

    anyio.run(main)


def test_calls_interleave_at_their_awaits_and_keep_their_own_context() -> None:
    log: list[str] = []

    def worker(name: str) -> str:
        VAR.set(name)
        for step in range(3):
            log.append(f"{name}{step}")
            await_(anyio.sleep(0.01))
        return VAR.get()  # its own value, though the other call set VAR meanwhile

    async def main() -> None:
        seen: dict[str, str] = {}

        async def run(name: str) -> None:
            seen[name] = await run_sync(worker, name)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "a")
            tg.start_soon(run, "b")
        assert seen == {"a": "a", "b": "b"}
        assert VAR.get() == "unset"  # nothing leaked into the caller's context

    anyio.run(main)
    assert log[:2] in (["a0", "b0"], ["b0", "a0"])  # both started before either finished
    assert sorted(log) == ["a0", "a1", "a2", "b0", "b1", "b2"]


def test_cancellation_unwinds_the_synchronous_code() -> None:
    unwound: list[bool] = []

    def slow() -> None:
        try:
            await_(anyio.sleep(60))
        finally:
            unwound.append(True)

    async def main() -> None:
        with anyio.move_on_after(0.05):
            await run_sync(slow)

    anyio.run(main)
    assert unwound == [True]
