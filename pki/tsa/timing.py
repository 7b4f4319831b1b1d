"""genTime: never earlier than a token the TSA already issued.

`IssueClock` hands out genTimes, to the millisecond, from the injected clock.  It
remembers the latest one it gave (its high-water mark, seeded from the newest
genTime in the database); a clock reading earlier than that mark means the clock
stepped backwards, and `next()` raises `ClockBehind` instead of issuing — until
the clock has caught up.  Several processes serving one TSA (the HTTP workers of
`yinxin serve`) share the mark through memory made before they fork
(`shared=True`), so no worker can issue a time earlier than another worker's.
"""
from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta, timezone
from typing import Callable

from ..clock import Clock, precise
from .errors import ClockBehind

__all__ = ["IssueClock"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _millis(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(milliseconds=1)


def _from_millis(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


class IssueClock:
    def __init__(self, tsa: str, clock: Clock, last: datetime | None, *, shared: bool = False,
                 on_behind: Callable[[datetime, datetime], None] | None = None) -> None:
        self.tsa = tsa
        self._clock = precise(clock)
        start = _millis(last) if last is not None else 0
        if shared:
            self._mark = multiprocessing.Value("q", start, lock=True)
            self._lock = self._mark.get_lock()
        else:
            import threading
            self._mark = _Local(start)
            self._lock = threading.Lock()
        self._on_behind = on_behind
        self._behind = False

    @property
    def last(self) -> datetime | None:
        value = self._mark.value
        return _from_millis(value) if value else None

    def seen(self, at: datetime) -> None:
        """Raise the mark to `at` (a genTime issued elsewhere, e.g. read from the database)."""
        with self._lock:
            self._mark.value = max(self._mark.value, _millis(at))

    def next(self) -> datetime:
        """The genTime of the next token (the clock read under the lock, so marks only rise)."""
        with self._lock:
            now = self._clock.now()
            ms = _millis(now)
            if ms < self._mark.value:
                last = self._mark.value
                report = not self._behind
                self._behind = True
            else:
                self._mark.value = ms
                self._behind = False
                return _from_millis(ms)
        if report and self._on_behind is not None:
            self._on_behind(now, _from_millis(last))     # once per episode, outside the lock
        raise ClockBehind(self.tsa, now.isoformat(timespec="milliseconds"),
                          _from_millis(last).isoformat(timespec="milliseconds"))


class _Local:
    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value
