"""The status service: OCSP (GET and POST, pre-signed), CRL and CA-certificate download over HTTP.

    from pki.server import ServeOptions, load_served, serve
    served = [load_served(authority, ca, ca_password=pw, responder_password=None) for ca in authority.cas()]
    serve(authority, served, ServeOptions(host="127.0.0.1", port=8080))

`StatusService` (answers without HTTP) and `StatusApp` (the ASGI application)
can be used on their own, e.g. mounted in another ASGI server.
"""
from __future__ import annotations

from ..ca import CaInfo, CertificateAuthority
from ..presign import OcspPolicy, load_signer, responder_record
from .app import StatusApp
from .maintain import CrlPolicy, Maintainer, ServedCa
from .run import ServeOptions, read_engine, serve
from .service import Endpoint, OcspAnswer, StatusService
from .watch import ChangeWatch, Changes

__all__ = ["ChangeWatch", "Changes", "CrlPolicy", "Endpoint", "Maintainer", "OcspAnswer", "OcspPolicy",
           "ServeOptions", "ServedCa", "StatusApp", "StatusService", "load_served", "read_engine", "serve"]


def load_served(authority: CertificateAuthority, ca: CaInfo, *, ca_password: bytes | None,
                responder_password: bytes | None) -> ServedCa:
    """Load the keys a CA is served with.

    OCSP responses are signed by the delegated responder when one is configured and
    `responder_password` is given, else by the CA key.  CRLs are published (regenerated on
    schedule and on changes) only when the CA key's password is given; otherwise the stored
    CRLs are served as they are.  Raises when nothing could sign OCSP responses.
    """
    signer = load_signer(authority, ca, ca_password=ca_password,
                         responder_password=responder_password if responder_record(authority, ca) else None)
    crl_key = None
    if ca_password is not None:
        crl_key = signer.key if not signer.delegated else authority.load_key(ca, ca_password)
    return ServedCa(ca, signer, crl_key)
