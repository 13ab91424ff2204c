"""Import the documentation generators in ``scripts/`` (not a package) by path."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from ._markdown import ROOT


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (cached in ``sys.modules`` under ``docs_<name>``)."""
    module_name = f"docs_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
