"""Personal signing keys: made at a key request, certified through the RA, bound to the account.

The private key is stored only as an encrypted PKCS#8 (PBES2: SM4-CBC with PBKDF2-HMAC-SM3 for SM2,
AES-256-CBC with PBKDF2-HMAC-SHA256 otherwise) under the person's PIN.  The certificate comes from the
`person` profile through the normal RA flow: `request_key` files the application (its applicant is
the person); another RA officer approves it; a CA operator's `CertificateAuthority.issue` binds the
certificate to the account (`bind_issued`, in issuance's own transaction).
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import audit
from ..errors import PolicyError
from .actor import Actor
from .errors import AccountDisabled, AccountNotFound
from .store import account_keys, accounts

if TYPE_CHECKING:
    from .accounts import Accounts

PERSON_PROFILE = "person"


def person_subject(name: str, organisation: str | None) -> str:
    """The subject of a person certificate: the organisation and the person's name (RFC 4514 escaping
    is left to the name parser: '/' and '=' are refused in names)."""
    for value in (name, organisation or ""):
        if any(c in value for c in "/=\\"):
            raise PolicyError(f"{value!r}: a name for a certificate subject may not contain '/', '=' or '\\'",
                              field="name")
    return f"/C=CN{f'/O={organisation}' if organisation else ''}/CN={name}"


def request_key(accounts_: "Accounts", account_id: str, *, ca: str | None, pin: bytes, actor: Actor,
                id_number: str | None = None, algorithm: str | None = None) -> Any:
    from ..algorithms import generate_key
    from ..ca import CertificateAuthority
    from ..x509 import build_csr, parse_name
    from .accounts import _check_id_number
    home = accounts_.home
    policy = accounts_.policy
    if actor.account_id != account_id:
        accounts_.require(actor, any_of=("ra_officer",))
    else:
        accounts_.require(actor)
    with home.store.read() as conn:
        row = conn.execute(sa.select(accounts).where(accounts.c.id == account_id)).mappings().first()
    if row is None:
        raise AccountNotFound(f"no account {account_id!r}", account=account_id)
    if row["disabled"]:
        raise AccountDisabled(f"account {account_id} is disabled", account=account_id)
    try:
        pin_text = pin.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError("a PIN is UTF-8 text", field="pin") from None
    if len(pin_text) < policy.pin_min_length:
        raise PolicyError(f"a PIN has at least {policy.pin_min_length} characters", field="pin")
    given = _check_id_number(id_number)
    if given and row["id_number"] and given != row["id_number"]:
        raise PolicyError(f"account {account_id} has identity number {row['id_number']}, not {given}",
                          field="id_number", account=account_id)
    number = given or row["id_number"]
    if not number:
        raise PolicyError(f"a person certificate needs {account_id}'s identity number (--id-number): one person, "
                          "one certificate", field="id_number", account=account_id)
    authority = CertificateAuthority(home)
    ca_info = authority.get(ca)
    subject = person_subject(row["name"], row["organisation"])
    parse_name(subject)
    key = generate_key(algorithm or policy.key_algorithm, rand=home.rand)
    csr = build_csr(parse_name(subject), key, distid=ca_info.distid)
    scheme = "sm4" if key.algorithm == "sm2" else "aes256"
    encrypted = key.to_pem(pin, scheme=scheme, rand=home.rand)
    # the RA checks everything (profile, 一人一证, the CA) before it records the application
    app = authority.ra.apply(ca=ca_info.name, profile=PERSON_PROFILE, subject=subject, applicant=account_id,
                             id_number=number, csr=csr.dump(), actor=actor)
    now = home.clock.now()
    with home.store.transaction() as conn:
        if given and not row["id_number"]:
            conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(id_number=given, updated_at=now))
        conn.execute(account_keys.insert().values(
            account_id=account_id, algorithm=key.algorithm, public_key_der=key.public_key().to_der(),
            public_key_fp=key.public_key().fingerprint(), encrypted_key=encrypted, application_id=app.id,
            state="pending", created_at=now))
        audit.append(conn, at=now, actor=actor.account_id, action="account.key_request",
                     target=f"account:{account_id}", details={"application": app.id, "ca": ca_info.name,
                                                              "algorithm": key.algorithm},
                     result_digest=key.public_key().fingerprint())
    return app


def bind_issued(conn: Any, *, public_key_fp: str, ca_name: str, serial: str, actor_id: str, at: datetime) -> str | None:
    """Inside issuance's transaction: the certificate of a pending personal key becomes the account's
    active key (the previous one retires).  Returns the account id, or None when the key is no
    account's (a person certificate applied for outside yinxin's accounts)."""
    row = conn.execute(sa.select(account_keys.c.id, account_keys.c.account_id).where(
        account_keys.c.public_key_fp == public_key_fp, account_keys.c.state == "pending")).first()
    if row is None:
        return None
    conn.execute(sa.update(account_keys).where(account_keys.c.account_id == row.account_id,
                                               account_keys.c.state == "active").values(state="retired"))
    conn.execute(sa.update(account_keys).where(account_keys.c.id == row.id).values(
        state="active", ca_name=ca_name, cert_serial=serial, activated_at=at))
    audit.append(conn, at=at, actor=actor_id, action="account.key_bound", target=f"account:{row.account_id}",
                 details={"ca": ca_name, "serial": serial.upper(), "key": row.id})
    return row.account_id

