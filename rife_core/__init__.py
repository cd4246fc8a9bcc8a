"""rife_core: the RIFE model and the video pipeline. No Redis, no HTTP: usable as a library and from the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rife_core.interpolator import Interpolator, load_model

__all__ = ["Interpolator", "load_model"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import rife_core.errors` (done by the API) never pulls in torch.
    if name in ("Interpolator", "load_model"):
        from rife_core import interpolator

        return getattr(interpolator, name)
    raise AttributeError(name)
