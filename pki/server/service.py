"""What the status service answers, without HTTP: OCSP responses, CRLs, CA certificates.

One `StatusService` lives in each worker process.  Answering an OCSP request:

1. The raw request (DER) is the cache key: a request seen before is answered
   from memory — no parsing, no database, no signature.  Cache entries are
   dropped when the watch reports their certificate changed, when their
   response nears its end (`OcspPolicy.serve_margin`), and re-checked against
   the database every `revalidate_after` seconds in any case.
2. A new request is parsed strictly (`pki.ocsp.parse_ocsp_request`); junk is
   answered ``malformedRequest``, CertIDs naming no CA served here
   ``unauthorized``.
3. One SHA-1 CertID without a nonce (what RFC 5019 clients send) is answered
   with the pre-signed response from `ocsp_responses` when it still states the
   certificate's current status; otherwise, and for nonces, several CertIDs or
   other hash algorithms, the response is signed now.  With
   ``nonce_policy="presigned"`` a request with a nonce is answered like one
   without (RFC 5019 §2.1: the nonce is not echoed) when a current pre-signed
   response exists.

Signing now is a `SignJob`: `prepare` returns it, whoever holds the key signs
its `tbs` (the HTTP application hands it to the signing pool, see
`pki.server.signing`; `ocsp()` signs in place), and `complete` puts the
response together.

Freshness bound: before answering, the service polls the `ChangeWatch` when
`poll_interval` has passed since the last poll — in the request path, not on
a timer, so a change committed more than `poll_interval` before a request
arrives is always seen by it (provided its timestamp falls within the watch's
margin; otherwise within `revalidate_after`).
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formatdate
from typing import Any, Callable

import sqlalchemy as sa

from ..ca import CaInfo
from ..clock import Clock
from ..ocsp import (MalformedOcspRequest, OcspCertId, OcspRequestInfo, issuer_hashes, ocsp_error_response,
                    parse_ocsp_request)
from ..presign import OcspPolicy, OcspSigner, certificate_status, finish_response, ocsp_responses, response_tbs
from ..store import certificates, crls
from .watch import ChangeWatch

log = logging.getLogger("yinxin.server")

MALFORMED = ocsp_error_response("malformed_request")
UNAUTHORIZED = ocsp_error_response("unauthorized")
INTERNAL_ERROR = ocsp_error_response("internal_error")
TRY_LATER = ocsp_error_response("try_later")


def http_date(timestamp: float) -> bytes:
    return formatdate(timestamp, usegmt=True).encode()


@dataclass
class OcspAnswer:
    """A DER OCSPResponse and what HTTP caching needs to know about it."""

    der: bytes
    this_update: float | None = None        # epoch seconds; None: an error response
    next_update: float | None = None
    cacheable: bool = False                 # False for nonces and errors
    signed_now: bool = False
    etag: bytes = b""
    # (ca_id, serial, (status, status_changed_at) or None) for each certificate it states
    states: tuple[tuple[int, str, Any], ...] = ()
    checked_at: float = 0.0                 # monotonic time of the last check against the database
    drop_at: float = 0.0                    # epoch seconds after which it is not handed out

    def __post_init__(self) -> None:
        if not self.etag:
            self.etag = b'"' + hashlib.sha256(self.der).hexdigest()[:32].encode() + b'"'
        self.last_modified = http_date(self.this_update) if self.this_update is not None else b""
        self.expires = http_date(self.next_update) if self.next_update is not None else b""


@dataclass
class CrlDocument:
    der: bytes
    number: int
    this_update: float
    next_update: float
    etag: bytes = b""

    def __post_init__(self) -> None:
        self.etag = b'"' + hashlib.sha256(self.der).hexdigest()[:32].encode() + b'"'
        self.last_modified = http_date(self.this_update)
        self.expires = http_date(self.next_update)


@dataclass
class Endpoint:
    """One CA served here; `key_index` names its OCSP key in the signing pool (None: none there)."""

    ca: CaInfo
    signer: OcspSigner | None
    hashes: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    cert_etag: bytes = b""
    key_index: int | None = None

    def __post_init__(self) -> None:
        self.cert_etag = b'"' + hashlib.sha256(self.ca.cert_der).hexdigest()[:32].encode() + b'"'

    def issuer_hashes(self, algorithm: str) -> tuple[bytes, bytes]:
        if algorithm not in self.hashes:
            try:
                self.hashes[algorithm] = issuer_hashes(self.ca.certificate, algorithm)
            except (ValueError, KeyError):
                self.hashes[algorithm] = (b"", b"")
        return self.hashes[algorithm]

    def names(self, cert_id: OcspCertId) -> bool:
        return self.issuer_hashes(cert_id.hash_algorithm) == (cert_id.issuer_name_hash, cert_id.issuer_key_hash)


@dataclass
class SignJob:
    """An OCSP response to be signed now: `tbs` (put together on first use, so that a request
    the signing pool refuses costs no encoding) goes to the endpoint's key."""

    endpoint: Endpoint
    key: tuple[str, bytes]              # the cache key of the request
    answers: list[Any]
    now: datetime
    nonce: bytes | None
    policy: OcspPolicy
    cacheable: bool
    states: tuple[tuple[int, str, Any], ...]
    _tbs: bytes | None = None

    @property
    def produced(self) -> float:        # epoch seconds
        return self.now.timestamp()

    @property
    def tbs(self) -> bytes:
        if self._tbs is None:
            assert self.endpoint.signer is not None
            self._tbs = response_tbs(self.endpoint.signer, self.answers, now=self.now, policy=self.policy,
                                     nonce=self.nonce)
        return self._tbs

    def sign_here(self) -> bytes:
        """Sign with the endpoint's key in this process (checked before it is used)."""
        from ..x509 import _sign, verify_signed_data
        signer = self.endpoint.signer
        assert signer is not None
        signature = _sign(signer.key, self.tbs, signer.distid)
        public = signer.key.public_key()
        verify_signed_data(public, public.signature_algorithm(), signature, self.tbs, distid=signer.distid)
        return signature


