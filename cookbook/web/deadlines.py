"""Deadlines for reading request bodies: one timer per worker, not one per request.

``asyncio.timeout`` arms a loop timer when a read starts and cancels it when the read ends:
on granian's uvloop that cost 12 µs of CPU per request (bench/hot_path.py's ``adapter``
rounds, against about 60 µs for all of granian's own work), a tenth of a prediction. Here a
read registers its task with its deadline in a dict, and one timer, armed only while reads
are registered, sweeps them every ``tick`` seconds and cancels the tasks whose deadline has
passed. Every read has the same timeout, so the dict's order (insertion) is the deadlines'
order and a sweep stops at the first read still in time. A read that overruns is cancelled
between its deadline and ``tick`` seconds later.
"""

from __future__ import annotations

import asyncio
import time

# A sweep at least this often (a shorter timeout sweeps more often: a quarter of it).
LONGEST_TICK_SECONDS = 1.0


class ReadDeadlines:
    """The body reads in progress in this worker's event loop, cancelled when overdue."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.tick = min(LONGEST_TICK_SECONDS, seconds / 4)
        self.reads: dict[asyncio.Task, float] = {}  # task -> deadline (time.monotonic)
        self.expired: set[asyncio.Task] = set()  # cancelled by a sweep, not yet told
        self.armed = False  # a sweep is scheduled

    def start(self, task: asyncio.Task) -> None:
        """Give *task*'s read its deadline; the caller calls ``finish`` when the read ends."""
        self.reads[task] = time.monotonic() + self.seconds
        if not self.armed:
            self.armed = True
            asyncio.get_running_loop().call_later(self.tick, self.sweep)

    def finish(self, task: asyncio.Task) -> None:
        """Forget *task*'s read: it ended (or was cancelled)."""
        self.reads.pop(task, None)

    def overdue(self, task: asyncio.Task) -> bool:
        """Return whether a sweep cancelled *task* (its read passed its deadline), and undo
        that cancellation so the task can answer; False for a cancellation from elsewhere."""
        if task not in self.expired:
            return False
        self.expired.discard(task)
        task.uncancel()
        return True

    def sweep(self) -> None:
        """Cancel every read past its deadline; sweep again while reads remain."""
        now = time.monotonic()
        reads = self.reads
        while reads:
            task, deadline = next(iter(reads.items()))
            if deadline > now:
                break
            del reads[task]
            if task.cancel():
                self.expired.add(task)
        if reads:
            asyncio.get_running_loop().call_later(self.tick, self.sweep)
        else:
            self.armed = False
