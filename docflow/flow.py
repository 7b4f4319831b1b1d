"""The document flow: organisations, documents moving along their routes, sealing, sending, receiving.

Every operation has the same shape:

1. **Guard.**  Read the document, the organisation and the route, and run every
   check of the operation — who may act, the state, the opinion, the exact
   bytes' digests, and the cryptographic checks (stamping and verifying the
   seal happen here too, before anything is written).  All problems are
   collected and raised together; nothing has changed.
2. **Write.**  One transaction: the document row (only if its `revision` is still
   the one the guard read — otherwise `ChangedMeanwhile`), the pending list,
   new versions, the action log entry and the audit event.

So a refused operation leaves the document exactly as it was, and every action
is one audit event (actor, time, opinion, document digest) in the same
transaction as the change it records — and, unless the organisation leaves
that action out, a decision signed with the actor's own certificate (see
`pki.accounts.decisions`; `verify_log` checks them, `evidence` writes what a
third party checks with OpenSSL alone).

Every operation acts for an authenticated `pki.accounts.Actor` (from a session;
tests: `pki.accounts.testing`): the person is the actor's account.
"""
from __future__ import annotations

import os
from typing import Any

from pki.home import Home

import seal.store  # noqa: F401  (the seal tables' migration, so migrate() below creates them too)

from .archive import ArchiveMixin
from .steps import ACTIONS

__all__ = ["DocumentFlow", "ACTIONS"]


class DocumentFlow(ArchiveMixin):
    """The official-document flow of one yinxin home.

    `seal_service` is `seal.service.SealService(home)` unless given (tests and
    other systems may pass their own instance)."""

    def __init__(self, home: Home, *, seal_service: Any = None) -> None:
        self.home = home
        home.store.migrate()   # docflow's tables (migration 200) if the home was opened before import
        self._seal_service = seal_service

    @property
    def seal_service(self) -> Any:
        if self._seal_service is None:
            from seal.service import SealService
            self._seal_service = SealService(self.home)
        return self._seal_service

    def verify_log(self, doc_id: int) -> Any:
        """Every signed decision of the document and its log checked (`docflow.evidence.LogVerification`)."""
        from .evidence.check import verify_log
        return verify_log(self, doc_id)

    def evidence(self, doc_id: int, out_dir: str | os.PathLike[str]) -> Any:
        """Write the document's evidence bundle into a new directory (`docflow.evidence.EvidenceBundle`)."""
        from .evidence.bundle import write_evidence
        return write_evidence(self, doc_id, out_dir)
