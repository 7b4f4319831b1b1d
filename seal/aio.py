"""One event loop per thread and process for pyHanko's coroutines (signing and validating)."""
from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")

_loops = threading.local()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on an event loop kept per thread and process: making and closing a loop for
    every seal or every signature verified costs about 0.4 ms each.  A forked worker makes its own
    (an inherited loop's selector belongs to the parent).  Like `asyncio.run`, refused inside a
    running loop."""
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed() or _loops.pid != os.getpid():
        loop = _loops.loop = asyncio.new_event_loop()
        _loops.pid = os.getpid()
    return loop.run_until_complete(coroutine)
