"""A fixed request rate for `wrk` (Debian's wrk 4.1 has no ``-R``): a Lua ``delay()`` on a schedule.

A constant ``delay()`` ("each connection waits D ms between requests") offers fewer requests than
intended: each connection's cycle is D plus the response time, so ``connections / D`` is only an
upper bound (10 connections waiting 20 ms reached 425 of the "500 req/s" it was meant to offer).
Here each wrk thread keeps a schedule instead — request k of the thread is due at ``start + k ×
interval`` on the monotonic clock (LuaJIT's FFI calls ``clock_gettime``) — and ``delay()`` waits
until the next due time, so the offered rate is exactly ``rate`` over the run whatever the
response times, as long as a connection is free when a request is due.  A request that starts
more than 1 ms after its due time (every connection of its thread was busy) is counted as
``late``: then the rate was not offered and the latencies miss the waiting (coordinated
omission), so a run with late requests says so instead of passing.
"""
from __future__ import annotations

#: Lua for a wrk script: defines ``delay()`` and a per-thread ``late`` counter.  Format with
#: ``interval_ms`` (the schedule's step per thread: threads × 1000 / rate).
PACED_DELAY = """\
local yx_ffi = require("ffi")
yx_ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } yx_timespec;
              int clock_gettime(int clock, yx_timespec *ts); ]]
local yx_ts = yx_ffi.new("yx_timespec")
local function yx_now_ms()
  yx_ffi.C.clock_gettime(1, yx_ts)            -- CLOCK_MONOTONIC
  return tonumber(yx_ts.tv_sec) * 1000 + tonumber(yx_ts.tv_nsec) / 1e6
end
local yx_interval = %(interval_ms).6f
local yx_due = nil
late = 0
function delay()
  local now = yx_now_ms()
  if yx_due == nil then yx_due = now end
  yx_due = yx_due + yx_interval
  local wait = yx_due - now
  if wait < -1 then late = late + 1 end
  if wait <= 0 then return 0 end
  return math.floor(wait)
end
"""


def paced_delay(rate: float, threads: int) -> str:
    """The Lua of ``delay()`` offering `rate` requests per second over `threads` wrk threads."""
    if rate <= 0 or threads < 1:
        raise ValueError("rate must be positive and threads at least 1")
    return PACED_DELAY % {"interval_ms": threads * 1000.0 / rate}


#: Lua summing the threads' ``late`` counters in ``done()``; wrk scripts that pace keep their
#: threads with ``setup(thread)`` in a table named ``threads``.
LATE_SUM = """\
local function yx_late()
  local n = 0
  for _, t in ipairs(threads) do n = n + (t:get("late") or 0) end
  return n
end
"""
