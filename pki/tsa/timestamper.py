"""Getting a timestamp: one small protocol, two implementations.

    class Timestamper(Protocol):
        def timestamp_digest(self, digest: bytes, hash_algorithm: str) -> bytes: ...
        def timestamp(self, data: bytes, hash_algorithm: str) -> bytes: ...

Both return the DER of a TimeStampToken (CMS ContentInfo) whose imprint is the
digest, and raise `TimestampUnavailable` when none can be had.

* `LocalTimestamper` — a TSA of this home, in this process (its key loaded): the
  token is recorded like every other before it is returned;
* `HttpTimestamper` — any RFC 3161 TSA over HTTP (`POST application/timestamp-query`),
  with a fresh nonce; the reply is checked (status, nonce, imprint) before it is
  believed.

PDF sealing (`seal`) and OFD sealing use either through this protocol.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from typing import Protocol, runtime_checkable

from typing import TYPE_CHECKING, Any, Callable

from ..rand import SYSTEM_RANDOM, RandomSource
from .errors import ClockBehind, MalformedToken, RequestRefused, TimestampUnavailable
from .protocol import HASHES, build_request, hash_data, parse_request

if TYPE_CHECKING:
    from .authority import TsaSigner

__all__ = ["Timestamper", "TimestamperBase", "LocalTimestamper", "HttpTimestamper", "home_timestamper"]


@runtime_checkable
class Timestamper(Protocol):
    def timestamp_digest(self, digest: bytes, hash_algorithm: str) -> bytes:
        """A TimeStampToken (DER) over `digest`, a `hash_algorithm` hash (sha256, sha384, sha512, sm3)."""

    def timestamp(self, data: bytes, hash_algorithm: str) -> bytes:
        """A TimeStampToken (DER) over the `hash_algorithm` hash of `data`."""


class TimestamperBase:
    """`timestamp` in terms of `timestamp_digest`."""

    def timestamp_digest(self, digest: bytes, hash_algorithm: str) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def timestamp(self, data: bytes, hash_algorithm: str) -> bytes:
        return self.timestamp_digest(hash_data(hash_algorithm, data), hash_algorithm)

    def _nonce(self, rand: RandomSource) -> int:
        return int.from_bytes(rand.token_bytes(8), "big") >> 1 | 1 << 62


class LocalTimestamper(TimestamperBase):
    """This home's TSA, in process: `TimestampAuthority(home).load(name, password)` gives the signer."""

    def __init__(self, signer: TsaSigner, *, client: str = "in-process") -> None:
        self.signer = signer
        self.client = client

    @property
    def name(self) -> str:
        return self.signer.info.name

    def timestamp_digest(self, digest: bytes, hash_algorithm: str) -> bytes:
        query = build_request(digest, hash_algorithm, nonce=self._nonce(self.signer.home.rand))
        try:
            request = parse_request(query, hashes=self.signer.hashes, policy=self.signer.info.policy)
            return self.signer.issue(request, client=self.client).token
        except RequestRefused as exc:
            raise TimestampUnavailable(f"TSA {self.name} refused: {exc.reason}", tsa=self.name,
                                       failure=exc.data["failure"]) from None
        except ClockBehind as exc:
            raise TimestampUnavailable(exc.message, tsa=self.name) from None

    def size_estimate(self, hash_algorithm: str) -> bytes:
        """A token of the right size that is *not* signed and never recorded: what pyHanko sizes
        a signature container with (a placeholder where the signature goes)."""
        from datetime import timedelta
        query = build_request(bytes(HASHES[hash_algorithm][0]), hash_algorithm, nonce=1 << 62)
        request = parse_request(query, hashes=self.signer.hashes, policy=self.signer.info.policy)
        when = self.signer.home.clock.now() + timedelta(milliseconds=123)
        tst = self.signer.builder.tst_info(request, (1 << 126) | 1, when)
        attrs = self.signer.builder.signed_attributes(tst)
        info = self.signer.public.spki()
        # RSA: the modulus length; (EC)DSA/SM2: the longest DER (r, s)
        size = (info.bit_size + 7) // 8 if info.algorithm == "rsa" else 2 * ((info.bit_size + 7) // 8 + 3) + 2
        return self.signer.builder.token(tst, attrs, bytes(size), with_certificate=True)


class HttpTimestamper(TimestamperBase):
    """An RFC 3161 TSA over HTTP(S).  `timeout` in seconds; nothing is retried."""

    def __init__(self, url: str, *, timeout: float = 10.0, rand: RandomSource = SYSTEM_RANDOM,
                 policy: str | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("a timestamp URL is http:// or https://")
        self.url = url
        self.timeout = timeout
        self.rand = rand
        self.policy = policy

    @property
    def name(self) -> str:
        return self.url

    def timestamp_digest(self, digest: bytes, hash_algorithm: str) -> bytes:
        from .token import parse_token, token_from_response
        nonce = self._nonce(self.rand)
        query = build_request(digest, hash_algorithm, nonce=nonce, policy=self.policy)
        request = urllib.request.Request(self.url, data=query, method="POST", headers={
            "Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:   # noqa: S310 - http(s) only
                body = reply.read(1 << 20)
        except urllib.error.HTTPError as exc:
            raise TimestampUnavailable(f"the TSA at {self.url} answered HTTP {exc.code} {exc.reason}",
                                       url=self.url, status=exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TimestampUnavailable(f"the TSA at {self.url} cannot be reached: {reason}", url=self.url) from None
        try:
            token = token_from_response(body)
            parsed = parse_token(token)
        except MalformedToken as exc:
            raise TimestampUnavailable(f"the TSA at {self.url} sent no usable reply: {exc.message}",
                                       url=self.url) from None
        if parsed.nonce != nonce:
            raise TimestampUnavailable(f"the TSA at {self.url} did not echo the nonce", url=self.url)
        if parsed.hash_algorithm != hash_algorithm or parsed.imprint != digest:
            raise TimestampUnavailable(f"the TSA at {self.url} dated other data than asked", url=self.url)
        return token


def home_timestamper(home: Any, password: Callable[[str], bytes]) -> Timestamper | None:
    """The timestamper a home uses for its archive: ``tsa:`` in its config.yaml (a URL, or the name
    of one of its TSAs), else its only TSA; None when it has none.  `password(name)` is asked for
    the key password of a TSA of this home (only then)."""
    from ..errors import PolicyError
    from .authority import TimestampAuthority
    configured = home.config.get("tsa")
    if configured is not None and not isinstance(configured, str):
        raise PolicyError("tsa: in config.yaml is a URL or the name of a TSA of this home", field="tsa")
    if configured and configured.startswith(("http://", "https://")):
        return HttpTimestamper(configured)
    authority = TimestampAuthority(home)
    if configured:
        name = authority.get(configured).name
    else:
        tsas = authority.list()
        if not tsas:
            return None
        if len(tsas) > 1:
            raise PolicyError("this home has several TSAs: name the archive's with tsa: in config.yaml", field="tsa")
        name = tsas[0].name
    return LocalTimestamper(authority.load(name, password(name)))
