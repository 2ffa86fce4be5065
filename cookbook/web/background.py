"""Work done off the request path: a buffer the request appends to, drained by a thread.

Appending to a ``deque`` takes no lock and wakes no thread, so a request pays well under a
microsecond; one thread per process (started on first use, so a forked worker gets its
own) sleeps ``interval`` seconds and hands whatever arrived to ``handle`` in batches. A
``queue.Queue`` would wake the thread for every item: a thread switch per request, which
cost a third of the throughput when data capture used one.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any


class BackgroundDrain:
    """A bounded buffer of items and the per-process thread that hands them to *handle*."""

    def __init__(self, name: str, handle: Callable[[list], None],
                 on_error: Callable[[list, Exception], None], *, limit: int,
                 interval: float, batch: int) -> None:  # fmt: skip
        self.name = name
        self.handle = handle
        self.on_error = on_error
        self.limit = limit
        self.interval = interval
        self.batch = batch
        self._buffer: deque[Any] = deque()
        self._started = False
        self._lock = threading.Lock()
        # A forked worker starts with nothing of its parent's: no items, no thread. The hook
        # holds the drain weakly, so it never keeps a discarded one alive.
        drain = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (d := drain()) is not None and d.forget())

    def forget(self) -> None:
        """Drop the parent's items and thread (called in a forked child)."""
        self._buffer = deque()
        self._started = False
        self._lock = threading.Lock()

    def room(self) -> int:
        """Return how many more items the buffer takes before it is full."""
        self._ensure_thread()
        return self.limit - len(self._buffer)

    def put(self, item: Any) -> None:
        """Append *item*; the caller checked ``room()`` first."""
        self._buffer.append(item)

    def _ensure_thread(self) -> None:
        if self._started:
            return
        with self._lock:
            if self._started:
                return
            threading.Thread(target=self._run, name=self.name, daemon=True).start()
            self._started = True

    def _run(self) -> None:
        buffer = self._buffer
        while True:
            time.sleep(self.interval)
            while buffer:
                items = [buffer.popleft() for _ in range(min(self.batch, len(buffer)))]
                try:
                    self.handle(items)
                except Exception as exc:  # the work's failure must never end the thread
                    self.on_error(items, exc)
