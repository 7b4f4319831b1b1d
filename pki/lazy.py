"""Public names of a package imported on first use (PEP 562), so that importing the package — and
the CLI's start — stays light.  One helper for every package of yinxin:

    _LAZY = {"TimestampAuthority": "authority", …}      # name -> submodule that defines it
    __all__ = sorted(_LAZY)
    __getattr__ = lazy_exports(__name__, _LAZY)

This module imports nothing but importlib."""
from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """The module-level `__getattr__` of `package`: `table[name]` is the submodule (relative to the
    package) whose attribute `name` is returned; any other name raises AttributeError."""
    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f".{module}", package), name)
    return __getattr__
