"""SM3 (GB/T 32905-2016 Annex A) vectors, checked against pki.sm3 and `openssl dgst -sm3`."""
from __future__ import annotations

from pathlib import Path

import pytest

import pki

VECTORS = Path(__file__).parent / "vectors" / "sm3"
CASES = sorted(VECTORS.glob("*.msg"))


def test_both_standard_vectors_are_present() -> None:
    assert [c.stem for c in CASES] == ["gbt32905_a1_abc", "gbt32905_a2_abcd_x16"]


def _expected(case: Path) -> str:
    return case.with_suffix(".sm3").read_text().strip().lower()


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_pki_sm3_matches_the_standard(case: Path) -> None:
    assert pki.sm3(case.read_bytes()).hex() == _expected(case)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_openssl_sm3_matches_the_standard(case: Path, openssl) -> None:
    out = openssl("dgst", "-sm3", "-r", case).stdout.decode()
    assert out.split()[0] == _expected(case)


def test_sm3_differs_on_a_changed_message() -> None:
    case = VECTORS / "gbt32905_a1_abc.msg"
    assert pki.sm3(b"abd").hex() != _expected(case)
