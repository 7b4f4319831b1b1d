"""Key files: PKCS#8 (plain and PBES2-encrypted), SPKI, PKCS#12 import.

PBES2 is implemented once here for both schemes, so that SM2 keys (which
`cryptography` cannot load) and RSA/ECDSA keys take the same path:

* ``aes256`` — PBKDF2-HMAC-SHA256 + AES-256-CBC, what OpenSSL writes;
* ``sm4``    — PBKDF2-HMAC-SM3 + SM4-CBC, what GmSSL writes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import algos, core, keys, pem
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from . import oids
from .algorithms import (PrivateKey, PublicKey, SM2PrivateKey, _from_cryptography,
                         public_key_from_spki)
from .errors import KeyFileError, UnknownAlgorithm, WrongPassword
from .fileio import atomic_output, write_file_atomic  # noqa: F401  (re-exported: the public names)
from .rand import SYSTEM_RANDOM, RandomSource


@dataclass(frozen=True)
class PBES2Scheme:
    name: str
    prf: str          # asn1crypto HMAC name
    cipher: str       # asn1crypto encryption algorithm name
    key_length: int


SCHEMES = {
    "aes256": PBES2Scheme("aes256", "sha256", "aes256_cbc", 32),
    "sm4": PBES2Scheme("sm4", oids.SM3_NAME, oids.SM4_CBC_NAME, 16),
}

#: PBKDF2 rounds for files we write; OpenSSL's default is 2048, we pay more.
DEFAULT_ITERATIONS = 100_000
_HASHES = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
           "sha384": hashes.SHA384, "sha512": hashes.SHA512, oids.SM3_NAME: hashes.SM3}
_CIPHERS = {"aes128_cbc": (algorithms.AES, 16), "aes192_cbc": (algorithms.AES, 24),
            "aes256_cbc": (algorithms.AES, 32), oids.SM4_CBC_NAME: (algorithms.SM4, 16)}


def _derive(password: bytes, salt: bytes, iterations: int, prf: str, length: int) -> bytes:
    if prf not in _HASHES:
        raise KeyFileError(f"unsupported PBKDF2 PRF hmac-{prf}", prf=prf)
    return PBKDF2HMAC(_HASHES[prf](), length, salt, iterations).derive(password)


def encrypt_pkcs8(private_key_info: bytes, password: bytes, *, scheme: str = "aes256",
                  iterations: int = DEFAULT_ITERATIONS, rand: RandomSource = SYSTEM_RANDOM) -> bytes:
    """EncryptedPrivateKeyInfo (DER) around a PrivateKeyInfo, PBES2 in `scheme`."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown PBES2 scheme {scheme!r} (aes256 or sm4)")
    if not password:
        raise ValueError("an empty password does not protect a key")
    s = SCHEMES[scheme]
    salt, iv = rand.token_bytes(16), rand.token_bytes(16)
    key = _derive(password, salt, iterations, s.prf, s.key_length)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(private_key_info) + padder.finalize()
    enc = Cipher(_CIPHERS[s.cipher][0](key), modes.CBC(iv)).encryptor()
    body = enc.update(plain) + enc.finalize()
    kdf_params = {"salt": algos.Pbkdf2Salt(name="specified", value=salt), "iteration_count": iterations, "key_length": s.key_length,
                  "prf": algos.HmacAlgorithm({"algorithm": s.prf, "parameters": core.Null()})}
    return keys.EncryptedPrivateKeyInfo({
        "encryption_algorithm": {"algorithm": "pbes2", "parameters": {
            "key_derivation_func": {"algorithm": "pbkdf2", "parameters": kdf_params},
            "encryption_scheme": {"algorithm": s.cipher, "parameters": iv},
        }},
        "encrypted_data": body,
    }).dump()


