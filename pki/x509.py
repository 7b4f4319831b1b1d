"""Certificates and certification requests: built and parsed with asn1crypto.

One code path serves all six algorithms.  The TBSCertificate is declared
with asn1crypto; the signature comes from the key layer
(`PrivateKey.sign`), which alone knows whether it is RSA, ECDSA or SM2.  The
only algorithm-dependent argument is the SM2 distinguishing ID, a per-CA
setting that is passed through to SM2 keys and ignored for the others.

Names are read in two notations, the OpenSSL one (``/C=CN/O=…/CN=…``, most
significant RDN first) and RFC 4514 (``CN=…,O=…,C=CN``, most significant
RDN last); both give the same `Name`, which `name_to_text` writes back in
RFC 4514 form.

OpenSSL 3.0 and the SM2 distinguishing ID (what the tests establish):

* ``openssl verify -vfyopt distid:…`` applies the ID to the end certificate's
  signature only; every other signature in the chain (intermediates, and the
  trust anchor's self-signature under ``-check_ss_sig``) is checked with the
  empty ID.  A GM/T chain root → sub-CA → leaf therefore fails in one call
  ("error 7 at 1 depth lookup"); it verifies link by link
  (``-vfyopt … -CAfile root sub`` and ``-vfyopt … -partial_chain -CAfile sub leaf``)
  and signature by signature with ``openssl pkeyutl -verify -rawin -digest sm3
  -pkeyopt distid:…`` over the DER TBS.
* ``openssl crl -CAfile`` and ``openssl ocsp`` have no ``-vfyopt``: they check
  SM2 CRLs and OCSP responses with the empty ID.  ``openssl req -verify`` and
  ``openssl x509 -req`` take ``-vfyopt distid:…``.
* ``openssl req -new`` signs SM2 CSRs with the empty ID unless given
  ``-sigopt distid:…``.
A CA whose distid is set to ``b""`` produces chains, CRLs and responses that
OpenSSL 3.0 verifies in one call; the default stays the GM/T ID.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from asn1crypto import algos, core, pem
from asn1crypto import csr as asn1_csr
from asn1crypto import x509 as asn1_x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from . import oids  # noqa: F401  (registers the SM2 OIDs before anything parses)
from .algorithms import PrivateKey, PublicKey, public_key_from_spki
from .errors import CertificateError, InvalidSignature, KeyFileError
from .sm2 import DEFAULT_DISTID

__all__ = [
    "CertificateSpec", "KEY_USAGES", "SAN_KINDS", "build_csr", "build_tbs_certificate",
    "certificate_public_key", "certificate_to_pem", "csr_subject", "csr_subject_alt_names",
    "csr_to_pem", "encode_time", "load_certificate", "load_certificates", "load_csr",
    "name_to_text", "parse_name", "sign_certificate", "verify_certificate_signature", "verify_csr",
    "verify_signed_data",
]

# --------------------------------------------------------------------------- names

_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")


@dataclass(frozen=True)
class _Attribute:
    label: str        # what name_to_text writes
    asn1_name: str    # asn1crypto NameType name
    encoding: str     # "utf8" | "printable" | "ia5"
    max_length: int   # RFC 5280 appendix A upper bounds, in characters


_ATTRIBUTES = (
    _Attribute("C", "country_name", "printable", 2),
    _Attribute("ST", "state_or_province_name", "utf8", 128),
    _Attribute("L", "locality_name", "utf8", 128),
    _Attribute("street", "street_address", "utf8", 128),
    _Attribute("O", "organization_name", "utf8", 64),
    _Attribute("OU", "organizational_unit_name", "utf8", 64),
    _Attribute("CN", "common_name", "utf8", 64),
    _Attribute("serialNumber", "serial_number", "printable", 64),
    _Attribute("emailAddress", "email_address", "ia5", 255),
    _Attribute("UID", "user_id", "utf8", 256),
    _Attribute("DC", "domain_component", "ia5", 63),
    _Attribute("title", "title", "utf8", 64),
    _Attribute("GN", "given_name", "utf8", 32768),
    _Attribute("SN", "surname", "utf8", 32768),
    _Attribute("postalCode", "postal_code", "utf8", 40),
    _Attribute("organizationIdentifier", "organization_identifier", "utf8", 64),
    _Attribute("dnQualifier", "dn_qualifier", "printable", 64),
    _Attribute("pseudonym", "pseudonym", "utf8", 128),
)
_BY_LABEL = {a.label.lower(): a for a in _ATTRIBUTES}
_BY_LABEL.update({"e": _BY_LABEL["emailaddress"], "userid": _BY_LABEL["uid"],
                  "givenname": _BY_LABEL["gn"], "surname": _BY_LABEL["sn"],
                  "stateorprovincename": _BY_LABEL["st"], "localityname": _BY_LABEL["l"],
                  "organizationname": _BY_LABEL["o"], "organizationalunitname": _BY_LABEL["ou"],
                  "commonname": _BY_LABEL["cn"], "countryname": _BY_LABEL["c"],
                  "streetaddress": _BY_LABEL["street"]})
_BY_ASN1 = {a.asn1_name: a for a in _ATTRIBUTES}


def _name_error(message: str, text: str) -> CertificateError:
    return CertificateError(f"invalid name {text!r}: {message}", field="subject")


def _attribute_value(attr: _Attribute, value: str, text: str) -> asn1_x509.NameTypeAndValue:
    _check_attribute_value(attr, value, text)
    if attr.encoding == "printable":
        if not _PRINTABLE.match(value):
            raise _name_error(f"{attr.label} may hold only letters, digits and ' ()+,-./:=?", text)
        typed: core.Asn1Value = asn1_x509.DirectoryString(
            name="printable_string", value=core.PrintableString(value))
    elif attr.encoding == "ia5":
        if not value.isascii():
            raise _name_error(f"{attr.label} must be ASCII", text)
        try:
            typed = (asn1_x509.EmailAddress(value) if attr.asn1_name == "email_address"
                     else asn1_x509.DNSName(value))
        except (ValueError, UnicodeError):  # asn1crypto IDNA-encodes the host part
            raise _name_error(f"{attr.label} {value!r} is not a valid address", text) from None
    else:
        typed = asn1_x509.DirectoryString(name="utf8_string", value=core.UTF8String(value))
    return asn1_x509.NameTypeAndValue({"type": attr.asn1_name, "value": typed})


def _check_attribute_value(attr: _Attribute, value: str, text: str) -> None:
    """What every attribute value must be, whatever its string type."""
    if not value:
        raise _name_error(f"{attr.label} is empty", text)
    if len(value) > attr.max_length:
        raise _name_error(f"{attr.label} is longer than {attr.max_length} characters", text)
    if _CONTROL.search(value):
        raise _name_error(f"{attr.label} contains control characters", text)
    if attr.asn1_name == "country_name" and not re.fullmatch(r"[A-Z]{2}", value):
        raise _name_error("C must be a two-letter upper-case country code such as CN", text)


def _split_rfc4514(text: str) -> list[list[tuple[str, str]]]:
    """RDNs (most significant last, as written) of (type, value) pairs; values unescaped."""
    rdns: list[list[tuple[str, str]]] = []
    rdn: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        eq = i
        while eq < n and text[eq] not in "=,+":
            eq += 1
        if eq >= n or text[eq] != "=":
            raise _name_error("expected TYPE=value", text)
        attr_type = text[i:eq].strip()
        i = eq + 1
        raw = bytearray()
        escaped_mask: list[bool] = []
        while i < n and text[i] not in ",+":
            ch = text[i]
            if ch == "\\":
                if i + 1 >= n:
                    raise _name_error("dangling backslash", text)
                nxt = text[i + 1]
                if _HEX_PAIR.fullmatch(text[i + 1:i + 3]):
                    raw.append(int(text[i + 1:i + 3], 16))
                    escaped_mask.append(True)
                    i += 3
                    continue
                encoded = nxt.encode("utf-8")
                raw += encoded
                escaped_mask.extend([True] * len(encoded))
                i += 2
                continue
            if ch in '";<>':
                raise _name_error(f"character {ch!r} must be escaped", text)
            encoded = ch.encode("utf-8")
            raw += encoded
            escaped_mask.extend([False] * len(encoded))
            i += 1
        # strip unescaped spaces around the value (people write "CN=a, O=b")
        start, end = 0, len(raw)
        while start < end and raw[start] == 0x20 and not escaped_mask[start]:
            start += 1
        while end > start and raw[end - 1] == 0x20 and not escaped_mask[end - 1]:
            end -= 1
        if start < end and raw[start] == ord("#") and not escaped_mask[start]:
            raise _name_error("hex-encoded (#…) values are not supported", text)
        try:
            value = bytes(raw[start:end]).decode("utf-8")
        except UnicodeDecodeError:
            raise _name_error("escaped bytes are not UTF-8", text) from None
        rdn.append((attr_type, value))
        if i >= n:
            rdns.append(rdn)
            return rdns
        if text[i] == ",":
            rdns.append(rdn)
            rdn = []
        i += 1


def _split_openssl(text: str) -> list[list[tuple[str, str]]]:
    """RDNs of '/T=v/T=v' (most significant first); backslash escapes the next character."""
    components: list[str] = []
    current: list[str] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                raise _name_error("dangling backslash", text)
            current.append(text[i + 1])
            i += 2
            continue
        if ch == "/":
            components.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    components.append("".join(current))
    rdns = []
    for component in components:
        attr_type, sep, value = component.partition("=")
        if not sep:
            raise _name_error(f"expected /TYPE=value, got {component!r}", text)
        rdns.append([(attr_type.strip(), value)])
    return rdns


def parse_name(text: str) -> asn1_x509.Name:
    """A distinguished name from OpenSSL (``/C=CN/O=x/CN=y``) or RFC 4514 (``CN=y,O=x,C=CN``) text."""
    if not isinstance(text, str):
        raise TypeError("parse_name takes a str")
    if not text.strip():
        raise _name_error("empty", text)
    # trailing spaces may be escaped ("CN=x\\ "): the value parsers strip what is unescaped
    stripped = text.lstrip()
    if stripped.startswith("/"):
        rdns = _split_openssl(stripped)
    else:
        rdns = list(reversed(_split_rfc4514(stripped)))
    sequence = []
    for rdn in rdns:
        values = []
        for attr_type, value in rdn:
            attr = _BY_LABEL.get(attr_type.lower())
            if attr is None:
                raise _name_error(f"unknown attribute {attr_type!r} (known: "
                                  + ", ".join(a.label for a in _ATTRIBUTES) + ")", text)
            values.append(_attribute_value(attr, value, text))
        sequence.append(asn1_x509.RelativeDistinguishedName(values))
    return asn1_x509.Name.load(asn1_x509.Name(name="", value=asn1_x509.RDNSequence(sequence)).dump())


_RFC4514_SPECIAL = set('"+,;<>\\')


_NEEDS_ESCAPE = re.compile(r'["+,;<>\\\x00-\x1f\x7f]|\A[ #]| \Z')


def _escape_value(value: str) -> str:
    if not _NEEDS_ESCAPE.search(value):
        return value
    out = []
    for index, ch in enumerate(value):
        if ch in _RFC4514_SPECIAL:
            out.append("\\" + ch)
        elif ch < " " or ch == "\x7f":
            out.append("".join(f"\\{b:02X}" for b in ch.encode("utf-8")))
        elif (index == 0 and ch in " #") or (index == len(value) - 1 and ch == " "):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def name_to_text(name: asn1_x509.Name) -> str:
    """RFC 4514 text, most significant RDN last; Chinese and other non-ASCII kept as is."""
    rdns = []
    for rdn in reversed(list(name.chosen)):
        parts = []
        for type_and_value in rdn:
            type_name = type_and_value["type"].native
            attr = _BY_ASN1.get(type_name)
            label = attr.label if attr else type_and_value["type"].dotted
            value = type_and_value["value"]
            native = value.native
            if isinstance(native, str):
                parts.append(f"{label}={_escape_value(native)}")
            else:
                parts.append(f"{label}=#{value.dump().hex()}")
        rdns.append("+".join(parts))
    return ",".join(rdns)


# --------------------------------------------------------------------------- time

_UTC = timezone.utc


def _utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime")
    if value.tzinfo is _UTC:  # the common case, kept cheap for million-entry CRLs
        return value.replace(microsecond=0) if value.microsecond else value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value.astimezone(_UTC).replace(microsecond=0)


def encode_time(value: datetime) -> asn1_x509.Time:
    """RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, UTC."""
    value = _utc(value, "time")
    if 1950 <= value.year < 2050:
        return asn1_x509.Time(name="utc_time", value=value)
    return asn1_x509.Time(name="general_time", value=value)


# --------------------------------------------------------------------------- loading

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)
_PEM_START = re.compile(rb"-----BEGIN ")


def _der_blocks(data: bytes, labels: tuple[str, ...], what: str, field_name: str) -> list[bytes]:
    """The DER inside every PEM block of `data` (text around the blocks is ignored, as OpenSSL
    does), or `data` itself when it is not PEM."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} data must be bytes")
    data = bytes(data)
    if not data.strip():
        raise CertificateError(f"empty {what}", field=field_name)
    if not _PEM_START.search(data):
        return [data]
    result = []
    for match in _PEM_BLOCK.finditer(data):
        label = match.group(1).decode("ascii")
        if label not in labels:
            raise CertificateError(f"expected PEM {labels[0]}, found {label}", field=field_name)
        body = match.group(2)
        if b":" in body:
            raise CertificateError(f"PEM {what} with headers (encrypted?) is not supported",
                                   field=field_name)
        try:
            result.append(base64.b64decode(b"".join(body.split()), validate=True))
        except (binascii.Error, ValueError):
            raise CertificateError(f"malformed base64 in PEM {what}", field=field_name) from None
    if not result or len(result) != len(_PEM_START.findall(data)):
        raise CertificateError(f"malformed PEM {what}", field=field_name)
    return result


