"""The hand-written CRL encoder is byte-identical to asn1crypto's encoding of the same CRL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from asn1crypto import core
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from hypothesis import given, settings, strategies as st

from pki.crl import REASONS, RevokedEntry, _der_length, crl_entries, encode_tbs_crl_der
from pki.x509 import parse_name
from x509_support import key

UTC = timezone.utc


def _time(value: datetime) -> asn1_x509.Time:
    # RFC 5280 4.1.2.5, written out independently of pki.x509.encode_time
    name = "utc_time" if 1950 <= value.year < 2050 else "general_time"
    return asn1_x509.Time(name=name, value=value)


def reference_tbs(*, issuer, this_update, next_update, crl_number, entries, aki, algorithm,
                  delta_base=None) -> bytes:
    """The same TBSCertList declared entry by entry with asn1crypto."""
    revoked = []
    for serial, at, reason in entries:
        item = {"user_certificate": serial, "revocation_date": _time(at)}
        if reason not in (None, "unspecified"):  # RFC 5280 5.3.1: omit 'unspecified'
            item["crl_entry_extensions"] = [{"extn_id": "crl_reason", "critical": False, "extn_value": reason}]
        revoked.append(item)
    extensions = [
        {"extn_id": "authority_key_identifier", "critical": False, "extn_value": {"key_identifier": aki}},
        {"extn_id": "crl_number", "critical": False, "extn_value": crl_number},
    ]
    if delta_base is not None:
        extensions.append({"extn_id": "delta_crl_indicator", "critical": True, "extn_value": delta_base})
    fields = {"version": "v2", "signature": algorithm, "issuer": issuer,
              "this_update": _time(this_update), "next_update": _time(next_update),
              "crl_extensions": extensions}
    if revoked:
        fields["revoked_certificates"] = revoked
    return asn1_crl.TbsCertList(fields).dump()


_TIMES = st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2200, 12, 31),
                      timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0))
_ENTRY = st.tuples(st.integers(min_value=1, max_value=(1 << 159) - 1), _TIMES,
                   st.sampled_from([None, *(r for r in REASONS if r != "remove_from_crl")]))
_ISSUERS = st.sampled_from([parse_name("/C=CN/O=北京市测试局/CN=根"), parse_name("CN=x"),
                            parse_name("/C=CN/O=" + "长" * 64 + "/OU=" + "x" * 64 + "/CN=" + "y" * 64)])


@settings(max_examples=200, deadline=None)
@given(entries=st.lists(_ENTRY, max_size=40, unique_by=lambda e: e[0]), issuer=_ISSUERS,
       this_update=_TIMES, crl_number=st.integers(min_value=0, max_value=(1 << 159) - 1),
       delta=st.booleans())
def test_encoder_matches_asn1crypto(entries, issuer, this_update, crl_number, delta):
    if this_update.year >= 2200:
        this_update = this_update.replace(year=2199)
    next_update = this_update + timedelta(days=7)
    delta_base = crl_number - 1 if delta and crl_number > 0 else None
    if delta_base is not None and entries:
        entries[0] = (entries[0][0], entries[0][1], "remove_from_crl")
    algorithm = key("sm2").public_key().signature_algorithm()
    aki = b"\x5a" * 20
    ours = encode_tbs_crl_der(issuer=issuer, this_update=this_update, next_update=next_update,
                              crl_number=crl_number, entries=entries, authority_key_identifier=aki,
                              signature_algorithm=algorithm, delta_base=delta_base)
    theirs = reference_tbs(issuer=issuer, this_update=this_update, next_update=next_update,
                           crl_number=crl_number, entries=entries, aki=aki, algorithm=algorithm,
                           delta_base=delta_base)
    assert ours == theirs
    # and asn1crypto reads back exactly what went in
    parsed = asn1_crl.TbsCertList.load(ours, strict=True)
    assert [(e.serial, e.revoked_at, e.reason) for e in crl_entries(parsed)] == \
        [(s, t, None if r == "unspecified" else r) for s, t, r in entries]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=1, max_value=(1 << 64)),
                          st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1),
                                       timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)),
                                                                  timezone(timedelta(hours=-5, minutes=-30))])),
                          st.sampled_from([None, "key_compromise"])),
                min_size=1, max_size=10, unique_by=lambda e: e[0]))
def test_revoked_entries_and_tuples_encode_alike_in_any_timezone(entries):
    """RevokedEntry objects and raw tuples (with non-UTC, fractional times) give the same octets."""
    common = dict(issuer=parse_name("CN=x"), this_update=datetime(2030, 1, 1, tzinfo=UTC),
                  next_update=datetime(2030, 1, 2, tzinfo=UTC), crl_number=1, authority_key_identifier=b"k",
                  signature_algorithm=key("ecdsa-p256").public_key().signature_algorithm())
    from_tuples = encode_tbs_crl_der(entries=entries, **common)
    from_objects = encode_tbs_crl_der(entries=[RevokedEntry(*e) for e in entries], **common)
    assert from_tuples == from_objects
    times = [e.revoked_at for e in crl_entries(asn1_crl.TbsCertList.load(from_tuples))]
    assert times == [e[1].astimezone(UTC).replace(microsecond=0) for e in entries]


def test_length_octets_match_asn1crypto_at_every_boundary():
    for length in [0, 1, 127, 128, 255, 256, 65535, 65536, 16777215, 16777216]:
        header = core.OctetString(b"\x00" * length).dump()[1:-length or None]
        assert _der_length(length) == header, length