NONCE_POLICIES = ("sign", "presigned")

#: a certificate's status and its stored pre-signed response, built once (constructing the
#: statement costs more than running it)
_STATUS_QUERY = (sa.select(certificates.c.status, certificates.c.status_changed_at, certificates.c.revoked_at,
                           certificates.c.revocation_reason, ocsp_responses.c.der, ocsp_responses.c.cert_status,
                           ocsp_responses.c.cert_changed_at, ocsp_responses.c.signer, ocsp_responses.c.this_update,
                           ocsp_responses.c.next_update)
                 .select_from(certificates.outerjoin(ocsp_responses, sa.and_(
                     ocsp_responses.c.ca_id == certificates.c.ca_id, ocsp_responses.c.serial == certificates.c.serial)))
                 .where(certificates.c.ca_id == sa.bindparam("ca_id"),
                        certificates.c.serial == sa.bindparam("serial")))


class StatusService:
    def __init__(self, endpoints: dict[str, Endpoint], engine: sa.engine.Engine, *, clock: Clock,
                 policy: OcspPolicy = OcspPolicy(), poll_interval: float = 0.1,
                 revalidate_after: float = 30.0, cache_size: int = 100_000,
                 monotonic: Callable[[], float] = time.monotonic, nonce_policy: str = "sign") -> None:
        if nonce_policy not in NONCE_POLICIES:
            raise ValueError(f"nonce_policy is one of {NONCE_POLICIES}")
        self.nonce_policy = nonce_policy
        self.endpoints = endpoints
        self.engine = engine
        self.clock = clock
        self.policy = policy
        self.poll_interval = poll_interval
        self.revalidate_after = revalidate_after
        self.cache_size = cache_size
        self.monotonic = monotonic
        self._by_id = {e.ca.id: e for e in endpoints.values()}
        self._cache: OrderedDict[tuple[str, bytes], OcspAnswer] = OrderedDict()
        self._keys_of: dict[tuple[int, str], set[tuple[str, bytes]]] = {}
        self._crls: dict[tuple[int, bool], CrlDocument | None] = {}
        self.watch = ChangeWatch(engine, self._by_id)
        self._last_poll = monotonic()
        self.stats = {"hits": 0, "presigned": 0, "signed": 0, "errors": 0, "try_later": 0}

    # ------------------------------------------------------------------ freshness

    def poll(self, *, force: bool = False) -> None:
        now = self.monotonic()
        if not force and now - self._last_poll < self.poll_interval:
            return
        self._last_poll = now
        changes = self.watch.poll()
        if not changes:
            return
        if changes.everything:
            self._cache.clear()
            self._keys_of.clear()
        for key in changes.serials:
            self.invalidate(*key)
        for ca_id in changes.crls:
            self._crls.pop((ca_id, False), None)
            self._crls.pop((ca_id, True), None)

    def invalidate(self, ca_id: int, serial: str) -> None:
        """Forget every cached answer that states this certificate's status."""
        for key in self._keys_of.pop((ca_id, serial), ()):
            self._cache.pop(key, None)

    def _remember(self, key: tuple[str, bytes], answer: OcspAnswer) -> None:
        self._cache[key] = answer
        for ca_id, serial, _ in answer.states:
            self._keys_of.setdefault((ca_id, serial), set()).add(key)
        while len(self._cache) > self.cache_size:
            old_key, old = self._cache.popitem(last=False)
            for ca_id, serial, _ in old.states:
                keys = self._keys_of.get((ca_id, serial))
                if keys is not None:
                    keys.discard(old_key)
                    if not keys:
                        del self._keys_of[(ca_id, serial)]

    # ------------------------------------------------------------------ OCSP

    def ocsp(self, ca_name: str, request_der: bytes) -> OcspAnswer:
        """The answer to one DER OCSP request sent to /ocsp/`ca_name`, signed here if it must be;
        never raises for bad input."""
        prepared = self.prepare(ca_name, request_der)
        if isinstance(prepared, SignJob):
            return self.complete(prepared, prepared.sign_here())
        return prepared

    def complete(self, job: SignJob, signature: bytes) -> OcspAnswer:
        """The response of a `SignJob` once its `tbs` is signed (remembered when cacheable)."""
        signer = job.endpoint.signer
        assert signer is not None
        der = finish_response(signer, job.tbs, signature)
        self.stats["signed"] += 1
        next_update = job.produced + self.policy.validity.total_seconds()
        # an answer signed here is kept until the pre-signed one would be refreshed
        answer = OcspAnswer(der, job.produced, next_update, cacheable=job.cacheable, signed_now=True,
                            states=job.states, checked_at=self.monotonic(),
                            drop_at=next_update - self.policy.refresh_before.total_seconds())
        if answer.cacheable:
            self._remember(job.key, answer)
        return answer

    def try_later(self) -> OcspAnswer:
        self.stats["try_later"] += 1
        return OcspAnswer(TRY_LATER)

    def prepare(self, ca_name: str, request_der: bytes) -> OcspAnswer | SignJob:
        """The answer to one request when no signature is needed now, else the `SignJob`."""
        self.poll()
        key = (ca_name, request_der)
        cached = self._cache.get(key)
        if cached is not None:
            if self._still_good(cached):
                self._cache.move_to_end(key)
                self.stats["hits"] += 1
                return cached
            self._cache.pop(key, None)
        endpoint = self.endpoints.get(ca_name)
        if endpoint is None:
            return OcspAnswer(UNAUTHORIZED)
        try:
            request = parse_ocsp_request(request_der)
        except MalformedOcspRequest:
            self.stats["errors"] += 1
            return OcspAnswer(MALFORMED)
        answer = self._answer(endpoint, request, key)
        if isinstance(answer, OcspAnswer) and answer.cacheable:
            self._remember(key, answer)
        return answer

    def _still_good(self, answer: OcspAnswer) -> bool:
        if self.clock.now().timestamp() >= answer.drop_at:
            return False
        mono = self.monotonic()
        if mono - answer.checked_at < self.revalidate_after:
            return True
        with self.engine.connect() as conn:
            for ca_id, serial, state in answer.states:
                if self._state(conn, ca_id, serial) != state:
                    return False
        answer.checked_at = mono
        return True

    @staticmethod
    def _state(conn: Any, ca_id: int, serial: str) -> tuple[str, datetime] | None:
        c = certificates.c
        row = conn.execute(sa.select(c.status, c.status_changed_at)
                           .where(c.ca_id == ca_id, c.serial == serial)).first()
        return None if row is None or row.status == "reserved" else (row.status, row.status_changed_at)

    def _answer(self, endpoint: Endpoint, request: OcspRequestInfo, key: tuple[str, bytes]) -> OcspAnswer | SignJob:
        mine = [endpoint.names(cid) for cid in request.cert_ids]
        if not any(mine):
            return OcspAnswer(UNAUTHORIZED)
        ca_id = endpoint.ca.id
        presignable = ((request.nonce is None or self.nonce_policy == "presigned") and len(request.cert_ids) == 1
                       and request.cert_ids[0].hash_algorithm == "sha1")
        answers, states = [], []
        stored = None
        with self.engine.connect() as conn:
            for cert_id, named in zip(request.cert_ids, mine):
                if not named:
                    answers.append((cert_id, "unknown", None, None))
                    continue
                serial = f"{cert_id.serial:x}"
                row = conn.execute(_STATUS_QUERY, {"ca_id": ca_id, "serial": serial}).first()
                if row is None or row.status == "reserved":
                    answers.append((cert_id, "unknown", None, None))
                    states.append((ca_id, serial, None))
                    continue
                answers.append((cert_id, *certificate_status(row.status, row.revoked_at, row.revocation_reason)))
                states.append((ca_id, serial, (row.status, row.status_changed_at)))
                if presignable and self._stored_is_current(endpoint, row):
                    stored = row
        mono = self.monotonic()
        if stored is not None:
            self.stats["presigned"] += 1
            this_update, next_update = stored.this_update.timestamp(), stored.next_update.timestamp()
            # a request with a nonce answered pre-signed (nonce_policy "presigned") is not kept:
            # its bytes never come again
            return OcspAnswer(stored.der, this_update, next_update, cacheable=request.nonce is None,
                              states=tuple(states), checked_at=mono,
                              drop_at=next_update - self.policy.serve_margin.total_seconds())
        if endpoint.signer is None:
            return self.try_later()
        return SignJob(endpoint, key, answers, self.clock.now(), request.nonce, self.policy, request.nonce is None,
                       tuple(states))

    def _stored_is_current(self, endpoint: Endpoint, row: Any) -> bool:
        if row.der is None:
            return False
        if row.cert_status != row.status or row.cert_changed_at != row.status_changed_at:
            return False
        if endpoint.signer is not None and row.signer != endpoint.signer.fingerprint:
            return False
        return self.clock.now() < row.next_update - self.policy.serve_margin

    # ------------------------------------------------------------------ CRLs and certificates

    def crl(self, ca_name: str, *, delta: bool) -> CrlDocument | None:
        """The latest stored full (or delta) CRL of the CA; None when there is none."""
        self.poll()
        endpoint = self.endpoints.get(ca_name)
        if endpoint is None:
            return None
        key = (endpoint.ca.id, delta)
        if key in self._crls:
            document = self._crls[key]
            if document is None or self.clock.now().timestamp() < document.next_update:
                return document
        cond = crls.c.delta_base.is_not(None) if delta else crls.c.delta_base.is_(None)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(crls.c.der, crls.c.number, crls.c.this_update, crls.c.next_update)
                               .where(crls.c.ca_id == endpoint.ca.id, cond)
                               .order_by(crls.c.number.desc()).limit(1)).first()
        document = None if row is None else CrlDocument(row.der, row.number, row.this_update.timestamp(),
                                                        row.next_update.timestamp())
        self._crls[key] = document
        return document

    def close(self) -> None:
        self.watch.close()