def decrypt_pkcs8(encrypted: bytes, password: bytes) -> bytes:
    """PrivateKeyInfo (DER) out of a PBES2 EncryptedPrivateKeyInfo."""
    try:
        epki = keys.EncryptedPrivateKeyInfo.load(encrypted, strict=True)
        alg = epki["encryption_algorithm"]
        if alg["algorithm"].native != "pbes2":
            raise KeyFileError(f"unsupported key encryption {alg['algorithm'].native} (PBES2 only)")
        params = alg["parameters"]
        kdf = params["key_derivation_func"]
        if kdf["algorithm"].native != "pbkdf2":
            raise KeyFileError(f"unsupported key derivation {kdf['algorithm'].native}")
        kp = kdf["parameters"]
        scheme = params["encryption_scheme"]
        cipher_name = scheme["algorithm"].native
        if cipher_name not in _CIPHERS:
            raise KeyFileError(f"unsupported key cipher {cipher_name}", cipher=cipher_name)
        cipher_cls, key_len = _CIPHERS[cipher_name]
        iv = scheme["parameters"].native
        salt = kp["salt"].native
        iterations = kp["iteration_count"].native
        prf = kp["prf"]["algorithm"].native
        body = epki["encrypted_data"].native
    except KeyFileError:
        raise
    except Exception as exc:
        raise KeyFileError("malformed encrypted PKCS#8 key") from exc
    if not isinstance(salt, bytes):
        raise KeyFileError("PBKDF2 salt of another kind than an octet string is not supported")
    if iterations > 10_000_000:
        raise KeyFileError("PBKDF2 iteration count is unreasonably large", iterations=iterations)
    key = _derive(password, salt, iterations, prf, key_len)
    if len(body) % 16 or not body:
        raise KeyFileError("encrypted key has a length that is not a whole number of blocks")
    dec = Cipher(cipher_cls(key), modes.CBC(iv)).decryptor()
    plain = dec.update(body) + dec.finalize()
    try:
        unpadder = padding.PKCS7(128).unpadder()
        plain = unpadder.update(plain) + unpadder.finalize()
        keys.PrivateKeyInfo.load(plain, strict=True)["private_key_algorithm"].native
    except Exception:
        raise WrongPassword("wrong password for the key file") from None
    return plain


# --------------------------------------------------------------------------- loading

def _private_key_from_pki(der: bytes) -> PrivateKey:
    try:
        info = keys.PrivateKeyInfo.load(der, strict=True)
        algo = info["private_key_algorithm"]["algorithm"].native
        params = info["private_key_algorithm"]["parameters"]
    except Exception as exc:
        raise KeyFileError("malformed PKCS#8 private key") from exc
    if algo == "ec" and params.name == "named" and params.chosen.native == oids.SM2_CURVE_NAME:
        try:
            ecpk = info["private_key"].parsed
            d = ecpk["private_key"].native
            point = ecpk["public_key"].native
        except Exception as exc:
            raise KeyFileError("malformed SM2 private key") from exc
        if point and len(point) == 65 and point[0] == 4:
            return SM2PrivateKey(d, int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big"))
        return SM2PrivateKey(d)
    if algo not in ("rsa", "ec"):
        raise UnknownAlgorithm(f"unsupported key algorithm {algo}", algorithm=algo)
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"malformed or unsupported {algo} private key") from exc
    return _from_cryptography(key)


