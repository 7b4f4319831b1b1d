"""Key types and signatures: one interface for RSA, ECDSA and SM2.

Every caller — the key CLI, the CA, the seal signer — holds a `PrivateKey`
or `PublicKey` and never asks which algorithm is inside.  RSA signs PKCS#1
v1.5 with SHA-256, ECDSA with SHA-256 (P-256) or SHA-384 (P-384), SM2 with
SM3 over Z ‖ M, all signatures DER where the algorithm defines DER.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Final

from asn1crypto import algos, core, keys
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from . import oids
from .errors import InvalidSignature, KeyFileError, UnknownAlgorithm
from .rand import SYSTEM_RANDOM, RandomSource
from .sm2 import DEFAULT_DISTID, compute_z, default_backend, sm3
from .sm2.core import CURVE as SM2_CURVE, PublicHandle, SM2Backend, on_curve

ALGORITHMS: Final = ("rsa2048", "rsa3072", "rsa4096", "ecdsa-p256", "ecdsa-p384", "sm2")

_RSA_BITS = {"rsa2048": 2048, "rsa3072": 3072, "rsa4096": 4096}
_EC_CURVES = {"ecdsa-p256": (ec.SECP256R1, hashes.SHA256, "sha256_ecdsa", "sha256"),
              "ecdsa-p384": (ec.SECP384R1, hashes.SHA384, "sha384_ecdsa", "sha384")}
_EC_BY_CURVE_NAME = {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}


class PublicKey(ABC):
    """A public key of one of the supported algorithms."""

    algorithm: str

    @abstractmethod
    def verify(self, signature: bytes, data: bytes, *, distid: bytes | None = None) -> None:
        """Raise `InvalidSignature` unless `signature` is this key's signature over `data`."""

    @abstractmethod
    def to_der(self) -> bytes:
        """SubjectPublicKeyInfo, DER."""

    @property
    @abstractmethod
    def digest_algorithm(self) -> str:
        """asn1crypto name of the hash this algorithm signs with (sha256, sha384, sm3)."""

    @property
    @abstractmethod
    def signature_algorithm_name(self) -> str:
        """asn1crypto name of the signature algorithm (sha256_rsa, sha256_ecdsa, sm3_sm2, …)."""

    @property
    @abstractmethod
    def description(self) -> str:
        """Key size or curve, for people."""

    def to_pem(self) -> bytes:
        from asn1crypto import pem
        return pem.armor("PUBLIC KEY", self.to_der())

    def spki(self) -> keys.PublicKeyInfo:
        return keys.PublicKeyInfo.load(self.to_der())

    def signature_algorithm(self) -> algos.SignedDigestAlgorithm:
        """The AlgorithmIdentifier to put beside a signature made by the matching private key."""
        if self.signature_algorithm_name == "sha256_rsa":
            # RFC 4055 §5: the parameters of sha256WithRSAEncryption MUST be NULL (asn1crypto leaves
            # them out for None)
            return algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa", "parameters": core.Null()})
        return algos.SignedDigestAlgorithm({"algorithm": self.signature_algorithm_name})

    def fingerprint(self) -> str:
        """SHA-256 of the DER SubjectPublicKeyInfo, hex."""
        return hashlib.sha256(self.to_der()).hexdigest()

    def key_identifier(self) -> bytes:
        """RFC 5280 method 1: SHA-1 of the subjectPublicKey bit string."""
        return self.spki().sha1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and self.to_der() == other.to_der()

    def __hash__(self) -> int:
        return hash(self.to_der())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.algorithm} {self.fingerprint()[:16]}>"


