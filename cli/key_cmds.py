"""`yinxin key …` and `yinxin doctor`: keys, signatures and the environment check.

Thin by design: every cryptographic decision is made in `pki`; this module
reads files and passwords, calls the library and reports.  Outputs are
written with `pki.write_file_atomic` after all checks passed, so a user
error never leaves a file behind.

Decision (the brief left it open): `key generate` and `key import-p12`
encrypt the key by default — a CA operator expects encrypted keys — and
write a plain key only when told `--no-password`.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from asn1crypto import keys as asn1_keys
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509

import pki
from pki.errors import YinxinError

from .common import Context, json_option, pass_ctx, read_password
from .main import cli

#: the names of pki.ALGORITHMS and pki.SCHEMES, written out so that the options can be declared
#: without importing cryptography (tests/test_cli_startup.py checks they agree)
ALGORITHM_NAMES = ("rsa2048", "rsa3072", "rsa4096", "ecdsa-p256", "ecdsa-p384", "sm2")
SCHEME_NAMES = ("aes256", "sm4")

#: key size in bits and curve name, for people and for --json
_KEY_SHAPE = {
    "rsa2048": (2048, None), "rsa3072": (3072, None), "rsa4096": (4096, None),
    "ecdsa-p256": (256, "secp256r1 (P-256)"), "ecdsa-p384": (384, "secp384r1 (P-384)"),
    "sm2": (256, "sm2p256v1"),
}
_SCHEME_TEXT = {"aes256": "PBKDF2-HMAC-SHA256 + AES-256-CBC (OpenSSL)",
                "sm4": "PBKDF2-HMAC-SM3 + SM4-CBC (GmSSL)"}


class InputError(YinxinError):
    """A file cannot be read or written, or options do not fit together (exit 2)."""


# --------------------------------------------------------------------------- small helpers

def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise InputError(f"cannot read {what} {path}: it is a directory", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}", path=path) from None


def _check_new(path: str, force: bool) -> None:
    """Refuse to replace an existing file unless --force; checked before any work."""
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{path} is a directory", path=path)
    if target.exists() and not force:
        raise InputError(f"{path} exists: use --force to overwrite it", path=path)


def _write(path: str, data: bytes, mode: int) -> None:
    try:
        pki.write_file_atomic(path, data, mode=mode)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}", path=path) from None


def _password(file: str | None, *, env: str = "YINXIN_PASSWORD", prompt: str,
              confirm: bool = False) -> bytes:
    """Through cli.common.read_password (file, env, prompt — never argv), errors as one line."""
    try:
        pw = read_password(file, env=env, prompt=prompt, confirm=confirm)
    except click.UsageError as exc:
        raise InputError(exc.message) from None
    assert pw is not None  # required=True
    return pw


def _password_available(file: str | None, env: str) -> bool:
    return file is not None or bool(os.environ.get(env)) or sys.stdin.isatty()


def _new_key_password(password_file: str | None, no_password: bool) -> bytes | None:
    """The password that protects a key we write: required unless --no-password."""
    if no_password:
        if password_file is not None:
            raise InputError("--no-password and --password-file exclude each other")
        return None
    if not _password_available(password_file, "YINXIN_PASSWORD"):
        raise InputError("a password is needed to encrypt the key: give --password-file FILE, "
                         "set YINXIN_PASSWORD, or pass --no-password for an unencrypted key")
    return _password(password_file, prompt="Password for the new key", confirm=True)


def _distid(value: str | None, key_algorithm: str) -> bytes | None:
    if value is None:
        return None
    if key_algorithm != "sm2":
        raise InputError(f"--distid applies to SM2 keys only; this key is {key_algorithm}",
                         algorithm=key_algorithm)
    return value.encode("utf-8")


def _first_pem_block(data: bytes) -> tuple[str, dict[str, str], bytes] | None:
    if not pem.detect(data):
        return None
    try:
        return pem.unarmor(data)
    except Exception:  # asn1crypto raises ValueError and others for broken armour
        raise pki.KeyFileError("malformed PEM") from None


def _encryption(data: bytes) -> dict[str, Any] | None:
    """How a private-key file is encrypted (None: it is not), without the password."""
    block = _first_pem_block(data)
    if block is not None:
        label, headers, der = block
        if "ENCRYPTED" in headers.get("Proc-Type", ""):
            cipher = headers.get("DEK-Info", "").split(",")[0] or "unknown"
            return {"scheme": "legacy-pem", "cipher": cipher, "text": f"legacy PEM encryption ({cipher})"}
        if label != "ENCRYPTED PRIVATE KEY":
            return None
    else:
        der = data
    try:
        epki = asn1_keys.EncryptedPrivateKeyInfo.load(der, strict=True)
        alg = epki["encryption_algorithm"]
        name = alg["algorithm"].native
    except Exception:
        if block is not None:
            raise pki.KeyFileError("malformed encrypted PKCS#8 key") from None
        return None  # a DER file that is not an EncryptedPrivateKeyInfo
    if name != "pbes2":
        return {"scheme": name, "text": f"{name} (not PBES2: yinxin cannot read it)"}
    try:
        kdf = alg["parameters"]["key_derivation_func"]["parameters"]
        prf = kdf["prf"]["algorithm"].native
        cipher = alg["parameters"]["encryption_scheme"]["algorithm"].native
        iterations = kdf["iteration_count"].native
    except Exception:
        raise pki.KeyFileError("malformed encrypted PKCS#8 key") from None
    scheme = next((s.name for s in pki.SCHEMES.values() if (s.prf, s.cipher) == (prf, cipher)), "pbes2")
    text = _SCHEME_TEXT.get(scheme, f"PBES2 PBKDF2-HMAC-{prf} + {cipher}")
    return {"scheme": scheme, "prf": f"hmac-{prf}", "cipher": cipher, "iterations": iterations,
            "text": f"{scheme}: {text}, {iterations} iterations"}


def _load_private(path: str, password_file: str | None) -> pki.PrivateKey:
    data = _read(path, "key file")
    password = None
    if password_file is not None or _encryption(data) is not None:
        password = _password(password_file, prompt=f"Password for {path}")
    return pki.load_private_key(data, password)


def _kind(data: bytes) -> str:
    """'certificate', 'public key' or 'private key' (PEM label, else trial DER parses)."""
    block = _first_pem_block(data)
    if block is not None:
        label = block[0]
        if label in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"):
            return "certificate"
        if label == "PUBLIC KEY":
            return "public key"
        if label.endswith("PRIVATE KEY"):
            return "private key"
        raise pki.KeyFileError(f"a PEM block of type {label!r} is neither a key nor a certificate",
                               label=label)
    for kind, spec in (("certificate", asn1_x509.Certificate), ("public key", asn1_keys.PublicKeyInfo),
                       ("private key", asn1_keys.EncryptedPrivateKeyInfo),
                       ("private key", asn1_keys.PrivateKeyInfo),
                       ("private key", asn1_keys.ECPrivateKey), ("private key", asn1_keys.RSAPrivateKey)):
        try:
            spec.load(data, strict=True).native  # a full structural parse
            return kind
        except Exception:  # asn1crypto raises several types for other structures
            pass
    raise pki.KeyFileError("not a key or certificate (PEM, or DER PKCS#8, SPKI or X.509 expected)")


def _parse_certificate(data: bytes) -> asn1_x509.Certificate:
    """The first certificate of a PEM bundle, or the DER certificate."""
    from pki import x509 as pki_x509
    return pki_x509.load_certificates(data)[0]


def _public_from_certificate(cert: asn1_x509.Certificate) -> pki.PublicKey:
    from pki import x509 as pki_x509
    return pki_x509.certificate_public_key(cert)


def _load_verifying_key(path: str, password_file: str | None) -> pki.PublicKey:
    data = _read(path, "key file")
    kind = _kind(data)
    if kind == "certificate":
        return _public_from_certificate(_parse_certificate(data))
    if kind == "public key":
        return pki.load_public_key(data)
    return _load_private(path, password_file).public_key()


def _key_facts(public: pki.PublicKey) -> dict[str, Any]:
    bits, curve = _KEY_SHAPE[public.algorithm]
    return {"algorithm": public.algorithm, "description": public.description, "key_size": bits,
            "curve": curve, "fingerprint": f"sha256:{public.fingerprint()}"}


# --------------------------------------------------------------------------- key group

@cli.group("key")
@json_option
def key_group() -> None:
    """Keys and signatures: RSA, ECDSA and SM2."""


@key_group.command("generate")
@click.option("--algorithm", "-a", "algorithm", required=True, metavar="ALG",
              help=f"One of: {', '.join(ALGORITHM_NAMES)}.")
@click.option("--out", "-o", required=True, metavar="FILE", help="Private key file to write (PEM, mode 0600).")
@click.option("--password-file", metavar="FILE", help="First line is the key password "
              "(else YINXIN_PASSWORD, else a prompt).")
@click.option("--no-password", is_flag=True, help="Write the key unencrypted (default: encrypted).")
@click.option("--scheme", type=click.Choice(sorted(SCHEME_NAMES)), default="aes256", show_default=True,
              help="Key encryption: aes256 (OpenSSL reads it) or sm4 (as GmSSL writes).")
@click.option("--pub-out", metavar="FILE", help="Also write the public key (PEM SubjectPublicKeyInfo).")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@json_option
@pass_ctx
def key_generate(ctx: Context, algorithm: str, out: str, password_file: str | None, no_password: bool,
                 scheme: str, pub_out: str | None, force: bool) -> None:
    """Generate a key pair and write the private key, encrypted unless --no-password."""
    if algorithm not in pki.ALGORITHMS:
        raise pki.UnknownAlgorithm(f"unknown algorithm {algorithm!r} (one of: {', '.join(pki.ALGORITHMS)})",
                                   algorithm=algorithm)
    _check_new(out, force)
    if pub_out is not None:
        _check_new(pub_out, force)
    password = _new_key_password(password_file, no_password)
    key = pki.generate_key(algorithm)
    _write(out, key.to_pem(password, scheme=scheme), 0o600)
    if pub_out is not None:
        _write(pub_out, key.public_key().to_pem(), 0o644)
    facts = {"file": out, **_key_facts(key.public_key()), "encrypted": password is not None,
             "scheme": scheme if password is not None else None, "public_key_file": pub_out}
    protection = f"encrypted, {scheme}: {_SCHEME_TEXT[scheme]}" if password else "NOT encrypted"
    lines = [f"wrote {out} ({protection})", f"algorithm: {algorithm} ({facts['description']})",
             f"fingerprint: {facts['fingerprint']}"]
    if pub_out:
        lines.append(f"public key: {pub_out}")
    ctx.emit(facts, "\n".join(lines))


@key_group.command("inspect")
@click.argument("file", metavar="FILE")
@click.option("--password-file", metavar="FILE", help="Password of an encrypted private key.")
@json_option
@pass_ctx
def key_inspect(ctx: Context, file: str, password_file: str | None) -> None:
    """Describe a private key, public key or certificate (PEM or DER).

    For an encrypted private key without a password available (no file,
    no YINXIN_PASSWORD, no terminal) only the encryption is reported.
    """
    data = _read(file, "file")
    kind = _kind(data)
    result: dict[str, Any] = {"file": file, "kind": kind,
                              "format": "PEM" if pem.detect(data) else "DER"}
    if kind == "certificate":
        from pki import x509 as pki_x509
        cert = _parse_certificate(data)
        result.update(_key_facts(_public_from_certificate(cert)))
        result.update({
            "subject": pki_x509.name_to_text(cert.subject), "issuer": pki_x509.name_to_text(cert.issuer),
            "serial": f"{cert.serial_number:x}",
            "not_before": cert["tbs_certificate"]["validity"]["not_before"].native.isoformat(),
            "not_after": cert["tbs_certificate"]["validity"]["not_after"].native.isoformat(),
            "signature_algorithm": cert["signature_algorithm"]["algorithm"].native,
        })
    elif kind == "public key":
        result.update(_key_facts(pki.load_public_key(data)))
    else:
        enc = _encryption(data)
        result["encrypted"] = enc is not None
        result["encryption"] = {k: v for k, v in enc.items() if k != "text"} if enc else None
        if enc is not None and not _password_available(password_file, "YINXIN_PASSWORD"):
            result["algorithm"] = None
            result["note"] = "encrypted: give --password-file or YINXIN_PASSWORD to see the key"
        else:
            password = _password(password_file, prompt=f"Password for {file}") if enc else None
            result.update(_key_facts(pki.load_private_key(data, password).public_key()))
    ctx.emit(result, _inspect_text(result))


def _inspect_text(r: dict[str, Any]) -> str:
    lines = [f"{r['file']}: {r['kind']} ({r['format']})"]
    if r.get("algorithm"):
        lines.append(f"algorithm: {r['algorithm']} ({r['description']})")
        lines.append(f"key size: {r['key_size']} bits" + (f", curve {r['curve']}" if r["curve"] else ""))
        lines.append(f"fingerprint: {r['fingerprint']}")
    if r["kind"] == "private key":
        enc = r["encryption"]
        lines.append("encrypted: " + ("no" if enc is None else
                                      f"yes, {enc['scheme']}" + (f" (hmac {enc['prf'][5:]}, {enc['cipher']}, "
                                                                 f"{enc['iterations']} iterations)"
                                                                 if "prf" in enc else "")))
        if r.get("note"):
            lines.append(r["note"])
    for field in ("subject", "issuer", "serial", "not_before", "not_after", "signature_algorithm"):
        if field in r:
            lines.append(f"{field.replace('_', ' ')}: {r[field]}")
    return "\n".join(lines)


@key_group.command("public")
@click.argument("file", metavar="KEY")
@click.option("--out", "-o", required=True, metavar="FILE", help="Public key file to write (PEM).")
@click.option("--password-file", metavar="FILE", help="Password of an encrypted private key.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@json_option
@pass_ctx
def key_public(ctx: Context, file: str, out: str, password_file: str | None, force: bool) -> None:
    """Write the public key (PEM SubjectPublicKeyInfo) of a key or certificate."""
    _check_new(out, force)
    public = _load_verifying_key(file, password_file)
    _write(out, public.to_pem(), 0o644)
    ctx.emit({"file": out, **_key_facts(public)}, f"wrote {out} ({public.algorithm}, "
                                                  f"sha256:{public.fingerprint()})")


@key_group.command("sign")
@click.option("--key", "-k", "key_file", required=True, metavar="FILE", help="Private key (PEM or DER).")
@click.option("--password-file", metavar="FILE", help="Password of an encrypted key.")
@click.option("--distid", metavar="ID", default=None,
              help="SM2 distinguishing ID (default 1234567812345678; '' for the empty ID).")
@click.option("--in", "in_file", required=True, metavar="DATA", help="Data to sign.")
@click.option("--out", "-o", required=True, metavar="SIG", help="Signature file to write (raw, DER for EC/SM2).")
@click.option("--force", is_flag=True, help="Overwrite an existing signature file.")
@json_option
@pass_ctx
def key_sign(ctx: Context, key_file: str, password_file: str | None, distid: str | None, in_file: str,
             out: str, force: bool) -> None:
    """Sign DATA: RSA PKCS#1 v1.5/SHA-256, ECDSA/SHA-256|384, SM2/SM3 over Z‖M."""
    _check_new(out, force)
    data = _read(in_file, "input")
    key = _load_private(key_file, password_file)
    distid_bytes = _distid(distid, key.algorithm)
    signature = key.sign(data, distid=distid_bytes)
    _write(out, signature, 0o644)
    result = {"file": out, "algorithm": key.algorithm, "signature_bytes": len(signature),
              "distid": _distid_shown(key.algorithm, distid_bytes),
              "fingerprint": f"sha256:{key.public_key().fingerprint()}"}
    extra = f", distid {result['distid']!r}" if key.algorithm == "sm2" else ""
    ctx.emit(result, f"wrote {out} ({key.algorithm}, {len(signature)} bytes{extra})")


