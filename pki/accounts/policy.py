"""The account policy: the `accounts:` section of ``policies/passwords.yaml``.

Passwords follow OWASP ASVS 5.0 (V6.2, V11.4.2): at least 12 characters (long passphrases up to
`max_length` accepted), no composition rules, checked against a list of common passwords and the
person's own words (id, name, organisation), no forced periodic change unless `max_age_days` asks
for one, argon2id with p=1, t=2, m=19 MiB (one of the parameter sets ASVS names).  An initial or
reset password must be changed at the next login.  Sessions (V7): idle and absolute timeouts.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from ..errors import PolicyError
from .errors import PasswordRejected

_FIELDS = {"min_length", "max_length", "common_passwords", "change_initial", "max_age_days", "argon2id",
           "max_failures", "throttle_after", "throttle_seconds", "throttle_max_seconds",
           "session_idle_minutes", "session_absolute_hours", "pin_min_length", "ra_decisions_signed",
           "key_algorithm"}
_ARGON2_FIELDS = {"memory_kib", "time_cost", "parallelism", "hash_length", "salt_length"}


@dataclass(frozen=True)
class Argon2Parameters:
    memory_kib: int = 19456          # 19 MiB
    time_cost: int = 2
    parallelism: int = 1
    hash_length: int = 32
    salt_length: int = 16

    def __post_init__(self) -> None:
        # ASVS 5.0 11.4.2 (Appendix C): p=1 with (t=1, m ≥ 46 MiB), (t=2, m ≥ 19 MiB) or (t ≥ 3, m ≥ 12 MiB)
        m, t = self.memory_kib, self.time_cost
        strong = (t == 1 and m >= 47104) or (t == 2 and m >= 19456) or (t >= 3 and m >= 12288)
        if self.parallelism != 1 or not strong:
            raise ValueError("argon2id parameters below OWASP ASVS 5.0 11.4.2: use p=1 with t=1 and m ≥ 47104 KiB, "
                             "t=2 and m ≥ 19456 KiB, or t ≥ 3 and m ≥ 12288 KiB")
        if self.hash_length < 16 or self.salt_length < 16:
            raise ValueError("argon2id hash and salt are at least 16 bytes")


@dataclass(frozen=True)
class AccountPolicy:
    min_length: int = 12
    max_length: int = 128
    common_passwords: frozenset[str] = field(default_factory=frozenset, repr=False)
    change_initial: bool = True
    max_age_days: int = 0            # 0: no forced periodic change
    argon2id: Argon2Parameters = Argon2Parameters()
    max_failures: int = 10           # consecutive failed logins that lock the account
    throttle_after: int = 3          # failures before the next try must wait
    throttle_seconds: int = 2        # the first wait; doubled for each further failure
    throttle_max_seconds: int = 60
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    pin_min_length: int = 6
    ra_decisions_signed: bool = True
    key_algorithm: str = "sm2"

    def __post_init__(self) -> None:
        if not 8 <= self.min_length <= self.max_length or self.max_length < 64:
            raise ValueError("account passwords: min_length at least 8 and at most max_length; max_length at "
                             "least 64 (long passphrases are accepted)")
        if self.max_failures < 1 or self.throttle_after < 1 or self.throttle_seconds < 0 \
                or self.throttle_max_seconds < self.throttle_seconds:
            raise ValueError("account lockout: max_failures ≥ 1, throttle_after ≥ 1, "
                             "0 ≤ throttle_seconds ≤ throttle_max_seconds")
        if self.session_idle_minutes < 1 or self.session_absolute_hours < 1 \
                or self.session_idle_minutes > self.session_absolute_hours * 60:
            raise ValueError("sessions: idle timeout ≥ 1 minute and not longer than the absolute timeout")
        if self.max_age_days < 0 or self.pin_min_length < 4:
            raise ValueError("max_age_days ≥ 0 (0: no forced change); pin_min_length ≥ 4")

    # ---------------------------------------------------------------- throttling

    def throttle_wait(self, failures: int) -> int:
        """Seconds a login must wait after the last of `failures` consecutive failures."""
        if failures < self.throttle_after:
            return 0
        return min(self.throttle_max_seconds, self.throttle_seconds * 2 ** (failures - self.throttle_after))

    # ---------------------------------------------------------------- passwords

    def check_password(self, password: bytes, *, context: Iterable[str] = (), old_hash_matches: bool = False) -> str:
        """The password as text if it meets the policy; else PasswordRejected naming the rule."""
        try:
            text = password.decode("utf-8")
        except UnicodeDecodeError:
            raise PasswordRejected("a password must be UTF-8 text", rule="utf8") from None
        text = unicodedata.normalize("NFC", text)
        length = len(text)
        if length < self.min_length:
            raise PasswordRejected(f"a password needs at least {self.min_length} characters (a passphrase of "
                                   "several words is best)", rule="min_length")
        if length > self.max_length:
            raise PasswordRejected(f"a password has at most {self.max_length} characters", rule="max_length")
        folded = _fold(text)
        if len(set(folded)) <= 2 or _is_sequence(folded):
            raise PasswordRejected("that password is a repetition or a keyboard/digit sequence", rule="trivial")
        if self.is_common(folded):
            raise PasswordRejected("that password is on the list of common passwords", rule="common")
        for word in context:
            w = _fold(word or "")
            if len(w) >= 3 and w in folded or (w and folded == w):
                raise PasswordRejected("a password may not contain the account's id, the person's name or the "
                                       "organisation's name", rule="context")
        if old_hash_matches:
            raise PasswordRejected("the new password must differ from the current one", rule="reuse")
        return text

    def is_common(self, folded: str) -> bool:
        """On the list, or a listed password followed by a trivial suffix (digits in sequence or
        repeated, a year, a few symbols), or a listed password repeated."""
        if folded in self.common_passwords:
            return True
        match = re.fullmatch(r"(.+?)([0-9!@#$%^&*.?_\-]{0,8})", folded)
        if match:
            base, suffix = match.groups()
            listed = base in self.common_passwords or (len(base) >= 6 and _is_sequence(base))
            if listed and (not suffix or _trivial_suffix(suffix)):
                return True
        for size in range(1, len(folded) // 2 + 1):
            if len(folded) % size == 0 and folded[:size] * (len(folded) // size) == folded \
                    and folded[:size] in self.common_passwords:
                return True
        return False


def _fold(text: str) -> str:
    """Case and width folded, spaces removed: what the checks compare."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "abcdefghijklmnopqrstuvwxyz",
         "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p", "qazwsxedcrfvtgbyhnujmikolp")


