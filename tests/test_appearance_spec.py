"""SealSpec validation and the sizes each seal type gets."""
from __future__ import annotations

import pytest

from pki.errors import YinxinError
from seal.appearance import (
    DIAMETER_MM,
    PERSONAL_SIDE_MM,
    SEAL_TYPES,
    AppearanceError,
    SealSpec,
    draw_seal,
)
from seal.errors import SealError

MM = 72 / 25.4


def test_seal_types():
    assert SEAL_TYPES == ("official", "contract", "finance", "special", "personal")


@pytest.mark.parametrize("seal_type, name, size_mm", [
    ("official", "", 42.0),
    ("contract", "合同专用章", 40.0),
    ("finance", "财务专用章", 40.0),
    ("special", "发票专用章", 40.0),
])
def test_round_seal_sizes(seal_type, name, size_mm):
    drawing = draw_seal(SealSpec(seal_type, "某某有限公司", name))
    assert DIAMETER_MM[seal_type] == size_mm
    assert drawing.width_pt == pytest.approx(size_mm * MM)
    assert drawing.height_pt == pytest.approx(size_mm * MM)
    if seal_type == "official":
        assert drawing.width_pt == pytest.approx(119.06, abs=0.005)


def test_personal_seal_size():
    drawing = draw_seal(SealSpec("personal", "", "张三"))
    assert PERSONAL_SIDE_MM == 20.0
    assert drawing.width_pt == drawing.height_pt == pytest.approx(20 * MM)


def test_error_is_a_yinxin_error_with_data():
    with pytest.raises(YinxinError) as err:
        SealSpec("round", "某某有限公司")
    assert isinstance(err.value, AppearanceError) and isinstance(err.value, SealError)
    assert err.value.data["field"] == "seal_type"
    assert "official, contract, finance, special, personal" in str(err.value)


@pytest.mark.parametrize("kwargs, field, message", [
    (dict(seal_type="stamp", organisation="某某公司"), "seal_type", "unknown seal type"),
    (dict(seal_type="official", organisation=""), "organisation", "organisation name is empty"),
    (dict(seal_type="contract", organisation="某某公司"), "seal_name", "needs its seal name"),
    (dict(seal_type="official", organisation="某某 公司"), "organisation", "spaces"),
    (dict(seal_type="official", organisation="某某\n公司"), "organisation", "control"),
    (dict(seal_type="official", organisation="某" * 25), "organisation", "too long"),
    (dict(seal_type="official", organisation="某某公司", seal_name="章" * 11), "seal_name",
     "too long"),
    (dict(seal_type="official", organisation="某某公司", code="12ab"), "code", "digits"),
    (dict(seal_type="official", organisation="某某公司", code="1" * 25), "code", "digits"),
    (dict(seal_type="personal", organisation="", seal_name="张"), "seal_name", "2 to 4"),
    (dict(seal_type="personal", organisation="", seal_name="张三李四王"), "seal_name", "2 to 4"),
    (dict(seal_type="personal", organisation="", seal_name="张三", code="1"), "code",
     "no code"),
    (dict(seal_type="official", organisation="某某公司", color=(256, 0, 0)), "color",
     "three integers"),
    (dict(seal_type="official", organisation="某某公司", color="red"), "color",
     "three integers"),
    (dict(seal_type="official", organisation="某某公司", font_path=""), "font_path",
     "non-empty"),
    (dict(seal_type="official", organisation="某某公司", font_index=-1), "font_index",
     "face number"),
])
def test_invalid_specs(kwargs, field, message):
    with pytest.raises(AppearanceError, match=message) as err:
        SealSpec(**kwargs)
    assert err.value.data["field"] == field
    assert "\n" not in str(err.value)


def test_wrong_types_are_type_errors():
    with pytest.raises(TypeError):
        SealSpec("official", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SealSpec("official", "某某公司", code=123)  # type: ignore[arg-type]


def test_spec_is_immutable():
    spec = SealSpec("official", "某某公司")
    with pytest.raises(AttributeError):
        spec.organisation = "别的公司"  # type: ignore[misc]


def test_codes_accept_credit_codes_and_hyphens():
    SealSpec("official", "某某公司", code="91440300708461136T")
    SealSpec("official", "某某公司", code="12345678-9")
    SealSpec("personal", "某某公司", seal_name="欧阳修")  # the organisation is not drawn


def test_drawing_is_immutable_and_deterministic():
    spec = SealSpec("contract", "某某有限公司", "合同专用章", code="3101150001234")
    first, second = draw_seal(spec), draw_seal(spec)
    assert first.pdf_content() == second.pdf_content()
    assert first.svg() == second.svg()
    assert first.png(100) == second.png(100)
    with pytest.raises(AttributeError):
        first.width_pt = 1.0  # type: ignore[misc]
    roles = {s.role for s in first.shapes}
    assert roles == {"ring", "star", "organisation", "name", "code"}
