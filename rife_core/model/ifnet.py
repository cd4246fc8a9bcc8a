"""RIFE 4.0's IFNet (Huang et al., "Real-Time Intermediate Flow Estimation for Video Frame Interpolation").

A coarse-to-fine stack of IFBlocks. Block 0 sees the two frames and the timestep plane at 1/8
resolution and predicts the two intermediate flows F_t->0, F_t->1 and a fusion mask; each later
block sees the frames warped by the current flows and predicts a residual at a finer scale (1/4,
1/2, 1). The output is the mask-weighted blend of the two warped frames.

The parameter names match the published checkpoints (`block0.conv0.0.0.weight`, ...) so a
state dict loads strictly, without renaming.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from rife_core.model.warp import warp

# Above this many pixels of residual motion after block 1, the published code restarts with every
# scale doubled (a coarser flow estimate catches larger motion). Checked per sample here.
LARGE_MOTION_PX = 32.0


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=True), nn.PReLU(cout))


def resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear resize by `factor`; a factor of 1 is the identity, so skip the work."""
    if factor == 1:
        return x
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False,
                         recompute_scale_factor=False)


class IFBlock(nn.Module):
    """One refinement step: downsample by `scale`, two strided convs, eight residual convs, a
    transposed conv back up; returns flow (4 channels, in pixels of the full frame) and mask logits."""

    def __init__(self, in_planes: int, c: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(conv(in_planes, c // 2, 2), conv(c // 2, c, 2))
        self.convblock = nn.Sequential(*[conv(c, c) for _ in range(8)])
        self.lastconv = nn.ConvTranspose2d(c, 5, 4, 2, 1)

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        x = resize(x, 1.0 / scale)
        if flow is not None:
            x = torch.cat((x, resize(flow, 1.0 / scale) * (1.0 / scale)), 1)
        feat = self.conv0(x)
        feat = self.convblock(feat) + feat
        tmp = resize(self.lastconv(feat), scale * 2)
        return tmp[:, :4] * (scale * 2), tmp[:, 4:5]


class IFNet(nn.Module):
    """The four-block RIFE 4.0 flow network (widths 192/128/96/64)."""

    widths = (192, 128, 96, 64)

    def __init__(self) -> None:
        super().__init__()
        # block 0: img0, img1 (3 + 3) + timestep (1); later blocks add the mask (1) and the flow (4)
        self.block0 = IFBlock(7, c=self.widths[0])
        self.block1 = IFBlock(8 + 4, c=self.widths[1])
        self.block2 = IFBlock(8 + 4, c=self.widths[2])
        self.block3 = IFBlock(8 + 4, c=self.widths[3])

    @property
    def blocks(self) -> list[IFBlock]:
        return [self.block0, self.block1, self.block2, self.block3]

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, timestep: torch.Tensor,
                scales: tuple[float, ...] = (8, 4, 2, 1), ensemble: bool = False) -> torch.Tensor:
        """img0, img1: (B, 3, H, W) in [0, 1], H and W multiples of 16 * scales[0] (32 * scales[0]
        when the large-motion restart may happen); timestep: (B, 1, H, W) plane. Returns frame t."""
        out, large = self._flow_and_blend(img0, img1, timestep, scales, ensemble, first_pass=True)
        if large is not None and bool(large.any()):
            # Restart the samples with large motion at doubled scales (the published large-motion branch).
            idx = large.nonzero().squeeze(1)
            doubled = tuple(s * 2 for s in scales)
            redo, _ = self._flow_and_blend(img0[idx], img1[idx], timestep[idx], doubled, ensemble, first_pass=False)
            out = out.index_copy(0, idx, redo)
        return out

    def _flow_and_blend(self, img0: torch.Tensor, img1: torch.Tensor, timestep: torch.Tensor,
                        scales: tuple[float, ...], ensemble: bool, first_pass: bool
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One coarse-to-fine pass. On the first pass, also report which samples need the restart;
        the restart's block 0 runs without the ensemble, as in the published code."""
        large: torch.Tensor | None = None
        flow, mask, _ = self._block(0, torch.cat((img0, img1, timestep), 1), None, scales[0],
                                    ensemble and first_pass)
        for i in range(1, len(self.blocks)):
            w0, w1 = warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4])
            x = torch.cat((w0, w1, timestep, mask), 1)
            f, m, raw = self._block(i, x, flow, scales[i], ensemble)
            if i == 1 and first_pass:
                large = (raw[:, :2].abs().amax((1, 2, 3)) > LARGE_MOTION_PX) & (
                    raw[:, 2:4].abs().amax((1, 2, 3)) > LARGE_MOTION_PX)
            flow, mask = flow + f, mask + m
        w0, w1 = warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4])
        alpha = torch.sigmoid(mask)
        return w0 * alpha + w1 * (1 - alpha), large

    def _block(self, i: int, x: torch.Tensor, flow: torch.Tensor | None, scale: float,
               ensemble: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run block i; with `ensemble`, also on the time-reversed input and average (test-time
        ensemble). Returns (flow residual, mask residual, the forward-only flow residual)."""
        f, m = self.blocks[i](x, flow, scale)
        if not ensemble:
            return f, m, f
        # Reverse time: swap the frames, t -> 1 - t, negate the mask, swap the two flows.
        parts = [x[:, 3:6], x[:, 0:3], 1 - x[:, 6:7]] + ([-x[:, 7:8]] if flow is not None else [])
        rflow = torch.cat((flow[:, 2:4], flow[:, :2]), 1) if flow is not None else None
        f1, m1 = self.blocks[i](torch.cat(parts, 1), rflow, scale)
        return (f + torch.cat((f1[:, 2:4], f1[:, :2]), 1)) / 2, (m + (-m1)) / 2, f