def _is_sequence(folded: str) -> bool:
    """A run along a keyboard row, the alphabet or the digits (forwards or backwards, wrapping)."""
    for row in _ROWS:
        ring = row * 4
        if folded in ring or folded in ring[::-1]:
            return True
    return False


def _trivial_suffix(suffix: str) -> bool:
    digits = suffix.rstrip("!@#$%^&*.?_-")
    if not digits:
        return True
    return (len(set(digits)) == 1 or _is_sequence(digits) or bool(re.fullmatch(r"(19|20)\d\d", digits))
            or len(digits) <= 2)


# --------------------------------------------------------------------------- loading

def load_common_passwords(path: Path) -> frozenset[str]:
    return _load_common(str(path))


@lru_cache(maxsize=4)
def _load_common(path: str) -> frozenset[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read the common-password list {path}: {exc.strerror}", file=path) from None
    return frozenset(_fold(line) for line in text.splitlines() if line.strip() and not line.startswith("#"))


def parse_account_policy(data: Mapping[str, Any] | None, *, directory: Path, source: str) -> AccountPolicy:
    """The policy from the `accounts:` mapping of passwords.yaml (missing keys: the defaults)."""
    data = dict(data or {})
    unknown = set(data) - _FIELDS
    if unknown:
        raise PolicyError(f"{source}: accounts: unknown field(s) {', '.join(sorted(unknown))}", file=source)
    argon = data.pop("argon2id", None) or {}
    if not isinstance(argon, Mapping) or set(argon) - _ARGON2_FIELDS:
        raise PolicyError(f"{source}: accounts: argon2id takes {', '.join(sorted(_ARGON2_FIELDS))}", file=source)
    explicit = "common_passwords" in data
    common_file = data.pop("common_passwords", "common-passwords.txt")
    try:
        values: dict[str, Any] = {}
        for key, value in data.items():
            default = getattr(AccountPolicy, key, None)
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{key} is true or false")
                values[key] = value
            elif isinstance(default, str):
                values[key] = str(value)
            else:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{key} is a whole number")
                values[key] = value
        common = frozenset()
        if common_file:
            path = directory / str(common_file)
            if not explicit and not path.exists():
                from ..profiles import default_policy_dir   # a policy directory without its own list
                path = default_policy_dir() / "common-passwords.txt"
            common = load_common_passwords(path)
        return AccountPolicy(argon2id=Argon2Parameters(**{k: int(v) for k, v in argon.items()}),
                             common_passwords=common, **values)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{source}: accounts: {exc}", file=source) from None


def load_account_policy(policy_dir: str | Path) -> AccountPolicy:
    directory = Path(policy_dir)
    path = directory / "passwords.yaml"
    if not path.exists():
        from ..profiles import default_policy_dir
        directory = default_policy_dir()
        path = directory / "passwords.yaml"
    return _load_policy(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _load_policy(path: str, _mtime: int) -> AccountPolicy:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise PolicyError(f"{path}: not valid YAML", file=path) from None
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: must be a mapping", file=path)
    section = data.get("accounts")
    if section is not None and not isinstance(section, dict):
        raise PolicyError(f"{path}: accounts: must be a mapping", file=path)
    return parse_account_policy(section, directory=Path(path).parent, source=path)
