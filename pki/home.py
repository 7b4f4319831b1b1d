"""A yinxin home directory: the database, CA key files, evidence, configuration.

Layout::

    HOME/config.yaml        optional: database, policy_dir, default_ca
    HOME/yinxin.db          SQLite (WAL) unless a database URL is configured
    HOME/cas/NAME/ca.key.pem  the CA's private key, PBES2-encrypted
    HOME/evidence/SHA256    application evidence, stored by digest
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .clock import SYSTEM_CLOCK, Clock
from .errors import PolicyError
from .profiles import ProfileSet, load_profiles
from .rand import SYSTEM_RANDOM, RandomSource
from .store import Store, sqlite_url


@dataclass
class Home:
    path: Path
    store: Store
    profiles: ProfileSet
    clock: Clock = SYSTEM_CLOCK
    rand: RandomSource = SYSTEM_RANDOM
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, database: str | None = None,
             policy_dir: str | os.PathLike[str] | None = None, clock: Clock = SYSTEM_CLOCK,
             rand: RandomSource = SYSTEM_RANDOM) -> "Home":
        """Open (creating if needed) a home; `database` overrides the configured URL."""
        home = Path(path).expanduser()
        home.mkdir(parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        config: dict[str, Any] = {}
        config_file = home / "config.yaml"
        if config_file.exists():
            try:
                loaded = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError:
                raise PolicyError(f"{config_file}: not valid YAML", file=str(config_file)) from None
            if not isinstance(loaded, dict):
                raise PolicyError(f"{config_file}: must be a mapping", file=str(config_file))
            config = loaded
        url = database or os.environ.get("YINXIN_DATABASE") or config.get("database") \
            or sqlite_url(str(home / "yinxin.db"))
        # pki's own modules with tables or indexes register their migrations on import: import them
        # before the store migrates, so the schema never depends on which command ran first
        from . import crl_source, presign  # noqa: F401
        from .accounts import store as _accounts  # noqa: F401  (accounts, sessions, signed decisions)
        from .accounts import tokens as _tokens  # noqa: F401  (API tokens, migration 800)
        from .tsa import tables as _tsa_tables  # noqa: F401  (timestamp authorities, migrations 5xx)
        policies = policy_dir or os.environ.get("YINXIN_POLICY_DIR") or config.get("policy_dir")
        return cls(path=home, store=Store.open(url), profiles=load_profiles(policies), clock=clock,
                   rand=rand, config=config)

    def ca_dir(self, name: str) -> Path:
        return self.path / "cas" / name

    def evidence_dir(self) -> Path:
        return self.path / "evidence"

    @property
    def default_ca(self) -> str | None:
        value = self.config.get("default_ca")
        return str(value) if value else None
