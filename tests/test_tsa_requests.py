"""Reading timestamp requests: the fast reader (no ASN.1 objects built) and asn1crypto's strict
reading must agree on every request the fast reader accepts — generated requests of every shape,
then the same bytes with one byte changed or cut short."""
from __future__ import annotations

from asn1crypto import tsp
from hypothesis import given, settings
from hypothesis import strategies as st

from pki.tsa.errors import RequestRefused
from pki.tsa.protocol import HASHES, _fast_request, _full_request, _policy_der

POLICY = "1.2.156.1.2.3"
HASH_SETS = [frozenset({"sha256", "sha384", "sha512"}), frozenset({"sha256", "sha384", "sha512", "sm3"})]


@st.composite
def requests(draw) -> bytes:
    name = draw(st.sampled_from(sorted(HASHES) * 3 + ["md5", "sha1"]))
    size = {"md5": 16, "sha1": 20}.get(name) or HASHES[name][0]
    length = draw(st.sampled_from([size] * 6 + [size - 1, size + 1]))
    digest = draw(st.binary(min_size=length, max_size=length))
    fields: dict = {"version": draw(st.sampled_from(["v1"] * 6 + ["v2"])),
                    "message_imprint": {"hash_algorithm": {"algorithm": name}, "hashed_message": digest}}
    if draw(st.booleans()):
        fields["message_imprint"]["hash_algorithm"]["parameters"] = None
    if draw(st.booleans()):
        fields["req_policy"] = draw(st.sampled_from([POLICY, "1.2.3.4"]))
    if draw(st.booleans()):
        fields["nonce"] = draw(st.integers(min_value=-(1 << 70), max_value=1 << 300))
    if draw(st.booleans()):
        fields["cert_req"] = True
    if draw(st.integers(0, 9)) == 0:
        fields["extensions"] = [{"extn_id": "1.2.3", "extn_value": b"x"}]
    return tsp.TimeStampReq(fields).dump()


def _full(der: bytes, hashes):
    try:
        return _full_request(der, hashes, POLICY)
    except RequestRefused as exc:
        return exc.failure


@settings(max_examples=400, deadline=None)
@given(requests(), st.sampled_from(HASH_SETS), st.integers(min_value=-1, max_value=400), st.integers(0, 255))
def test_the_fast_reader_agrees_with_asn1crypto(der, hashes, where, value):
    for data in (der, der[:max(0, where)] if where >= 0 else der,
                 (der[:where] + bytes([value]) + der[where + 1:]) if 0 <= where < len(der) else der):
        fast = _fast_request(data, hashes, _policy_der(POLICY))
        if fast is None:
            continue
        full = _full(data, hashes)
        assert not isinstance(full, str), (data.hex(), full)
        assert (fast.hash_algorithm, fast.imprint, fast.nonce, fast.cert_req, fast.imprint_der) == \
               (full.hash_algorithm, full.imprint, full.nonce, full.cert_req, full.imprint_der)
        assert (fast.policy is not None) == (full.policy is not None)


def test_openssl_queries_take_the_fast_road(tmp_path):
    from ca_helpers import openssl
    data = tmp_path / "data"
    data.write_bytes(b"x" * 100)
    for flags in (["-sha256", "-cert"], ["-sm3"], ["-sha512", "-no_nonce", "-tspolicy", POLICY]):
        der = openssl("ts", "-query", "-data", data, *flags).stdout
        fast = _fast_request(der, HASH_SETS[1], _policy_der(POLICY))
        assert fast is not None and fast.imprint_der in der
        full = _full_request(der, HASH_SETS[1], POLICY)
        assert (fast.nonce, fast.cert_req, fast.hash_algorithm) == (full.nonce, full.cert_req, full.hash_algorithm)