class PrivateKey(ABC):
    """A private key of one of the supported algorithms."""

    algorithm: str

    @abstractmethod
    def sign(self, data: bytes, *, distid: bytes | None = None) -> bytes:
        """Sign `data` (the message, not a digest)."""

    @abstractmethod
    def public_key(self) -> PublicKey: ...

    @abstractmethod
    def to_pkcs8_der(self) -> bytes:
        """Unencrypted PKCS#8 PrivateKeyInfo, DER."""

    def to_pem(self, password: bytes | None = None, *, scheme: str = "aes256",
               rand: RandomSource = SYSTEM_RANDOM) -> bytes:
        """PKCS#8 PEM; with a password, PBES2 in `scheme` ('aes256' as OpenSSL writes, 'sm4' as GmSSL)."""
        from .keyfiles import private_key_to_pem
        return private_key_to_pem(self, password, scheme=scheme, rand=rand)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.algorithm} {self.public_key().fingerprint()[:16]}>"


def _no_distid(algorithm: str, distid: bytes | None) -> None:
    if distid is not None:
        raise ValueError(f"a distinguishing ID applies to SM2 keys only, not {algorithm}")


# --------------------------------------------------------------------------- RSA / ECDSA

class _CryptographyPublicKey(PublicKey):
    def __init__(self, key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, algorithm: str) -> None:
        self._key = key
        self.algorithm = algorithm
        self._der = key.public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo)

    def to_der(self) -> bytes:
        return self._der

    def verify(self, signature: bytes, data: bytes, *, distid: bytes | None = None) -> None:
        _no_distid(self.algorithm, distid)
        try:
            if isinstance(self._key, rsa.RSAPublicKey):
                self._key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            else:
                self._key.verify(signature, data, ec.ECDSA(_EC_CURVES[self.algorithm][1]()))
        except _CryptoInvalidSignature:
            raise InvalidSignature("signature does not verify", algorithm=self.algorithm) from None

    @property
    def digest_algorithm(self) -> str:
        return "sha256" if self.algorithm.startswith("rsa") else _EC_CURVES[self.algorithm][3]

    @property
    def signature_algorithm_name(self) -> str:
        return "sha256_rsa" if self.algorithm.startswith("rsa") else _EC_CURVES[self.algorithm][2]

    @property
    def description(self) -> str:
        if isinstance(self._key, rsa.RSAPublicKey):
            return f"RSA {self._key.key_size} bits"
        return f"ECDSA {self._key.curve.name} ({self._key.key_size} bits)"

    @property
    def cryptography_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        return self._key


class _CryptographyPrivateKey(PrivateKey):
    def __init__(self, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, algorithm: str) -> None:
        self._key = key
        self.algorithm = algorithm
        self._public = _CryptographyPublicKey(key.public_key(), algorithm)

    def sign(self, data: bytes, *, distid: bytes | None = None) -> bytes:
        _no_distid(self.algorithm, distid)
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self._key.sign(data, ec.ECDSA(_EC_CURVES[self.algorithm][1]()))

    def public_key(self) -> PublicKey:
        return self._public

    def to_pkcs8_der(self) -> bytes:
        return self._key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    @property
    def cryptography_key(self) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
        return self._key


def _from_cryptography(key: object) -> _CryptographyPrivateKey:
    if isinstance(key, rsa.RSAPrivateKey):
        name = f"rsa{key.key_size}"
        if name not in _RSA_BITS:
            raise UnknownAlgorithm(f"RSA keys of {key.key_size} bits are not supported "
                                   "(2048, 3072 or 4096)", algorithm=name)
        return _CryptographyPrivateKey(key, name)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        name = _EC_BY_CURVE_NAME.get(key.curve.name)
        if name is None:
            raise UnknownAlgorithm(f"elliptic curve {key.curve.name} is not supported "
                                   "(P-256, P-384 or SM2)", algorithm=key.curve.name)
        return _CryptographyPrivateKey(key, name)
    raise UnknownAlgorithm(f"{type(key).__name__} keys are not supported", algorithm=type(key).__name__)


def _public_from_cryptography(key: object) -> _CryptographyPublicKey:
    if isinstance(key, rsa.RSAPublicKey):
        name = f"rsa{key.key_size}"
        if name not in _RSA_BITS:
            raise UnknownAlgorithm(f"RSA keys of {key.key_size} bits are not supported", algorithm=name)
        return _CryptographyPublicKey(key, name)
    if isinstance(key, ec.EllipticCurvePublicKey):
        name = _EC_BY_CURVE_NAME.get(key.curve.name)
        if name is None:
            raise UnknownAlgorithm(f"elliptic curve {key.curve.name} is not supported",
                                   algorithm=key.curve.name)
        return _CryptographyPublicKey(key, name)
    raise UnknownAlgorithm(f"{type(key).__name__} keys are not supported", algorithm=type(key).__name__)


