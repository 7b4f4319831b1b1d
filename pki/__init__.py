"""yinxin's CA core: keys and algorithms, certificates, RA, CA, store, status, audit.

Public API — everything else in the package is internal.
"""
from . import oids  # registers the SM2/SM3/SM4 OIDs with asn1crypto before anything parses
from .algorithms import (ALGORITHMS, PrivateKey, PublicKey, SM2PrivateKey, SM2PublicKey,
                         generate_key, public_key_from_spki)
from .clock import SYSTEM_CLOCK, Clock, FixedClock, SystemClock
from .errors import (AuditError, CertificateError, Conflict, InvalidSignature, KeyFileError,
                     NotFound, PkiError, PolicyError, StateError, StoreError, UnknownAlgorithm,
                     WrongPassword, YinxinError)
from .keyfiles import (SCHEMES, decrypt_pkcs8, encrypt_pkcs8, load_pkcs12, load_private_key,
                       load_public_key, write_file_atomic)
from .rand import SYSTEM_RANDOM, RandomSource, SystemRandom
from .sm2 import DEFAULT_DISTID, available_backends, default_backend, sm3

__all__ = [
    "ALGORITHMS", "PrivateKey", "PublicKey", "SM2PrivateKey", "SM2PublicKey", "generate_key",
    "public_key_from_spki", "SYSTEM_CLOCK", "Clock", "FixedClock", "SystemClock",
    "AuditError", "CertificateError", "Conflict", "InvalidSignature", "KeyFileError", "NotFound",
    "PkiError", "PolicyError", "StateError", "StoreError", "UnknownAlgorithm", "WrongPassword",
    "YinxinError", "SCHEMES", "decrypt_pkcs8", "encrypt_pkcs8", "load_pkcs12", "load_private_key",
    "load_public_key", "write_file_atomic", "SYSTEM_RANDOM", "RandomSource", "SystemRandom",
    "DEFAULT_DISTID", "available_backends", "default_backend", "sm3", "oids",
]
