"""Backward warping: sample an image at positions displaced by an optical flow field.

RIFE estimates intermediate flows F_t->0 and F_t->1 and reconstructs frame t by sampling frames 0 and 1
(and, from 4.7 on, their encoder features) along them: bilinear, `border` padding, `align_corners=True`.
The arithmetic is the published one (pixel flow divided by (size - 1) / 2, added to a linspace grid),
so our output matches it to the last bits. The base grid and divisor depend only on the shape, so they
are built once per (device, size) and reused.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_GRIDS: dict[tuple[str, int, int], tuple[torch.Tensor, torch.Tensor]] = {}


def _grid_and_div(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, H, W, 2) base grid in grid_sample's [-1, 1] layout, and the (2,) pixel -> grid divisor."""
    key = (str(device), h, w)
    cached = _GRIDS.get(key)
    if cached is None:
        xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=torch.float32).view(1, w).expand(h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=torch.float32).view(h, 1).expand(h, w)
        grid = torch.stack([xs, ys], dim=-1).unsqueeze(0)
        div = torch.tensor([(w - 1.0) / 2.0, (h - 1.0) / 2.0], device=device, dtype=torch.float32)
        cached = _GRIDS[key] = (grid, div)
    return cached


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample `image` (B, C, H, W) at pixel offsets `flow` (B, 2, H, W; x then y, in pixels).

    Done in float32 whatever the network dtype: in fp16 the grid loses the precision needed on wide
    frames. Returns the image's dtype.
    """
    _, _, h, w = flow.shape
    grid, div = _grid_and_div(h, w, flow.device)
    g = grid + flow.float().permute(0, 2, 3, 1) / div
    out = F.grid_sample(image.float(), g, mode="bilinear", padding_mode="border", align_corners=True)
    return out.to(image.dtype)