def _distid_shown(algorithm: str, distid: bytes | None) -> str | None:
    if algorithm != "sm2":
        return None
    return (pki.DEFAULT_DISTID if distid is None else distid).decode("utf-8", "backslashreplace")


@key_group.command("verify")
@click.option("--key", "-k", "key_file", metavar="FILE",
              help="Public or private key (PEM or DER); a certificate is accepted too.")
@click.option("--cert", "cert_file", metavar="CERT", help="Certificate whose key verifies (not validated).")
@click.option("--password-file", metavar="FILE", help="Password, if --key is an encrypted private key.")
@click.option("--distid", metavar="ID", default=None,
              help="SM2 distinguishing ID (default 1234567812345678; '' for the empty ID).")
@click.option("--in", "in_file", required=True, metavar="DATA", help="Signed data.")
@click.option("--sig", "sig_file", required=True, metavar="SIG", help="Signature file.")
@json_option
@pass_ctx
def key_verify(ctx: Context, key_file: str | None, cert_file: str | None, password_file: str | None,
               distid: str | None, in_file: str, sig_file: str) -> None:
    """Verify a signature: exit 0 valid, 1 invalid, 2 for errors in the input."""
    if (key_file is None) == (cert_file is None):
        raise InputError("give exactly one of --key and --cert")
    if cert_file is not None:
        public = _public_from_certificate(_parse_certificate(_read(cert_file, "certificate")))
    else:
        assert key_file is not None
        public = _load_verifying_key(key_file, password_file)
    distid_bytes = _distid(distid, public.algorithm)
    data = _read(in_file, "input")
    signature = _read(sig_file, "signature")
    public.verify(signature, data, distid=distid_bytes)  # InvalidSignature: exit 1
    result = {"valid": True, "algorithm": public.algorithm,
              "distid": _distid_shown(public.algorithm, distid_bytes),
              "fingerprint": f"sha256:{public.fingerprint()}"}
    extra = f", distid {result['distid']!r}" if public.algorithm == "sm2" else ""
    ctx.emit(result, f"signature valid ({public.algorithm}{extra})")