def _parse_der(cls: type, der: bytes, what: str, field_name: str):  # type: ignore[no-untyped-def]
    try:
        parsed = cls.load(der, strict=True)
        parsed.native  # force a full parse: junk fails here, not in a caller
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, OverflowError …
        raise CertificateError(f"not a DER {what}", field=field_name) from exc
    return parsed


def load_certificate(data: bytes) -> asn1_x509.Certificate:
    """One certificate, PEM or DER."""
    blocks = _der_blocks(data, ("CERTIFICATE", "X509 CERTIFICATE"), "certificate", "certificate")
    if len(blocks) != 1:
        raise CertificateError(f"expected one certificate, found {len(blocks)}", field="certificate")
    return _parse_der(asn1_x509.Certificate, blocks[0], "certificate", "certificate")


def load_certificates(data: bytes) -> list[asn1_x509.Certificate]:
    """All certificates of a PEM bundle, or the one certificate of a DER file."""
    blocks = _der_blocks(data, ("CERTIFICATE", "X509 CERTIFICATE"), "certificate", "certificate")
    return [_parse_der(asn1_x509.Certificate, der, "certificate", "certificate") for der in blocks]


def certificate_to_pem(cert: asn1_x509.Certificate) -> bytes:
    return pem.armor("CERTIFICATE", cert.dump())


