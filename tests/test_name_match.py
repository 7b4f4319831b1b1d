"""pki.name_match: asn1crypto's RFC 5280 name comparison through a memo gives asn1crypto's answers."""
from __future__ import annotations

import itertools

import pytest
from asn1crypto import x509

from pki import name_match


def _name(rdns: list[tuple[str, str, str]]) -> x509.Name:
    """A name from (type, string kind, value) triples, one RDN each, re-read from its DER."""
    seq = x509.RDNSequence([x509.RelativeDistinguishedName([x509.NameTypeAndValue({
        "type": kind, "value": x509.DirectoryString(name=string, value=value)})])
        for kind, string, value in rdns])
    return x509.Name.load(x509.Name(name="", value=seq).dump())


NAMES = [
    _name([("country_name", "printable_string", "CN"), ("organization_name", "utf8_string", "bench"),
           ("common_name", "utf8_string", "Bench SM2 CA")]),
    _name([("country_name", "printable_string", "CN"), ("organization_name", "utf8_string", "bench"),
           ("common_name", "utf8_string", "Bench SM2 Root")]),
    # the same as the first under RFC 5280: case, inner and outer spaces, another string type
    _name([("country_name", "printable_string", "cn"), ("organization_name", "printable_string", "BENCH"),
           ("common_name", "utf8_string", "  bench   sm2 ca ")]),
    _name([("country_name", "printable_string", "CN"), ("organization_name", "utf8_string", "北京市测试局"),
           ("common_name", "utf8_string", "北京市测试局电子印章")]),
    _name([("country_name", "printable_string", "CN"), ("organization_name", "utf8_string", "北京市测试局"),
           ("common_name", "bmp_string", "北京市测试局电子印章")]),
    _name([("country_name", "printable_string", "CN"), ("common_name", "utf8_string", "北京市测试局电子印章")]),
    _name([("common_name", "utf8_string", "北京市测试局电子印章"), ("country_name", "printable_string", "CN")]),
    _name([("country_name", "printable_string", "CN")]),
]


def test_the_memo_answers_as_asn1crypto_does_for_every_pair_asked_twice() -> None:
    assert x509.Name.__eq__ is name_match.names_equal          # installed on import
    original = name_match.original()
    expected = {(i, j): original(a, b) for (i, a), (j, b) in itertools.product(enumerate(NAMES), repeat=2)}
    assert expected[(0, 2)] and expected[(3, 4)]                # equal under RFC 5280, not by their bytes
    assert not expected[(0, 1)] and not expected[(5, 6)]
    for _ in range(2):
        for (i, a), (j, b) in itertools.product(enumerate(NAMES), repeat=2):
            reread_a, reread_b = x509.Name.load(a.dump()), x509.Name.load(b.dump())
            assert (reread_a == reread_b) is expected[(i, j)], (i, j)
            assert (reread_a != reread_b) is not expected[(i, j)], (i, j)
    assert NAMES[0] != "CN=Bench SM2 CA" and not name_match.names_equal(NAMES[0], None)


def test_the_hashable_form_is_asn1cryptos_asked_twice() -> None:
    expected = [name_match.original_hashable(x509.Name.load(n.dump())) for n in NAMES]
    assert expected[0] == expected[2] and expected[0] != expected[1]      # equal names, one form
    for _ in range(2):
        assert [x509.Name.load(n.dump()).hashable for n in NAMES] == expected


def test_a_value_asn1crypto_refuses_is_refused_every_time() -> None:
    bad = _name([("common_name", "utf8_string", "bad\ue000name")])     # private use: prohibited (RFC 3454 C.3)
    other = _name([("common_name", "utf8_string", "good name")])
    with pytest.raises(ValueError):
        name_match.original()(bad, other)
    for _ in range(2):
        with pytest.raises(ValueError):
            assert bad == other
        with pytest.raises(ValueError):
            assert bad.hashable