def _from_traditional_ec(der: bytes) -> PrivateKey | None:
    """'EC PRIVATE KEY' (SEC 1) naming the SM2 curve: cryptography cannot read it."""
    try:
        ecpk = keys.ECPrivateKey.load(der, strict=True)
        params = ecpk["parameters"]
        if params.native is None or params.chosen.native != oids.SM2_CURVE_NAME:
            return None
        point = ecpk["public_key"].native
        d = ecpk["private_key"].native
    except Exception:
        return None
    if point and len(point) == 65:
        return SM2PrivateKey(d, int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big"))
    return SM2PrivateKey(d)


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """A private key from PEM or DER: PKCS#8 plain or PBES2-encrypted, or traditional RSA/EC."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("key data must be bytes")
    data = bytes(data)
    if pem.detect(data):
        try:
            label, headers, der = pem.unarmor(data)
        except Exception as exc:
            raise KeyFileError("malformed PEM") from exc
        if label == "ENCRYPTED PRIVATE KEY":
            return _load_encrypted(der, password)
        if label == "PRIVATE KEY":
            return _private_key_from_pki(der)
        if label in ("EC PRIVATE KEY", "RSA PRIVATE KEY"):
            if label == "EC PRIVATE KEY" and not headers:
                sm2 = _from_traditional_ec(der)
                if sm2 is not None:
                    return sm2
            try:
                key = serialization.load_pem_private_key(data, password=password or None)
            except TypeError as exc:
                raise WrongPassword("the key file is encrypted: a password is needed") from exc
            except ValueError as exc:
                if headers:
                    raise WrongPassword("wrong password for the key file") from exc
                raise KeyFileError(f"malformed {label}") from exc
            return _from_cryptography(key)
        raise KeyFileError(f"a PEM block of type {label!r} is not a private key", label=label)
    # DER: encrypted PKCS#8 first (it would also half-parse as something else), then plain
    try:
        keys.EncryptedPrivateKeyInfo.load(data, strict=True)["encryption_algorithm"].native
        is_encrypted = True
    except Exception:
        is_encrypted = False
    if is_encrypted:
        return _load_encrypted(data, password)
    try:
        keys.PrivateKeyInfo.load(data, strict=True)["private_key_algorithm"].native
    except Exception:
        traditional = _from_traditional_der(data)  # what `openssl pkey -outform DER` writes for EC
        if traditional is not None:
            return traditional
    return _private_key_from_pki(data)


def _from_traditional_der(der: bytes) -> PrivateKey | None:
    """SEC 1 ECPrivateKey (SM2 included) or PKCS#1 RSAPrivateKey, DER; None if neither."""
    sm2 = _from_traditional_ec(der)
    if sm2 is not None:
        return sm2
    try:
        key = serialization.load_der_private_key(der, password=None)
    except Exception:  # ValueError, TypeError, UnsupportedAlgorithm: not a traditional key
        return None
    return _from_cryptography(key)


def _load_encrypted(der: bytes, password: bytes | None) -> PrivateKey:
    if not password:
        raise WrongPassword("the key file is encrypted: a password is needed")
    return _private_key_from_pki(decrypt_pkcs8(der, password))


def open_key_file(path: str | os.PathLike[str], password: bytes | None, public: PublicKey, *, owner: str,
                  **data: object) -> PrivateKey:
    """The private key stored at `path` for `owner` (e.g. "CA root"), checked against the
    certificate's `public` key; `NotFound`, `WrongPassword` and `PolicyError` name the owner."""
    from .errors import NotFound, PolicyError
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise NotFound(f"the key file of {owner} is missing ({path}: {exc.strerror})", **data) from None
    try:
        key = load_private_key(raw, password)
    except WrongPassword:
        raise WrongPassword(f"wrong password for the key of {owner}", **data) from None
    if key.public_key() != public:
        raise PolicyError(f"the key file of {owner} does not match its certificate", **data)
    return key


def load_public_key(data: bytes) -> PublicKey:
    """A public key from a PEM or DER SubjectPublicKeyInfo."""
    if pem.detect(data):
        try:
            label, _, der = pem.unarmor(data)
        except Exception as exc:
            raise KeyFileError("malformed PEM") from exc
        if label != "PUBLIC KEY":
            raise KeyFileError(f"a PEM block of type {label!r} is not a public key", label=label)
        data = der
    return public_key_from_spki(data)


def load_pkcs12(data: bytes, password: bytes | None) -> tuple[PrivateKey, bytes | None, list[bytes]]:
    """(key, certificate DER or None, other certificates DER) from an RSA/ECDSA PKCS#12 file."""
    try:
        from cryptography.hazmat.primitives.serialization import pkcs12  # (with cryptography.x509: only here)
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except ValueError as exc:
        text = str(exc).lower()
        if "password" in text or "mac" in text or "decrypt" in text:
            raise WrongPassword("wrong password for the PKCS#12 file") from exc
        raise KeyFileError("malformed or unsupported PKCS#12 file") from exc
    if key is None:
        raise KeyFileError("the PKCS#12 file holds no private key")
    der = serialization.Encoding.DER
    return (_from_cryptography(key), cert.public_bytes(der) if cert else None,
            [c.public_bytes(der) for c in extra])


def private_key_to_pem(key: PrivateKey, password: bytes | None, *, scheme: str = "aes256",
                       rand: RandomSource = SYSTEM_RANDOM) -> bytes:
    info = key.to_pkcs8_der()
    if password is None:
        return pem.armor("PRIVATE KEY", info)
    return pem.armor("ENCRYPTED PRIVATE KEY", encrypt_pkcs8(info, password, scheme=scheme, rand=rand))


