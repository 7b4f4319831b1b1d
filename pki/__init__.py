"""yinxin's CA core: keys and algorithms, certificates, RA, CA, store, status, audit.

Public API — everything else in the package is internal.
"""
from . import oids  # registers the SM2/SM3/SM4 OIDs with asn1crypto before anything parses
from .clock import SYSTEM_CLOCK, Clock, FixedClock, SystemClock
from .errors import (AuditError, CertificateError, Conflict, InvalidSignature, KeyFileError,
                     NotFound, PkiError, PolicyError, StateError, StoreError, UnknownAlgorithm,
                     WrongPassword, YinxinError)
from .rand import SYSTEM_RANDOM, RandomSource, SystemRandom
from .lazy import lazy_exports
from .version import __version__

__all__ = [
    "SYSTEM_CLOCK", "Clock", "FixedClock", "SystemClock",
    "AuditError", "CertificateError", "Conflict", "InvalidSignature", "KeyFileError", "NotFound",
    "PkiError", "PolicyError", "StateError", "StoreError", "UnknownAlgorithm", "WrongPassword",
    "YinxinError", "SYSTEM_RANDOM", "RandomSource", "SystemRandom", "oids", "__version__",
]

# Keys, the CA, store and status API: imported on first use (PEP 562), so that `import pki` (and the
# CLI's start) stays light: no cryptography, no SQLAlchemy until something needs them.
_LAZY = {
    "ALGORITHMS": "algorithms", "PrivateKey": "algorithms", "PublicKey": "algorithms",
    "SM2PrivateKey": "algorithms", "SM2PublicKey": "algorithms", "generate_key": "algorithms",
    "public_key_from_spki": "algorithms",
    "SCHEMES": "keyfiles", "decrypt_pkcs8": "keyfiles", "encrypt_pkcs8": "keyfiles", "load_pkcs12": "keyfiles",
    "load_private_key": "keyfiles", "load_public_key": "keyfiles", "write_file_atomic": "keyfiles",
    "DEFAULT_DISTID": "sm2", "available_backends": "sm2", "default_backend": "sm2", "sm3": "sm2",
    "Home": "home", "CertificateAuthority": "ca", "CaInfo": "ca", "CertificateRecord": "ca", "Issued": "ca",
    "REVOCATION_REASONS": "ca", "purge": "ca", "RegistrationAuthority": "ra", "Application": "ra",
    "Profile": "profiles", "load_profiles": "profiles", "Store": "store",
    "generate_crl": "status", "latest_crl": "status", "respond_ocsp": "status",
    "parse_name": "x509", "name_to_text": "x509", "load_certificate": "x509", "load_certificates": "x509",
    "certificate_to_pem": "x509", "certificate_public_key": "x509", "load_csr": "x509", "build_csr": "x509",
    "verify_csr": "x509", "CertificateSpec": "x509", "build_tbs_certificate": "x509", "sign_certificate": "x509",
    "load_crl": "crl", "RevokedEntry": "crl", "parse_ocsp_request": "ocsp", "build_ocsp_response": "ocsp",
    "MalformedOcspRequest": "ocsp",
}
__all__ += sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