def certificate_public_key(cert: asn1_x509.Certificate) -> PublicKey:
    return public_key_from_spki(cert["tbs_certificate"]["subject_public_key_info"])


# --------------------------------------------------------------------------- signatures

_SIGNATURE_FAMILY = {"rsassa_pkcs1v15": "rsa", "ecdsa": "ecdsa", "sm2": "sm2"}
_CRYPTO_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def _family(public_key: PublicKey) -> str:
    if public_key.algorithm == "sm2":
        return "sm2"
    return "rsa" if public_key.algorithm.startswith("rsa") else "ecdsa"


def _sign(key: PrivateKey, data: bytes, distid: bytes | None) -> bytes:
    """The one place this module asks a key to sign; the distid reaches SM2 keys only."""
    if key.algorithm == "sm2":
        return key.sign(data, distid=DEFAULT_DISTID if distid is None else distid)
    return key.sign(data)


def verify_signed_data(public_key: PublicKey, algorithm: algos.SignedDigestAlgorithm,
                       signature: bytes, data: bytes, *, distid: bytes | None = None) -> None:
    """Raise `InvalidSignature` unless `signature` by `public_key` over `data` verifies.

    The hash is the one `algorithm` names (an OpenSSL-made P-384 CSR is
    ecdsa-with-SHA256, not SHA-384); SHA-1, MD5, PSS and DSA are refused.
    """
    try:
        name = algorithm["algorithm"].native
        family = _SIGNATURE_FAMILY.get(algorithm.signature_algo)
        digest = algorithm.hash_algo
    except (ValueError, KeyError) as exc:
        raise InvalidSignature("unsupported signature algorithm", algorithm=str(algorithm["algorithm"].dotted)) from exc
    if family is None:
        raise InvalidSignature(f"unsupported signature algorithm {name}", algorithm=name)
    if family != _family(public_key):
        raise InvalidSignature(f"signature algorithm {name} does not fit a {public_key.algorithm} key",
                               algorithm=name)
    if family == "sm2":
        if digest != oids.SM3_NAME:
            raise InvalidSignature(f"SM2 signatures must use SM3, not {digest}", algorithm=name)
        public_key.verify(signature, data, distid=DEFAULT_DISTID if distid is None else distid)
        return
    if digest == public_key.digest_algorithm:
        public_key.verify(signature, data)
        return
    hash_cls = _CRYPTO_HASHES.get(digest)
    crypto_key = getattr(public_key, "cryptography_key", None)
    if hash_cls is None or crypto_key is None:
        raise InvalidSignature(f"unsupported signature hash {digest}", algorithm=name)
    try:
        if family == "rsa":
            crypto_key.verify(signature, data, padding.PKCS1v15(), hash_cls())
        else:
            crypto_key.verify(signature, data, ec.ECDSA(hash_cls()))
    except _CryptoInvalidSignature:
        raise InvalidSignature("signature does not verify", algorithm=public_key.algorithm) from None


