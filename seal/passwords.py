"""The seal password policy, loaded from ``policies/passwords.yaml``."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from pki.errors import PolicyError
from pki.profiles import default_policy_dir

from .errors import PasswordPolicyError

_FIELDS = {"min_length", "min_classes", "max_failures", "change_on_first_use", "forbidden"}


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 10
    min_classes: int = 3
    max_failures: int = 5
    change_on_first_use: bool = True
    forbidden: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.min_length < 6 or not 1 <= self.min_classes <= 4 or self.max_failures < 1:
            raise ValueError("password policy: min_length >= 6, min_classes 1..4, max_failures >= 1")
        # compared case-insensitively: keep them lower case however the policy was built
        object.__setattr__(self, "forbidden", frozenset(str(f).lower() for f in self.forbidden))

    def check(self, password: bytes, *, seal_name: str = "", old: bytes | None = None) -> None:
        """Raise PasswordPolicyError naming the first rule the password breaks."""
        try:
            text = password.decode("utf-8")
        except UnicodeDecodeError:
            raise PasswordPolicyError("a seal password must be UTF-8 text") from None
        if len(text) < self.min_length:
            raise PasswordPolicyError(f"a seal password needs at least {self.min_length} characters",
                                      rule="min_length")
        classes = sum((any(c.islower() for c in text), any(c.isupper() for c in text),
                       any(c.isdigit() for c in text), any(not c.isalnum() for c in text)))
        if classes < self.min_classes:
            raise PasswordPolicyError(f"a seal password needs {self.min_classes} of: lower case, upper case, "
                                      "digits, symbols", rule="min_classes")
        lowered = text.lower()
        # derived from the seal's name: containing it (a name of one or two characters is in too many
        # passwords by chance to say so, unless the password is just that name)
        name = seal_name.lower()
        derived = bool(name) and (name in lowered if len(name) >= 3 else lowered == name)
        if lowered in self.forbidden or len(set(text)) <= 2 or derived:
            raise PasswordPolicyError("that password is a default, trivial or derived from the seal's name",
                                      rule="forbidden")
        if old is not None and password == old:
            raise PasswordPolicyError("the new password must differ from the old one", rule="reuse")


def load_password_policy(policy_dir: str | Path | None = None) -> PasswordPolicy:
    path = Path(policy_dir or default_policy_dir()) / "passwords.yaml"
    if not path.exists():
        return PasswordPolicy()
    return _load(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _load(name: str, _mtime: int) -> PasswordPolicy:
    """The policy of one version of the file (read again when the file changes)."""
    path = Path(name)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise PolicyError(f"{path}: not valid YAML", file=str(path)) from None
    if not isinstance(data, dict) or set(data) - _FIELDS - {"accounts"}:   # accounts: pki.accounts.policy
        raise PolicyError(f"{path}: unknown field(s) {sorted(set(data) - _FIELDS) if isinstance(data, dict) else ''}",
                          file=str(path))
    try:
        return PasswordPolicy(
            min_length=int(data.get("min_length", 10)), min_classes=int(data.get("min_classes", 3)),
            max_failures=int(data.get("max_failures", 5)),
            change_on_first_use=bool(data.get("change_on_first_use", True)),
            forbidden=frozenset(str(f).lower() for f in data.get("forbidden") or []))
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{path}: {exc}", file=str(path)) from None
