"""The seal password policy (policies/passwords.yaml): DOMAIN.md "Seals" — no default password,
length and character classes, nothing derived from the seal's name, loaded and validated from YAML."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pki.errors import PolicyError
from seal.errors import PasswordPolicyError
from seal.passwords import PasswordPolicy, load_password_policy

SHIPPED = Path(__file__).resolve().parent.parent / "policies" / "passwords.yaml"
GOOD = b"Custodian-Pw-2026#"


@pytest.fixture(scope="module")
def shipped() -> dict:
    """The shipped policy, read with PyYAML (not with our loader)."""
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def policy() -> PasswordPolicy:
    return load_password_policy(SHIPPED.parent)


def rule_of(policy: PasswordPolicy, password: bytes, **kw) -> tuple[str | None, str]:
    with pytest.raises(PasswordPolicyError) as info:
        policy.check(password, **kw)
    return info.value.data.get("rule"), info.value.message


def test_shipped_policy_is_loaded_as_written(policy, shipped):
    assert policy.min_length == shipped["min_length"] >= 8
    assert policy.min_classes == shipped["min_classes"] >= 2
    assert policy.max_failures == shipped["max_failures"] >= 1
    assert policy.change_on_first_use is True and shipped["change_on_first_use"] is True
    # the source system's default seal password is refused, whatever the other rules
    assert {"123", "123456", "password"} <= set(policy.forbidden)
    assert policy.forbidden == {str(f).lower() for f in shipped["forbidden"]}


def test_a_good_password_passes(policy):
    policy.check(GOOD, seal_name="bj-official")
    policy.check("印章管理-Pw-2026".encode(), seal_name="bj-official")   # any Unicode text


@pytest.mark.parametrize("password", [b"123", b"123456", b"password", b"Short-1!"])
def test_too_short_is_refused_with_the_length_named(policy, password):
    rule, message = rule_of(policy, password)
    assert rule == "min_length"
    assert f"at least {policy.min_length} characters" in message


@pytest.mark.parametrize("password", [b"onlylowercaseletters", b"lowercase-and-symbols", b"UPPER12345678"])
def test_too_few_character_classes(policy, password):
    rule, message = rule_of(policy, password)
    assert rule == "min_classes"
    assert "lower case, upper case, digits, symbols" in message


@pytest.mark.parametrize("entry", yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))["forbidden"])
def test_every_forbidden_password_is_refused_in_any_case(entry):
    lax = PasswordPolicy(min_length=6, min_classes=1, forbidden=frozenset(
        yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))["forbidden"]))
    for variant in {entry, entry.upper(), entry.lower(), entry.swapcase()}:
        if len(variant) < 6:
            continue
        rule, message = rule_of(lax, variant.encode())
        assert rule == "forbidden", variant
        assert "default, trivial" in message


def test_shipped_forbidden_passwords_that_meet_length_and_classes_are_still_refused(policy, shipped):
    strong_looking = [f for f in shipped["forbidden"] if len(f) >= policy.min_length and sum((
        any(c.islower() for c in f), any(c.isupper() for c in f), any(c.isdigit() for c in f),
        any(not c.isalnum() for c in f))) >= policy.min_classes]
    assert strong_looking, "the shipped list should name the usual 'complex' defaults (P@ssw0rd123 …)"
    for password in strong_looking:
        assert rule_of(policy, password.encode())[0] == "forbidden", password


def test_forbidden_entries_compare_case_insensitively_however_built():
    direct = PasswordPolicy(min_length=6, min_classes=1, forbidden=frozenset({"Secret-Word"}))
    assert rule_of(direct, b"sEcReT-wOrD")[0] == "forbidden"


@pytest.mark.parametrize("password", [b"aaaaaaaaaaaA", b"Ab" * 6, b"!!!!!!!!!!!1"])
def test_trivial_repetitions_are_refused(password):
    lax = PasswordPolicy(min_length=6, min_classes=1)
    assert rule_of(lax, password)[0] == "forbidden"


def test_the_seals_own_name_is_refused(policy):
    rule, message = rule_of(policy, b"Bj-Official-2026!", seal_name="bj-official")
    assert rule == "forbidden" and "seal's name" in message
    policy.check(b"Bj-Official-2026!", seal_name="tj-contract")


def test_a_very_short_seal_name_does_not_forbid_every_password_containing_it(policy):
    policy.check(b"Custodian-Pw-2026#", seal_name="s")
    policy.check(b"Custodian-Pw-2026#", seal_name="Cu")
    assert rule_of(policy, b"Custodian-Pw-2026#", seal_name="cus")[0] == "forbidden"


def test_the_new_password_must_differ_from_the_old(policy):
    assert rule_of(policy, GOOD, old=GOOD)[0] == "reuse"
    policy.check(GOOD, old=b"Another-Pw-2026#")


def test_non_utf8_is_refused(policy):
    assert "UTF-8" in rule_of(policy, b"\xff\xfe-Abcdef-12345")[1]


@pytest.mark.parametrize("kwargs", [{"min_length": 5}, {"min_classes": 0}, {"min_classes": 5},
                                    {"max_failures": 0}])
def test_a_lax_policy_object_cannot_be_built(kwargs):
    with pytest.raises(ValueError):
        PasswordPolicy(**kwargs)


def _policy_dir(tmp_path: Path, text: str) -> Path:
    (tmp_path / "passwords.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_a_policy_directory_without_the_file_gets_the_defaults(tmp_path):
    assert load_password_policy(tmp_path) == PasswordPolicy()


def test_a_custom_policy_file(tmp_path):
    policy = load_password_policy(_policy_dir(tmp_path, "min_length: 12\nmax_failures: 3\nforbidden: [Hunter2Hunter2]\n"))
    assert (policy.min_length, policy.max_failures, policy.forbidden) == (12, 3, {"hunter2hunter2"})


@pytest.mark.parametrize("text, needle", [
    ("min_length: [\n", "not valid YAML"),
    ("min_length: 12\nmax_tries: 3\n", "unknown field"),
    ("min_length: twelve\n", "passwords.yaml"),
    ("min_length: 4\n", "min_length >= 6"),
    ("- a list\n", "passwords.yaml"),
])
def test_bad_policy_files_are_refused_with_the_file_named(tmp_path, text, needle):
    with pytest.raises(PolicyError) as info:
        load_password_policy(_policy_dir(tmp_path, text))
    assert needle in info.value.message
    assert info.value.data["file"].endswith("passwords.yaml")
