"""Certificate profiles, loaded from YAML files in a policy directory into frozen objects.

A profile is validated completely when it is loaded: a CA operator learns
about a typo in a policy file when the file is read, not when a certificate
comes out wrong.  Operators point yinxin at their own directory with
``--policy-dir`` / ``YINXIN_POLICY_DIR``; the defaults live in ``policies/``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from .algorithms import ALGORITHMS
from .errors import NotFound, PolicyError

KEY_USAGES = frozenset({"digital_signature", "non_repudiation", "key_encipherment",
                        "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign"})
EXTENDED_KEY_USAGES = frozenset({"server_auth", "client_auth", "code_signing", "email_protection",
                                 "time_stamping", "ocsp_signing"})
SUBJECT_ATTRIBUTES = frozenset({"C", "ST", "L", "O", "OU", "CN", "serialNumber", "emailAddress", "UID"})
_PRESENCE = ("required", "optional", "forbidden")
#: LibYAML's loader when PyYAML has it (the same safe constructor and resolver, ~6× faster on the
#: profiles every `Home.open` reads), else PyYAML's own
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FIELDS = {"name", "description", "algorithms", "validity_days", "key_usage", "extended_key_usage",
           "subject", "id_number", "one_per_person", "subject_alt_names", "renewal_window_days",
           "retention_years", "ca", "path_length", "ocsp_no_check",
           "extended_key_usage_critical"}


def default_policy_dir() -> Path:
    """The default policies shipped with yinxin (the `policies` package's data, found through
    `importlib.resources`: a checkout's `policies/` or the installed distribution's)."""
    from importlib.resources import files
    try:
        root = files("policies")
    except ModuleNotFoundError:
        raise PolicyError("the default policies are not installed (the `policies` package is missing): "
                          "reinstall yinxin, or set YINXIN_POLICY_DIR") from None
    path = Path(str(root))
    if not (path / "profiles").is_dir():   # e.g. installed inside a zip file: not supported
        raise PolicyError(f"the default policies are not readable as files at {root}: set YINXIN_POLICY_DIR "
                          "to a directory written by `yinxin policies export`", file=str(root))
    return path


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    algorithms: tuple[str, ...]
    validity_days: int
    key_usage: frozenset[str]
    extended_key_usage: tuple[str, ...]
    required_subject: frozenset[str]
    allowed_subject: frozenset[str]
    id_number: str                  # required | optional | forbidden
    one_per_person: bool
    subject_alt_names: str          # required | optional | forbidden
    renewal_window_days: int
    retention_years: int
    ca: bool = False
    path_length: int | None = None
    ocsp_no_check: bool = False
    #: mark extendedKeyUsage critical (RFC 3161 §2.3: a TSA certificate's timeStamping EKU is critical)
    extended_key_usage_critical: bool = False

    @property
    def usage(self) -> str:
        """The 'usage' of 一人一证: one active certificate per identity number and profile."""
        return self.name

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str) -> "Profile":
        def fail(field: str, why: str) -> PolicyError:
            return PolicyError(f"{source}: {field}: {why}", file=source, field=field)

        if not isinstance(data, Mapping):
            raise PolicyError(f"{source}: a profile must be a mapping", file=source)
        unknown = set(data) - _FIELDS
        if unknown:
            raise fail(sorted(unknown)[0], "unknown field")
        for required in ("name", "algorithms", "validity_days", "key_usage", "subject",
                         "renewal_window_days", "retention_years"):
            if required not in data:
                raise fail(required, "missing")
        name = data["name"]
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise fail("name", "must be a word (letters, digits, - and _)")
        algos = data["algorithms"]
        if not isinstance(algos, list) or not algos or any(a not in ALGORITHMS for a in algos):
            raise fail("algorithms", f"must be a non-empty list of {', '.join(ALGORITHMS)}")

        def positive_int(field: str, minimum: int = 1) -> int:
            value = data.get(field)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise fail(field, f"must be an integer >= {minimum}")
            return value

        key_usage = data["key_usage"]
        if not isinstance(key_usage, list) or not key_usage or set(key_usage) - KEY_USAGES:
            raise fail("key_usage", f"must be a non-empty list of {', '.join(sorted(KEY_USAGES))}")
        eku = data.get("extended_key_usage") or []
        if not isinstance(eku, list) or set(eku) - EXTENDED_KEY_USAGES:
            raise fail("extended_key_usage", f"must be a list of {', '.join(sorted(EXTENDED_KEY_USAGES))}")
        subject = data["subject"]
        if not isinstance(subject, Mapping) or set(subject) - {"required", "allowed"}:
            raise fail("subject", "must have 'required' and 'allowed' lists")
        required_subject = frozenset(subject.get("required") or [])
        allowed_subject = frozenset(subject.get("allowed") or []) | required_subject
        if allowed_subject - SUBJECT_ATTRIBUTES:
            raise fail("subject", f"unknown attribute {sorted(allowed_subject - SUBJECT_ATTRIBUTES)[0]}")
        for field in ("id_number", "subject_alt_names"):
            if data.get(field, "optional") not in _PRESENCE:
                raise fail(field, "must be required, optional or forbidden")
        ca = bool(data.get("ca", False))
        if ca and "key_cert_sign" not in key_usage:
            raise fail("key_usage", "a CA profile needs key_cert_sign")
        if not ca and "key_cert_sign" in key_usage:
            raise fail("key_usage", "key_cert_sign is for CA profiles only")
        path_length = data.get("path_length")
        if path_length is not None and (not isinstance(path_length, int) or path_length < 0 or not ca):
            raise fail("path_length", "a non-negative integer, for CA profiles only")
        eku_critical = data.get("extended_key_usage_critical", False)
        if not isinstance(eku_critical, bool) or (eku_critical and not eku):
            raise fail("extended_key_usage_critical", "true or false, and true only with extended_key_usage")
        one_per_person = bool(data.get("one_per_person", False))
        if one_per_person and data.get("id_number") != "required":
            raise fail("one_per_person", "needs id_number: required")
        return cls(
            name=name, description=str(data.get("description", name)), algorithms=tuple(algos),
            validity_days=positive_int("validity_days"), key_usage=frozenset(key_usage),
            extended_key_usage=tuple(eku), required_subject=required_subject,
            allowed_subject=allowed_subject, id_number=data.get("id_number", "optional"),
            one_per_person=one_per_person, subject_alt_names=data.get("subject_alt_names", "optional"),
            renewal_window_days=positive_int("renewal_window_days"),
            retention_years=positive_int("retention_years"), ca=ca, path_length=path_length,
            ocsp_no_check=bool(data.get("ocsp_no_check", False)),
            extended_key_usage_critical=eku_critical,
        )


@dataclass(frozen=True)
class ProfileSet:
    directory: Path
    profiles: Mapping[str, Profile]

    def get(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise NotFound(f"unknown profile {name!r} (known: {', '.join(sorted(self.profiles))})",
                           profile=name) from None


def load_profiles(policy_dir: str | Path | None = None) -> ProfileSet:
    """Every ``profiles/*.yaml`` of the policy directory, validated; errors name file and field."""
    directory = Path(policy_dir) if policy_dir else default_policy_dir()
    profile_dir = directory / "profiles"
    todo = ("point YINXIN_POLICY_DIR (or policy_dir: in the home's config.yaml) at a directory written by "
            "`yinxin policies export DIR`, or unset it to use the defaults")
    if not directory.is_dir():
        state = "is not a directory" if directory.exists() else "does not exist"
        raise PolicyError(f"policy directory {directory} {state}: {todo}", file=str(directory))
    if not profile_dir.is_dir():
        raise PolicyError(f"no profiles directory in policy directory {directory}: {todo}", file=str(directory))
    profiles: dict[str, Profile] = {}
    for path in sorted(profile_dir.glob("*.yaml")):
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)  # noqa: S506 (a safe loader)
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read the policy file ({exc.strerror})", file=str(path)) from None
        except UnicodeDecodeError:
            raise PolicyError(f"{path}: not UTF-8 text", file=str(path)) from None
        except yaml.YAMLError as exc:
            raise PolicyError(f"{path}: not valid YAML ({exc.__class__.__name__})", file=str(path)) from None
        profile = Profile.from_mapping(data, str(path))
        if profile.name in profiles:
            raise PolicyError(f"{path}: profile {profile.name!r} is defined twice", file=str(path))
        profiles[profile.name] = profile
    if not profiles:
        raise PolicyError(f"no profiles in {profile_dir}", file=str(profile_dir))
    return ProfileSet(directory, profiles)
