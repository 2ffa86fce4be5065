"""Work done off the request path: a buffer the request appends to, drained by a thread.

Appending to a ``deque`` takes no lock and wakes no thread, so a request pays well under a
microsecond; one thread per process (started on first use, so a forked worker gets its
own) sleeps ``interval`` seconds and hands whatever arrived to ``handle`` in batches. A
``queue.Queue`` would wake the thread for every item: a thread switch per request, which
cost a third of the throughput when data capture used one.

A caller on a hot path may skip the methods (each Python call costs more than the
append): check ``running`` and call ``start()`` if it is false, compare ``len(items)``
with ``limit``, and append to ``items``.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from itertools import repeat
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
        self.items: deque[Any] = deque()
        self.running = False  # this process's thread was started
        self._lock = threading.Lock()
        # A forked worker starts with nothing of its parent's: no items, no thread. The hook
        # holds the drain weakly, so it never keeps a discarded one alive.
        drain = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (d := drain()) is not None and d.forget())

    def forget(self) -> None:
        """Drop the parent's items and thread (called in a forked child)."""
        self.items = deque()
        self.running = False
        self._lock = threading.Lock()

    def room(self) -> int:
        """Return how many more items the buffer takes before it is full."""
        if not self.running:
            self.start()
        return self.limit - len(self.items)

    def put(self, item: Any) -> None:
        """Append *item*; the caller checked ``room()`` first."""
        self.items.append(item)

    def start(self) -> None:
        """Start this process's thread, unless it runs already."""
        with self._lock:
            if self.running:
                return
            threading.Thread(target=self._run, name=self.name, daemon=True).start()
            self.running = True

    def _run(self) -> None:
        buffer = self.items
        take = deque.popleft
        while True:
            time.sleep(self.interval)
            while buffer:
                # popleft in a C loop: the requests may append meanwhile, and lose nothing.
                items = list(map(take, repeat(buffer, min(self.batch, len(buffer)))))
                try:
                    self.handle(items)
                except Exception as exc:  # the work's failure must never end the thread
                    self.on_error(items, exc)