def _check_algorithm_fits_key(algorithm: algos.SignedDigestAlgorithm, key: PrivateKey, what: str) -> None:
    wanted = key.public_key().signature_algorithm_name
    if algorithm["algorithm"].native != wanted:
        raise ValueError(f"{what} names {algorithm['algorithm'].native} but a {key.algorithm} key "
                         f"signs {wanted}")


# --------------------------------------------------------------------------- certificates

KEY_USAGES = frozenset(asn1_x509.KeyUsage._map.values())
SAN_KINDS = ("dns", "ip", "email", "uri")
_DNS = re.compile(r"(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                  r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\Z")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+\Z")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[!-~]+\Z")
#: 20 octets of positive INTEGER content: the top bit of the first octet must be 0
MAX_SERIAL_BITS = 159


def _spec_error(message: str, field_name: str) -> CertificateError:
    return CertificateError(message, field=field_name)


def _check_san(kind: str, value: str) -> None:
    if kind not in SAN_KINDS:
        raise _spec_error(f"unknown subject alternative name kind {kind!r} ({', '.join(SAN_KINDS)})",
                          "subject_alt_names")
    if not isinstance(value, str) or not value:
        raise _spec_error(f"empty {kind} subject alternative name", "subject_alt_names")
    ok = True
    if kind == "dns":
        ok = len(value) <= 253 and bool(_DNS.match(value))
    elif kind == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            ok = False
    elif kind == "email":
        ok = value.isascii() and bool(_EMAIL.match(value))
    elif kind == "uri":
        ok = bool(_URI.match(value))
    if not ok:
        raise _spec_error(f"invalid {kind} subject alternative name {value!r}", "subject_alt_names")


