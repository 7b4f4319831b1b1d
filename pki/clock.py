"""The one place where yinxin reads the system clock.

Library code never calls ``datetime.now()``: it receives a `Clock`.  The
system clock lives here; tests pass a `FixedClock`.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""


class SystemClock:
    """The real clock, truncated to whole seconds (X.509 times have no fractions)."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc).replace(microsecond=0)


class PreciseSystemClock:
    """The real clock to the microsecond: for a timestamp authority's genTime, whose accuracy may be
    finer than a second."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


def precise(clock: Clock) -> Clock:
    """`clock` itself, or — for the system clock, which truncates to seconds — the same clock
    to the microsecond.  A FixedClock stays what it is."""
    return PRECISE_SYSTEM_CLOCK if isinstance(clock, SystemClock) else clock


class FixedClock:
    """A clock that stands still until moved; for tests and reproducible runs."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at.astimezone(timezone.utc)

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at = self._at + delta

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(timezone.utc)


SYSTEM_CLOCK = SystemClock()
PRECISE_SYSTEM_CLOCK = PreciseSystemClock()
