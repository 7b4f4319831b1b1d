"""Certificate profiles from policies/: the six defaults, an operator's own policy directory, and
invalid policy files refused on load with the file and field named (tests/vectors/ca/profiles/<case>)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pki.ca import CLOCK_SKEW_ALLOWANCE
from pki.errors import NotFound, PolicyError
from pki.profiles import default_policy_dir, load_profiles

from ca_helpers import (VECTORS, World, apply_and_issue, assert_one_line_error, cert_text, session_env, wall_clock,
                        yinxin)

PROFILES = VECTORS / "profiles"


def test_default_profiles() -> None:
    profiles = load_profiles()
    assert profiles.directory == default_policy_dir()
    assert {"person", "organization", "seal", "server", "ocsp", "subca"} <= set(profiles.profiles)
    seal, server, ocsp, subca = (profiles.get(n) for n in ("seal", "server", "ocsp", "subca"))
    assert seal.key_usage == {"digital_signature", "non_repudiation"}
    assert server.subject_alt_names == "required" and "server_auth" in server.extended_key_usage
    assert ocsp.ocsp_no_check and ocsp.extended_key_usage == ("ocsp_signing",)
    assert subca.ca and subca.path_length == 0 and "key_cert_sign" in subca.key_usage
    person = profiles.get("person")
    assert person.one_per_person and person.id_number == "required"
    for profile in profiles.profiles.values():
        assert profile.algorithms and profile.validity_days > 0 and profile.renewal_window_days > 0
    # government department and seal records are kept 10 years, the others 5
    assert {n: p.retention_years for n, p in profiles.profiles.items()} == {
        "government": 10, "seal": 10, "subca": 10, "person": 5, "organization": 5, "server": 5, "ocsp": 5,
        "tsa": 10}
    tsa = profiles.get("tsa")     # RFC 3161 §2.3: timeStamping only, critical
    assert tsa.extended_key_usage == ("time_stamping",) and tsa.extended_key_usage_critical
    assert tsa.key_usage == {"digital_signature", "non_repudiation"}
    with pytest.raises(NotFound, match="unknown profile 'nope' \\(known: government, ocsp, organization"):
        profiles.get("nope")


BAD = {
    "unknown-field": ("colour", "unknown field"),
    "missing-validity": ("validity_days", "missing"),
    "bad-algorithm": ("algorithms", "must be a non-empty list of"),
    "leaf-with-key-cert-sign": ("key_usage", "key_cert_sign is for CA profiles only"),
    "one-per-person-without-id": ("one_per_person", "needs id_number: required"),
    "zero-validity": ("validity_days", "must be an integer >= 1"),
    "unknown-subject-attribute": ("subject", "unknown attribute XX"),
    "bad-presence": ("subject_alt_names", "must be required, optional or forbidden"),
    "unknown-eku": ("extended_key_usage", "must be a list of"),
    "critical-eku-without-eku": ("extended_key_usage_critical", "true only with extended_key_usage"),
    "not-yaml": (None, "not valid YAML"),
    "not-a-mapping": (None, "a profile must be a mapping"),
    "duplicate-name": (None, "profile 'twin' is defined twice"),
    "empty-directory": (None, "no profiles in"),
    "no-profiles-directory": (None, "no profiles directory in policy directory"),
}


def test_every_bad_case_has_a_vector() -> None:
    assert {p.name for p in PROFILES.iterdir() if p.is_dir()} == set(BAD) | {"valid-lab"}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_policy_refused_naming_file_and_field(case: str) -> None:
    field, message = BAD[case]
    with pytest.raises(PolicyError) as info:
        load_profiles(PROFILES / case)
    assert message in info.value.message
    assert str(PROFILES / case) in info.value.message           # the file (or directory) is named
    if field is not None:
        assert info.value.data["field"] == field and f": {field}: " in info.value.message


def test_operator_policy_directory(tmp_path: Path) -> None:
    world = World(tmp_path / "home", tmp_path / "files", wall_clock())
    from pki.ca import CertificateAuthority
    from pki.home import Home
    world.home = Home.open(world.home_dir, clock=world.clock, policy_dir=PROFILES / "valid-lab")
    world.authority = CertificateAuthority(world.home)
    assert set(world.home.profiles.profiles) == {"lab"}
    world.init_ca("lab-ca", "ecdsa-p256")   # a root needs no profile; a sub-CA would need 'subca'
    issued = apply_and_issue(world, ca="lab-ca", profile="lab", subject="/O=Lab/CN=builder",
                             generate_key_out=world.files / "k.pem")
    assert issued.record.not_after - issued.record.not_before == timedelta(days=30) + CLOCK_SKEW_ALLOWANCE
    text = cert_text(world.write_cert(issued, "lab"))
    assert "Code Signing, Time Stamping" in text
    with pytest.raises(NotFound, match="unknown profile 'person' \\(known: lab\\)"):
        world.ra.apply(ca="lab-ca", profile="person", subject="/CN=x", actor=world.person("a"), id_number="1",
                       generate_key_out=world.files / "k2.pem", key_password=b"x")
    with pytest.raises(NotFound, match="unknown profile 'subca'"):
        world.init_ca("lab-sub", "ecdsa-p256", parent="lab-ca")


def test_policy_directory_from_environment_and_config(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad = yinxin(home, "ca", "list", env={"YINXIN_POLICY_DIR": str(PROFILES / "unknown-field")})
    line = assert_one_line_error(bad, "unknown field")
    assert "colour" in line
    home.mkdir(exist_ok=True)
    (home / "config.yaml").write_text(f"policy_dir: {PROFILES / 'valid-lab'}\n", encoding="utf-8")
    result = yinxin(home, "ca", "apply", "--profile", "person", "--subject", "/CN=x", "--applicant", "a",
                    "--generate-key", "--key-out", tmp_path / "k.pem",
                    env={"YINXIN_KEY_PASSWORD": "pw", **session_env(home)})
    assert_one_line_error(result, "unknown profile 'person' (known: lab)")
    (home / "config.yaml").write_text("policy_dir: [unclosed\n", encoding="utf-8")
    assert_one_line_error(yinxin(home, "ca", "list"), "config.yaml: not valid YAML")