def _check_uri(value: str, field_name: str) -> None:
    if not isinstance(value, str) or not _URI.match(value):
        raise _spec_error(f"invalid URL {value!r}", field_name)


def _extended_key_usage_oid(name: str) -> str:
    if not isinstance(name, str):
        raise _spec_error(f"extended key usage must be a name or OID, not {name!r}", "extended_key_usage")
    if _OID.match(name):
        return name
    try:
        return asn1_x509.KeyPurposeId(name).dotted
    except ValueError:
        raise _spec_error(f"unknown extended key usage {name!r}", "extended_key_usage") from None


@dataclass(frozen=True)
class CertificateSpec:
    """Everything that goes into a TBSCertificate, validated on construction.

    Times are normalised to UTC whole seconds (X.509 times have no fractions),
    so the spec holds exactly what the certificate will say.
    """

    subject: asn1_x509.Name
    issuer: asn1_x509.Name
    serial: int
    not_before: datetime
    not_after: datetime
    public_key: PublicKey
    issuer_key_identifier: bytes | None
    key_usage: frozenset[str] = frozenset()
    extended_key_usage: tuple[str, ...] = ()
    ca: bool = False
    path_length: int | None = None
    subject_alt_names: tuple[tuple[str, str], ...] = ()
    crl_urls: tuple[str, ...] = ()
    ocsp_urls: tuple[str, ...] = ()
    ca_issuers_urls: tuple[str, ...] = ()
    ocsp_no_check: bool = False
    policy_oids: tuple[str, ...] = ()
    extended_key_usage_critical: bool = False

    def __post_init__(self) -> None:
        for attr in ("subject", "issuer"):
            if not isinstance(getattr(self, attr), asn1_x509.Name):
                raise TypeError(f"{attr} must be an asn1crypto x509.Name")
        if not isinstance(self.public_key, PublicKey):
            raise TypeError("public_key must be a pki PublicKey")
        if not isinstance(self.serial, int) or isinstance(self.serial, bool):
            raise TypeError("serial must be an int")
        if self.serial <= 0 or self.serial.bit_length() > MAX_SERIAL_BITS:
            raise _spec_error("serial number must be positive and at most 20 octets", "serial")
        object.__setattr__(self, "not_before", _utc(self.not_before, "not_before"))
        object.__setattr__(self, "not_after", _utc(self.not_after, "not_after"))
        if self.not_before >= self.not_after:
            raise _spec_error("not_before must be earlier than not_after", "not_after")
        if self.not_before.year < 1950:
            raise _spec_error("validity must not start before 1950", "not_before")
        if self.issuer_key_identifier is not None and (
                not isinstance(self.issuer_key_identifier, bytes) or not self.issuer_key_identifier):
            raise _spec_error("issuer_key_identifier must be non-empty bytes or None",
                              "issuer_key_identifier")
        object.__setattr__(self, "key_usage", frozenset(self.key_usage))
        unknown = self.key_usage - KEY_USAGES
        if unknown:
            raise _spec_error(f"unknown key usage {', '.join(sorted(unknown))} "
                              f"(one of {', '.join(sorted(KEY_USAGES))})", "key_usage")
        object.__setattr__(self, "extended_key_usage", tuple(self.extended_key_usage))
        for eku in self.extended_key_usage:
            _extended_key_usage_oid(eku)
        if len(set(self.extended_key_usage)) != len(self.extended_key_usage):
            raise _spec_error("extended key usage listed twice", "extended_key_usage")
        if self.extended_key_usage_critical and not self.extended_key_usage:
            raise _spec_error("a critical extended key usage needs at least one usage", "extended_key_usage")
        if "key_cert_sign" in self.key_usage and not self.ca:
            raise _spec_error("key_cert_sign needs a CA certificate (RFC 5280 4.2.1.3)", "key_usage")
        if self.path_length is not None:
            if not self.ca:
                raise _spec_error("path_length applies to CA certificates only", "path_length")
            if isinstance(self.path_length, bool) or not isinstance(self.path_length, int) \
                    or self.path_length < 0:
                raise _spec_error("path_length must be a non-negative integer", "path_length")
        object.__setattr__(self, "subject_alt_names", tuple(tuple(san) for san in self.subject_alt_names))
        for san in self.subject_alt_names:
            if len(san) != 2:
                raise _spec_error("subject alternative names are (kind, value) pairs", "subject_alt_names")
            _check_san(*san)
        if len(self.subject) == 0 and not self.subject_alt_names:
            raise _spec_error("a certificate needs a subject or a subject alternative name", "subject")
        for attr in ("crl_urls", "ocsp_urls", "ca_issuers_urls"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
            for url in getattr(self, attr):
                _check_uri(url, attr)
        object.__setattr__(self, "policy_oids", tuple(self.policy_oids))
        for oid in self.policy_oids:
            if not isinstance(oid, str) or not _OID.match(oid):
                raise _spec_error(f"invalid policy OID {oid!r}", "policy_oids")

    @property
    def self_issued(self) -> bool:
        return self.issuer.dump() == self.subject.dump()


def _general_name(kind: str, value: str) -> asn1_x509.GeneralName:
    if kind == "dns":
        return asn1_x509.GeneralName(name="dns_name", value=value)
    if kind == "ip":
        return asn1_x509.GeneralName(name="ip_address", value=str(ipaddress.ip_address(value)))
    if kind == "email":
        return asn1_x509.GeneralName(name="rfc822_name", value=value)
    return asn1_x509.GeneralName(name="uniform_resource_identifier", value=value)


def _uri(value: str) -> asn1_x509.GeneralName:
    return asn1_x509.GeneralName(name="uniform_resource_identifier", value=value)


def _extension(extn_id: str, value: object, critical: bool = False) -> dict[str, object]:
    return {"extn_id": extn_id, "critical": critical, "extn_value": value}


def _san_extension(names: Iterable[tuple[str, str]], critical: bool) -> dict[str, object]:
    return _extension("subject_alt_name", [_general_name(k, v) for k, v in names], critical)


def build_tbs_certificate(spec: CertificateSpec,
                          signature_algorithm: algos.SignedDigestAlgorithm) -> asn1_x509.TbsCertificate:
    """A v3 TBSCertificate; `signature_algorithm` is the issuer key's (PublicKey.signature_algorithm())."""
    if not isinstance(spec, CertificateSpec):
        raise TypeError("spec must be a CertificateSpec")
    ski = spec.public_key.key_identifier()
    basic: dict[str, object] = {"ca": spec.ca}
    if spec.path_length is not None:
        basic["path_len_constraint"] = spec.path_length
    extensions: list[dict[str, object]] = [_extension("basic_constraints", basic, critical=True)]
    if spec.key_usage:
        extensions.append(_extension("key_usage", set(spec.key_usage), critical=True))
    if spec.extended_key_usage:
        extensions.append(_extension("extended_key_usage",
                                     [_extended_key_usage_oid(e) for e in spec.extended_key_usage],
                                     critical=spec.extended_key_usage_critical))
    extensions.append(_extension("key_identifier", ski))
    extensions.append(_extension("authority_key_identifier",
                                 {"key_identifier": spec.issuer_key_identifier or ski}))
    if spec.subject_alt_names:
        # RFC 5280 4.2.1.6: critical when the subject is empty
        extensions.append(_san_extension(spec.subject_alt_names, critical=len(spec.subject) == 0))
    if spec.crl_urls:
        extensions.append(_extension("crl_distribution_points", [
            {"distribution_point": {"full_name": [_uri(url) for url in spec.crl_urls]}}]))
    if spec.ocsp_urls or spec.ca_issuers_urls:
        extensions.append(_extension("authority_information_access", [
            *({"access_method": "ocsp", "access_location": _uri(url)} for url in spec.ocsp_urls),
            *({"access_method": "ca_issuers", "access_location": _uri(url)}
              for url in spec.ca_issuers_urls)]))
    if spec.ocsp_no_check:
        extensions.append(_extension("ocsp_no_check", core.Null()))
    if spec.policy_oids:
        extensions.append(_extension("certificate_policies",
                                     [{"policy_identifier": oid} for oid in spec.policy_oids]))
    tbs = asn1_x509.TbsCertificate({
        "version": "v3",
        "serial_number": spec.serial,
        "signature": algos.SignedDigestAlgorithm.load(signature_algorithm.dump()),
        "issuer": asn1_x509.Name.load(spec.issuer.dump()),
        "validity": {"not_before": encode_time(spec.not_before),
                     "not_after": encode_time(spec.not_after)},
        "subject": asn1_x509.Name.load(spec.subject.dump()),
        "subject_public_key_info": spec.public_key.spki(),
        "extensions": extensions,
    })
    return asn1_x509.TbsCertificate.load(tbs.dump())


def sign_certificate(tbs: asn1_x509.TbsCertificate, key: PrivateKey, *,
                     distid: bytes | None = None) -> asn1_x509.Certificate:
    """Sign `tbs` with the issuer's key; the result is checked with the public key before it is returned."""
    _check_algorithm_fits_key(tbs["signature"], key, "the TBSCertificate")
    tbs_der = tbs.dump()
    signature = _sign(key, tbs_der, distid)
    cert = asn1_x509.Certificate({
        "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
        "signature_algorithm": algos.SignedDigestAlgorithm.load(tbs["signature"].dump()),
        "signature_value": signature,
    })
    cert = asn1_x509.Certificate.load(cert.dump())
    # a faulty signature must never leave the CA
    verify_certificate_signature(cert, key.public_key(), distid=distid)
    return cert


def verify_certificate_signature(cert: asn1_x509.Certificate, issuer_public_key: PublicKey, *,
                                 distid: bytes | None = None) -> None:
    """Raise `InvalidSignature` unless `issuer_public_key` signed `cert` (SM2: with `distid`)."""
    outer = cert["signature_algorithm"]
    if outer.dump() != cert["tbs_certificate"]["signature"].dump():
        raise InvalidSignature("certificate signature algorithm differs from the one in its TBS")
    verify_signed_data(issuer_public_key, outer, cert["signature_value"].native,
                       cert["tbs_certificate"].dump(), distid=distid)


# --------------------------------------------------------------------------- CSRs

def load_csr(data: bytes) -> asn1_csr.CertificationRequest:
    """A PKCS#10 certification request, PEM or DER."""
    blocks = _der_blocks(data, ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"), "CSR", "csr")
    if len(blocks) != 1:
        raise CertificateError(f"expected one CSR, found {len(blocks)}", field="csr")
    csr = _parse_der(asn1_csr.CertificationRequest, blocks[0], "PKCS#10 certification request", "csr")
    if csr["certification_request_info"]["version"].native != "v1":
        raise CertificateError("unsupported CSR version", field="csr")
    return csr


def csr_to_pem(csr: asn1_csr.CertificationRequest) -> bytes:
    return pem.armor("CERTIFICATE REQUEST", csr.dump())


def verify_csr(csr: asn1_csr.CertificationRequest, *, distid: bytes | None = None) -> PublicKey:
    """Proof of possession: the CSR is signed by the key it carries.  Returns that key."""
    info = csr["certification_request_info"]
    try:
        public_key = public_key_from_spki(info["subject_pk_info"])
    except KeyFileError as exc:
        raise CertificateError(f"CSR public key: {exc.message}", field="csr") from exc
    try:
        verify_signed_data(public_key, csr["signature_algorithm"], csr["signature"].native,
                           info.dump(), distid=distid)
    except InvalidSignature as exc:
        raise CertificateError("CSR signature does not verify", field="csr",
                               detail=exc.message) from None
    return public_key


def csr_subject(csr: asn1_csr.CertificationRequest) -> asn1_x509.Name:
    return csr["certification_request_info"]["subject"]


_SAN_FROM_ASN1 = {"dns_name": "dns", "ip_address": "ip", "rfc822_name": "email",
                  "uniform_resource_identifier": "uri"}


def csr_subject_alt_names(csr: asn1_csr.CertificationRequest) -> tuple[tuple[str, str], ...]:
    """The SANs requested in the extensionRequest attribute, in order; () if none."""
    result: list[tuple[str, str]] = []
    for attribute in csr["certification_request_info"]["attributes"]:
        if attribute["type"].native != "extension_request":
            continue
        for extensions in attribute["values"]:
            for extension in extensions:
                if extension["extn_id"].native != "subject_alt_name":
                    continue
                for general_name in extension["extn_value"].parsed:
                    kind = _SAN_FROM_ASN1.get(general_name.name)
                    if kind is None:
                        raise CertificateError(
                            f"unsupported subject alternative name type {general_name.name}",
                            field="subject_alt_names")
                    result.append((kind, general_name.native))
    return tuple(result)


def build_csr(subject: asn1_x509.Name, key: PrivateKey, *, distid: bytes | None = None,
              subject_alt_names: Iterable[tuple[str, str]] = ()) -> asn1_csr.CertificationRequest:
    """A PKCS#10 request signed by `key` (SM2: with `distid`, default the GM/T ID)."""
    sans = tuple(tuple(san) for san in subject_alt_names)
    for san in sans:
        _check_san(*san)
    attributes = []
    if sans:
        attributes.append({"type": "extension_request",
                           "values": [[_san_extension(sans, critical=len(subject) == 0)]]})
    public_key = key.public_key()
    info = asn1_csr.CertificationRequestInfo({
        "version": "v1",
        "subject": asn1_x509.Name.load(subject.dump()),
        "subject_pk_info": public_key.spki(),
        "attributes": attributes,
    })
    info_der = info.dump()
    csr = asn1_csr.CertificationRequest({
        "certification_request_info": asn1_csr.CertificationRequestInfo.load(info_der),
        "signature_algorithm": public_key.signature_algorithm(),
        "signature": _sign(key, info_der, distid),
    })
    return asn1_csr.CertificationRequest.load(csr.dump())
