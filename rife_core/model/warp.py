"""Backward warping: sample an image at positions displaced by an optical flow field.

RIFE estimates intermediate flows F_t->0 and F_t->1 and reconstructs frame t by sampling frames 0 and 1
along them (bilinear, `border` padding, `align_corners=True`, exactly as the published code). The base
sampling grid depends only on the shape, so it is built once per (device, dtype, size) and reused.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_GRIDS: dict[tuple[str, torch.dtype, int, int], torch.Tensor] = {}


def _base_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    key = (str(device), dtype, h, w)
    grid = _GRIDS.get(key)
    if grid is None:
        xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype).view(1, 1, w).expand(1, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype).view(1, h, 1).expand(1, h, w)
        grid = torch.stack([xs[0], ys[0]], dim=-1).unsqueeze(0)  # (1, H, W, 2) in grid_sample's layout
        _GRIDS[key] = grid
    return grid


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample `image` (B, C, H, W) at pixel offsets `flow` (B, 2, H, W; x then y, in pixels).

    Flow is converted to grid_sample's [-1, 1] coordinates (a pixel step is 2 / (size - 1) with
    align_corners=True). Done in float32 whatever the network dtype: in fp16 the grid loses the
    precision needed on wide frames.
    """
    b, _, h, w = flow.shape
    in_dtype = image.dtype
    flow32 = flow.float()
    scale = torch.tensor([2.0 / (w - 1.0), 2.0 / (h - 1.0)], device=flow.device, dtype=torch.float32)
    grid = _base_grid(h, w, flow.device, torch.float32) + flow32.permute(0, 2, 3, 1) * scale
    out = F.grid_sample(image.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.to(in_dtype)
