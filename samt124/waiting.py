"""Polling until something holds: what the demo, the benchmarks and the tests wait with."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    every: float = 0.2,
    *,
    error: Callable[[str], Exception] = TimeoutError,
    tolerate: tuple[type[Exception], ...] = (),
) -> Any:
    """Call ``condition`` every ``every`` seconds until it returns something true; return that.

    Exceptions of the ``tolerate`` types count as "not yet". After ``timeout`` seconds raise
    ``error("timed out after N s waiting for <what>")``.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except tolerate:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise error(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
