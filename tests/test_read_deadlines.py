"""The body reads' deadlines: one sweeping timer per worker, in a real uvloop event loop."""

from __future__ import annotations

import asyncio
import time

import uvloop

from cookbook.web.deadlines import ReadDeadlines


async def read(deadlines: ReadDeadlines, body: asyncio.Future) -> str:
    """Read *body* under a deadline, as the RSGI adapter does; say how the read ended."""
    task = asyncio.current_task()
    deadlines.start(task)
    try:
        return await body
    except asyncio.CancelledError:
        if not deadlines.overdue(task):
            raise
        return "overdue"
    finally:
        deadlines.finish(task)


def run(main) -> object:
    """Run *main* in uvloop (the server's loop); a read never cancelled fails, not hangs."""

    async def bounded():
        return await asyncio.wait_for(main(), 5)

    return uvloop.run(bounded())


def test_a_read_past_its_deadline_is_cancelled_within_a_tick_and_can_still_answer():
    async def main():
        deadlines = ReadDeadlines(0.2)
        started = time.monotonic()
        outcome = await read(deadlines, asyncio.get_running_loop().create_future())
        return outcome, time.monotonic() - started, deadlines

    outcome, seconds, deadlines = run(main)
    assert outcome == "overdue"
    assert 0.2 <= seconds <= 0.2 + deadlines.tick + 0.2
    assert not deadlines.reads and not deadlines.expired


def test_reads_in_time_are_untouched_and_the_timer_stops_when_none_remain():
    async def main():
        loop = asyncio.get_running_loop()
        deadlines = ReadDeadlines(0.2)
        bodies = [loop.create_future() for _ in range(50)]
        reads = [asyncio.create_task(read(deadlines, body)) for body in bodies]
        await asyncio.sleep(0)
        for index, body in enumerate(bodies):
            body.set_result(f"body {index}")
        answers = await asyncio.gather(*reads)
        armed_while_reading = deadlines.armed
        await asyncio.sleep(deadlines.tick * 2)
        return answers, armed_while_reading, deadlines

    answers, armed_while_reading, deadlines = run(main)
    assert answers == [f"body {index}" for index in range(50)]
    assert armed_while_reading and not deadlines.armed
    assert not deadlines.reads and not deadlines.expired


def test_only_overdue_reads_are_cancelled_among_several():
    async def main():
        loop = asyncio.get_running_loop()
        deadlines = ReadDeadlines(0.3)
        stalled = asyncio.create_task(read(deadlines, loop.create_future()))
        await asyncio.sleep(0.2)
        late_body = loop.create_future()
        later = asyncio.create_task(read(deadlines, late_body))  # its deadline is 0.2 s later
        first = await stalled
        still_waiting = not later.done()
        late_body.set_result("in time")
        return first, still_waiting, await later

    assert run(main) == ("overdue", True, "in time")


def test_a_cancellation_from_elsewhere_is_not_taken_for_a_deadline():
    async def main():
        deadlines = ReadDeadlines(10)
        reading = asyncio.create_task(read(deadlines, asyncio.get_running_loop().create_future()))
        await asyncio.sleep(0)
        reading.cancel()  # the server stopping, say
        try:
            await reading
        except asyncio.CancelledError:
            return "cancelled", deadlines
        return "answered", deadlines

    outcome, deadlines = run(main)
    assert outcome == "cancelled"
    assert not deadlines.reads and not deadlines.expired