# --------------------------------------------------------------------------- SM2

def _sm2_spki_asn1(x: int, y: int) -> bytes:
    return keys.PublicKeyInfo({
        "algorithm": {"algorithm": "ec", "parameters": keys.ECDomainParameters(
            name="named", value=oids.SM2_CURVE_NAME)},
        "public_key": b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big"),
    }).dump()


# every SM2 SubjectPublicKeyInfo is this prefix and the 64 octets of the point (fixed lengths):
# encoded by asn1crypto once, then reused (bulk issuance makes thousands of these keys)
_SM2_SPKI_PREFIX = _sm2_spki_asn1(1, 1)[:-64]


def _sm2_spki(x: int, y: int) -> bytes:
    return _SM2_SPKI_PREFIX + x.to_bytes(32, "big") + y.to_bytes(32, "big")


class SM2PublicKey(PublicKey):
    algorithm = "sm2"

    def __init__(self, x: int, y: int, *, backend: SM2Backend | None = None) -> None:
        if not on_curve(x, y):
            raise KeyFileError("SM2 public key is not a point on the curve")
        self.x, self.y = x, y
        self._backend = backend or default_backend()
        self._handle_made: PublicHandle | None = None
        self._der = _sm2_spki(x, y)
        self._z: dict[bytes, bytes] = {}

    @property
    def _handle(self) -> PublicHandle:
        # made on first use: bulk issuance builds keys in one thread and verifies in another
        if self._handle_made is None:
            self._handle_made = self._backend.public_handle(self.x, self.y)
        return self._handle_made

    def z(self, distid: bytes) -> bytes:
        cached = self._z.get(distid)
        if cached is None:
            cached = self._z[distid] = compute_z(distid, self.x, self.y)
        return cached

    def digest(self, data: bytes, distid: bytes | None = None) -> bytes:
        """e = SM3(Z ‖ M)."""
        return sm3(self.z(DEFAULT_DISTID if distid is None else distid) + data)

    def verify(self, signature: bytes, data: bytes, *, distid: bytes | None = None) -> None:
        self.verify_digest(signature, self.digest(data, distid))

    def verify_digest(self, signature: bytes, e: bytes) -> None:
        from .sm2.core import decode_signature
        decode_signature(signature)  # strict DER first: backends differ in leniency
        if not self._handle.verify_digest(signature, e):
            raise InvalidSignature("signature does not verify", algorithm="sm2")

    def to_der(self) -> bytes:
        return self._der

    def with_backend(self, backend: SM2Backend) -> "SM2PublicKey":
        return SM2PublicKey(self.x, self.y, backend=backend)

    digest_algorithm = oids.SM3_NAME  # type: ignore[assignment]
    signature_algorithm_name = oids.SM2_SM3_NAME  # type: ignore[assignment]
    description = "SM2 sm2p256v1 (256 bits)"  # type: ignore[assignment]