@key_group.command("import-p12")
@click.argument("file", metavar="FILE")
@click.option("--out", "-o", required=True, metavar="KEY.pem", help="Private key file to write.")
@click.option("--cert-out", metavar="CERT.pem", help="Write the certificate (then any chain) here.")
@click.option("--p12-password-file", metavar="FILE",
              help="Password of the PKCS#12 file (else YINXIN_P12_PASSWORD, else a prompt).")
@click.option("--password-file", metavar="FILE", help="Password for the written key "
              "(else YINXIN_PASSWORD, else a prompt).")
@click.option("--no-password", is_flag=True, help="Write the key unencrypted (default: encrypted).")
@click.option("--scheme", type=click.Choice(sorted(SCHEME_NAMES)), default="aes256", show_default=True,
              help="Encryption of the written key.")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@json_option
@pass_ctx
def key_import_p12(ctx: Context, file: str, out: str, cert_out: str | None, p12_password_file: str | None,
                   password_file: str | None, no_password: bool, scheme: str, force: bool) -> None:
    """Import an RSA or ECDSA key (and certificate) from a PKCS#12 file."""
    _check_new(out, force)
    if cert_out is not None:
        _check_new(cert_out, force)
    data = _read(file, "PKCS#12 file")
    p12_password = _password(p12_password_file, env="YINXIN_P12_PASSWORD",
                             prompt=f"Password of {file}")
    key, cert, chain = pki.load_pkcs12(data, p12_password)
    certs = ([cert] if cert else []) + chain
    if cert_out is not None and not certs:
        raise InputError(f"{file} holds no certificate for --cert-out")
    new_password = _new_key_password(password_file, no_password)
    _write(out, key.to_pem(new_password, scheme=scheme), 0o600)
    if cert_out is not None:
        _write(cert_out, b"".join(pem.armor("CERTIFICATE", c) for c in certs), 0o644)
    result = {"file": out, **_key_facts(key.public_key()), "encrypted": new_password is not None,
              "scheme": scheme if new_password is not None else None,
              "certificates": len(certs), "cert_file": cert_out}
    ctx.emit(result, f"wrote {out} ({key.algorithm}, "
                     f"{'encrypted, ' + scheme if new_password else 'NOT encrypted'})"
                     + (f"\nwrote {cert_out} ({len(certs)} certificate(s))" if cert_out else ""))
