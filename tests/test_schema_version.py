"""pki.store.SCHEMA_VERSION is the newest migration any package registers: a database is refused
only when it is really newer than the code (and every new migration raises the number)."""
from __future__ import annotations

import importlib
import pkgutil

import pki
import seal
import docflow
from pki import store


def test_schema_version_is_the_newest_registered_migration() -> None:
    for package in (pki, seal, docflow):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if module.name.endswith(("store", "schema", "crl_source", "presign")) or ".store" in module.name:
                importlib.import_module(module.name)
    registered = [version for version, *_ in store._MIGRATIONS]
    assert max(registered) == store.SCHEMA_VERSION
    assert len(registered) == len(set(registered))