class SM2PrivateKey(PrivateKey):
    algorithm = "sm2"

    def __init__(self, d: int, x: int | None = None, y: int | None = None, *,
                 backend: SM2Backend | None = None, rand: RandomSource = SYSTEM_RANDOM) -> None:
        if not 0 < d < SM2_CURVE.n - 1:
            raise KeyFileError("SM2 private key is out of range")
        self._backend = backend or default_backend()
        if x is None or y is None:
            x, y = self._backend.public_point(d)
        self._d = d
        self._public = SM2PublicKey(x, y, backend=self._backend)
        self._handle = self._backend.private_handle(d, x, y)
        self._rand = rand

    @property
    def backend_name(self) -> str:
        return self._backend.name

    def sign(self, data: bytes, *, distid: bytes | None = None) -> bytes:
        return self.sign_digest(self._public.digest(data, distid))

    def sign_digest(self, e: bytes) -> bytes:
        """Sign a precomputed e = SM3(Z ‖ M) (callers that stream M compute it)."""
        return self._handle.sign_digest(e, self._rand)

    def public_key(self) -> SM2PublicKey:
        return self._public

    def with_backend(self, backend: SM2Backend) -> "SM2PrivateKey":
        return SM2PrivateKey(self._d, self._public.x, self._public.y, backend=backend, rand=self._rand)

    def to_pkcs8_der(self) -> bytes:
        point = b"\x04" + self._public.x.to_bytes(32, "big") + self._public.y.to_bytes(32, "big")
        return keys.PrivateKeyInfo({
            "version": 0,
            "private_key_algorithm": {"algorithm": "ec", "parameters": keys.ECDomainParameters(
                name="named", value=oids.SM2_CURVE_NAME)},
            "private_key": keys.ECPrivateKey({"version": "ecPrivkeyVer1", "private_key": self._d,
                                              "public_key": point}),
        }).dump()


# --------------------------------------------------------------------------- generation

def generate_key(algorithm: str, *, rand: RandomSource = SYSTEM_RANDOM,
                 sm2_backend: SM2Backend | None = None) -> PrivateKey:
    """A new key of one of `ALGORITHMS`."""
    if algorithm in _RSA_BITS:
        return _CryptographyPrivateKey(rsa.generate_private_key(65537, _RSA_BITS[algorithm]), algorithm)
    if algorithm in _EC_CURVES:
        return _CryptographyPrivateKey(ec.generate_private_key(_EC_CURVES[algorithm][0]()), algorithm)
    if algorithm == "sm2":
        backend = sm2_backend or default_backend()
        d, x, y = backend.generate(rand)
        return SM2PrivateKey(d, x, y, backend=backend, rand=rand)
    raise UnknownAlgorithm(f"unknown algorithm {algorithm!r} (one of: {', '.join(ALGORITHMS)})",
                           algorithm=algorithm)


def _public_key_from_der(der: bytes) -> PublicKey | None:
    """The common cases without asn1crypto (bulk issuance loads thousands of keys): an SM2 key in
    the one encoding it has, or what cryptography's strict DER reader takes and encodes back to the
    same octets.  None: let the general path parse it and say what is wrong."""
    if len(der) == len(_SM2_SPKI_PREFIX) + 64 and der.startswith(_SM2_SPKI_PREFIX):
        point = der[len(_SM2_SPKI_PREFIX):]
        return SM2PublicKey(int.from_bytes(point[:32], "big"), int.from_bytes(point[32:], "big"))
    try:
        loaded = _public_from_cryptography(serialization.load_der_public_key(der))
    except (ValueError, TypeError, UnsupportedAlgorithm, UnknownAlgorithm):
        return None
    return loaded if loaded.to_der() == der else None


def public_key_from_spki(spki: keys.PublicKeyInfo | bytes) -> PublicKey:
    """A `PublicKey` from a SubjectPublicKeyInfo (asn1crypto object or DER)."""
    if isinstance(spki, bytes):
        quick = _public_key_from_der(spki)
        if quick is not None:
            return quick
        try:
            spki = keys.PublicKeyInfo.load(spki, strict=True)
            spki.native  # force a full parse so junk fails here
        except Exception as exc:
            raise KeyFileError("not a DER SubjectPublicKeyInfo") from exc
    algo = spki["algorithm"]["algorithm"].native
    if algo == "ec":
        params = spki["algorithm"]["parameters"]
        if params.name == "named" and params.chosen.native == oids.SM2_CURVE_NAME:
            point = spki["public_key"].native
            if len(point) != 65 or point[0] != 4:
                raise KeyFileError("SM2 public key must be an uncompressed point")
            return SM2PublicKey(int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big"))
    try:
        key = serialization.load_der_public_key(spki.dump())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"unsupported or malformed public key ({algo})") from exc
    return _public_from_cryptography(key)
