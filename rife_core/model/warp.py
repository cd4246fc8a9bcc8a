"""Backward warping: sample an image at positions displaced by an optical flow field.

RIFE estimates intermediate flows F_t->0 and F_t->1 and reconstructs frame t by sampling frames 0 and 1
(and, from 4.7 on, their encoder features) along them: bilinear, `border` padding, `align_corners=True`.
The arithmetic is the published one (pixel flow divided by (size - 1) / 2, added to a linspace grid),
so our output matches it to the last bits. The base grid and divisor depend only on the shape, so they
are built once per (device, size) and reused, in a cache bounded by bytes: a long-lived worker sees
many frame sizes (each scale level of each input size), and one 4K grid alone is about 66 MB.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F

GridKey = tuple[str, int, int]


class GridCache:
    """Least-recently-used (device, H, W) -> (grid, divisor), holding at most `max_bytes` of grids.

    A grid larger than the whole budget is still returned, just not kept.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[GridKey, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, H, W, 2) base grid in grid_sample's [-1, 1] layout, and the (2,) pixel -> grid divisor."""
        key = (str(device), h, w)
        cached = self._entries.get(key)
        if cached is not None:
            self._entries.move_to_end(key)
            return cached
        xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=torch.float32).view(1, w).expand(h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=torch.float32).view(h, 1).expand(h, w)
        grid = torch.stack([xs, ys], dim=-1).unsqueeze(0)
        div = torch.tensor([(w - 1.0) / 2.0, (h - 1.0) / 2.0], device=device, dtype=torch.float32)
        size = _nbytes(grid) + _nbytes(div)
        if size <= self.max_bytes:
            while self._entries and self.bytes + size > self.max_bytes:
                _, (old_grid, old_div) = self._entries.popitem(last=False)
                self.bytes -= _nbytes(old_grid) + _nbytes(old_div)
            self._entries[key] = (grid, div)
            self.bytes += size
        return grid, div


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


# Enough for every scale level of a few frame sizes up to 4K (a 4K job's levels take ~90 MB).
GRIDS = GridCache(max_bytes=256 * 2**20)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample `image` (B, C, H, W) at pixel offsets `flow` (B, 2, H, W; x then y, in pixels).

    Done in float32 whatever the network dtype: in fp16 the grid loses the precision needed on wide
    frames. Returns the image's dtype.
    """
    _, _, h, w = flow.shape
    grid, div = GRIDS.get(h, w, flow.device)
    g = grid + flow.float().permute(0, 2, 3, 1) / div
    out = F.grid_sample(image.float(), g, mode="bilinear", padding_mode="border", align_corners=True)
    return out.to(image.dtype)
