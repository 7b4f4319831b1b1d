"""The status service's background work: pre-signing OCSP responses and publishing CRLs.

One `Maintainer` runs per service (its own process, beside the HTTP workers).
Each `step()`:

1. polls the `ChangeWatch`; every certificate whose status changed has its
   response re-signed and stored at once, and its CA's CRLs are marked dirty;
2. publishes CRLs (when it holds the CA key): a full and a delta CRL when none
   exists or the last is older than `CrlPolicy.interval`; after a status
   change, once changes have been quiet for `debounce` (but no later than
   `max_delay` after the first), a new delta CRL, and a new full CRL as soon
   as the last full one is `full_min_age` old — so a burst of revocations
   costs one CRL, and a million-entry full CRL is not rebuilt for every change;
3. every `sweep_interval`, signs what is missing, signed by another key, or
   near its nextUpdate (`Presigner.refresh`), in chunks so that status changes
   are never queued behind a long initial pre-signing run.

Errors are logged and the loop goes on: the HTTP workers keep serving what is
stored whatever happens here.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

import sqlalchemy as sa

from ..algorithms import PrivateKey
from ..ca import CaInfo, CertificateAuthority
from ..presign import OcspPolicy, OcspSigner, Presigner
from ..status import generate_crl
from ..store import crls
from .watch import ChangeWatch

log = logging.getLogger("yinxin.server")

#: the status service acts on its own (publishing CRLs) as `service:yinxin-serve`
SERVICE = "yinxin-serve"


@dataclass(frozen=True)
class CrlPolicy:
    interval: timedelta = timedelta(hours=1)
    debounce: timedelta = timedelta(seconds=5)
    max_delay: timedelta = timedelta(seconds=60)
    full_min_age: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0) or self.debounce < timedelta(0) or self.max_delay < self.debounce:
            raise ValueError("CRL policy: interval > 0, 0 <= debounce <= max_delay")


@dataclass
class ServedCa:
    """A CA this service answers for, with the keys it was given."""

    ca: CaInfo
    signer: OcspSigner | None            # signs OCSP responses (CA key or delegated responder)
    crl_key: PrivateKey | None = None    # the CA key: CRLs are published only when it is given


@dataclass
class _CrlState:
    full_at: datetime | None = None
    delta_at: datetime | None = None
    first_change: float | None = None     # monotonic
    last_change: float | None = None
    full_dirty: bool = False


@dataclass
class Maintainer:
    authority: CertificateAuthority
    served: list[ServedCa]
    engine: sa.engine.Engine
    policy: OcspPolicy = field(default_factory=OcspPolicy)
    crl_policy: CrlPolicy = field(default_factory=CrlPolicy)
    sweep_interval: float = 300.0
    sweep_chunk: int = 500
    monotonic: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.clock = self.authority.home.clock
        from ..accounts.accounts import Accounts
        self.actor = Accounts.of(self.authority.home).service_actor(SERVICE)
        self._by_id = {s.ca.id: s for s in self.served}
        self._presigners = {s.ca.id: Presigner(self.authority, s.ca, s.signer, self.policy)
                            for s in self.served if s.signer is not None}
        self._crl_state = {s.ca.id: _CrlState() for s in self.served}
        self._sweep_due = 0.0
        self._sweep_pending: set[int] = set(self._presigners)
        self._sweep_cursor: dict[int, int] = {}
        self.watch = ChangeWatch(self.engine, self._by_id)
        self._load_crl_times()

    def _load_crl_times(self) -> None:
        with self.engine.connect() as conn:
            for ca_id, state in self._crl_state.items():
                for delta in (False, True):
                    cond = crls.c.delta_base.is_not(None) if delta else crls.c.delta_base.is_(None)
                    at = conn.execute(sa.select(sa.func.max(crls.c.this_update))
                                      .where(crls.c.ca_id == ca_id, cond)).scalar()
                    if delta:
                        state.delta_at = at
                    else:
                        state.full_at = at

    # ------------------------------------------------------------------ one round

    def step(self) -> bool:
        """One round of work; True when something is still pending (call again soon)."""
        busy = False
        for task in (self._follow_changes, self._publish_crls, self._sweep):
            try:
                busy = task() or busy
            except Exception:  # logged; the next round tries again
                log.exception("status maintenance: %s failed", task.__name__.strip("_"))
        return busy

    def _follow_changes(self) -> bool:
        changes = self.watch.poll()
        if changes.everything:
            self._sweep_pending = set(self._presigners)
            self._sweep_cursor.clear()
            self._sweep_due = 0.0
            for state in self._crl_state.values():
                self._mark_dirty(state)
        by_ca: dict[int, list[str]] = {}
        for ca_id, serial in changes.serials:
            by_ca.setdefault(ca_id, []).append(serial)
        for ca_id, serials in by_ca.items():
            presigner = self._presigners.get(ca_id)
            if presigner is not None:
                presigner.resign(serials)
            self._mark_dirty(self._crl_state[ca_id])
        return False

    def _mark_dirty(self, state: _CrlState) -> None:
        now = self.monotonic()
        if state.first_change is None:
            state.first_change = now
        state.last_change = now
        state.full_dirty = True

    def _publish_crls(self) -> bool:
        now = self.clock.now()
        mono = self.monotonic()
        policy = self.crl_policy
        for served in self.served:
            if served.crl_key is None:
                continue
            state = self._crl_state[served.ca.id]
            settled = state.first_change is not None and (
                mono - (state.last_change or 0) >= policy.debounce.total_seconds()
                or mono - state.first_change >= policy.max_delay.total_seconds())
            full_age = None if state.full_at is None else now - state.full_at
            full_due = (full_age is None or full_age >= policy.interval
                        or (settled or state.first_change is None) and state.full_dirty
                        and full_age >= policy.full_min_age)
            delta_due = (full_due or settled or state.delta_at is None
                         or now - state.delta_at >= policy.interval)
            if full_due:
                result = generate_crl(self.authority, served.ca, served.crl_key, actor=self.actor)
                state.full_at, state.full_dirty = result.this_update, False
                log.info("CA %s: full CRL %d, %d entries", served.ca.name, result.number, result.entries)
            if delta_due:
                result = generate_crl(self.authority, served.ca, served.crl_key, delta=True, actor=self.actor)
                state.delta_at = result.this_update
                log.info("CA %s: delta CRL %d, %d entries", served.ca.name, result.number, result.entries)
            if settled:
                state.first_change = state.last_change = None
        return False

    def _sweep(self) -> bool:
        mono = self.monotonic()
        if not self._sweep_pending:
            if mono < self._sweep_due:
                return False
            self._sweep_pending = set(self._presigners)
        ca_id = next(iter(self._sweep_pending))
        signed, cursor = self._presigners[ca_id].refresh(limit=self.sweep_chunk,
                                                         after_id=self._sweep_cursor.get(ca_id, 0))
        if signed:
            log.info("CA %s: pre-signed %d OCSP responses", self._by_id[ca_id].ca.name, signed)
        if cursor is not None:
            self._sweep_cursor[ca_id] = cursor
        else:
            self._sweep_cursor.pop(ca_id, None)
            self._sweep_pending.discard(ca_id)
            if not self._sweep_pending:
                self._sweep_due = mono + self.sweep_interval
        return bool(self._sweep_pending)

    def run(self, should_stop: Callable[[], bool], *, idle: float = 0.2) -> None:
        """Work until `should_stop()`; sleeps `idle` seconds between rounds with nothing pending."""
        while not should_stop():
            if not self.step():
                time.sleep(idle)

    def close(self) -> None:
        self.watch.close()


def describe(served: list[ServedCa]) -> list[dict[str, Any]]:
    return [{"ca": s.ca.name, "ocsp_signer": None if s.signer is None else
             ("delegated responder" if s.signer.delegated else "CA key"),
             "publishes_crls": s.crl_key is not None} for s in served]
