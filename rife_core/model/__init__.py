"""The RIFE 4.x networks: `rows` (the family as a table), `blocks` (IFBlock, ResConv, encoders),
`warp` (backward warping), `ifnet` (IFNet for any row), `detect` (row from a state dict, strict load).

The names below are loaded on first use, so `rife_core.model.rows` (plain data: which rows exist, what
each can do) imports without torch, e.g. in a worker describing its models or in the API.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "IFNet": "rife_core.model.ifnet",
    "ROWS": "rife_core.model.rows",
    "Row": "rife_core.model.rows",
    "row_for": "rife_core.model.rows",
    "detect_row": "rife_core.model.detect",
    "load_network": "rife_core.model.detect",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
