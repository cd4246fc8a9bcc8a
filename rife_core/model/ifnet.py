"""IFNet (Huang et al., "Real-Time Intermediate Flow Estimation for Video Frame Interpolation"), for any
row of the RIFE 4.x family.

A coarse-to-fine stack of IFBlocks. Block 0 sees the two frames (and, from 4.7 on, their encoder
features) with the timestep plane at 1/scales[0] resolution and predicts the intermediate flows
F_t->0, F_t->1 and a fusion mask; each later block sees the frames (and features) warped by the current
flows and predicts a residual flow at a finer scale. The output is the mask-weighted blend of the two
warped frames.

The parameter names match the published checkpoints (`block0.conv0.0.0.weight`, `encode.cnn0.weight`,
...) so a state dict loads strictly, without renaming.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from rife_core.model.blocks import IFBlock, encoder
from rife_core.model.rows import ROWS_BY_KEY, Row
from rife_core.model.warp import warp

# Above this many pixels of residual motion after block 1, the published 4.0 code restarts with every
# scale doubled (a coarser flow estimate catches larger motion). Checked per sample here.
LARGE_MOTION_PX = 32.0


def _swap(flow: torch.Tensor) -> torch.Tensor:
    """F_t->0, F_t->1 -> F_t->1, F_t->0: the flows of the time-reversed problem."""
    return torch.cat((flow[:, 2:4], flow[:, :2]), 1)


class IFNet(nn.Module):
    """The flow network of one row; `IFNet()` is RIFE 4.0 (widths 192/128/96/64)."""

    def __init__(self, row: Row | None = None) -> None:
        super().__init__()
        self.row = row = row or ROWS_BY_KEY["4.0"]
        for i, c in enumerate(row.widths):
            self.add_module(f"block{i}", IFBlock(row, row.block_inputs(i), c))
        enc = encoder(row)
        if enc is not None:
            self.encode = enc

    @property
    def blocks(self) -> list[IFBlock]:
        return [getattr(self, f"block{i}") for i in range(len(self.row.widths))]

    @property
    def has_encoder(self) -> bool:
        return self.row.encoder != "none"

    def features(self, img: torch.Tensor) -> torch.Tensor | None:
        """Encoder features of frames (B, 3, H, W); None for rows without an encoder."""
        return self.encode(img) if self.has_encoder else None

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, timestep: torch.Tensor,
                scales: tuple[float, ...] | None = None, ensemble: bool = False,
                f0: torch.Tensor | None = None, f1: torch.Tensor | None = None) -> torch.Tensor:
        """img0, img1: (B, 3, H, W) in [0, 1], H and W multiples of the row's pad multiple at these
        scales; timestep: (B, 1, H, W) plane; f0, f1: the frames' encoder features when already
        computed (else computed here). Returns frame t, (B, 3, H, W)."""
        scales = tuple(scales if scales is not None else self.row.scales)
        if ensemble and not self.row.ensemble:
            raise ValueError(f"RIFE {self.row.label} has no test-time ensemble")
        if self.has_encoder and (f0 is None or f1 is None):
            f0, f1 = self.features(img0), self.features(img1)  # as published: of the frames as given
        img0, img1 = img0.clamp(0.0, 1.0), img1.clamp(0.0, 1.0)
        out, large = self._flow_and_blend(img0, img1, f0, f1, timestep, scales, ensemble, first_pass=True)
        if large is not None and bool(large.any()):
            # Restart the samples with large motion at doubled scales (the published large-motion branch).
            idx = large.nonzero().squeeze(1)
            doubled = tuple(s * 2 for s in scales)
            redo = self._restart(img0[idx], img1[idx], timestep[idx], doubled, ensemble,
                                 f0[idx] if f0 is not None else None, f1[idx] if f1 is not None else None)
            out = out.index_copy(0, idx, redo)
        return out

    def _restart(self, img0: torch.Tensor, img1: torch.Tensor, timestep: torch.Tensor, scales: tuple[float, ...],
                 ensemble: bool, f0: torch.Tensor | None, f1: torch.Tensor | None) -> torch.Tensor:
        """The large-motion pass, on inputs zero-padded to the multiple the doubled scales need.

        Callers pad every frame only to the multiple of the normal scales (32 for 4.0 at scale 1) and
        only the few samples that restart pay for more: the published code has to pad everything to 64
        up front for the rare restart. Result: the published function at the padding it could run with.
        """
        h, w = img0.shape[-2:]
        m = int(scales[0] * 4)  # block 0 downsamples by scales[0], then two stride-2 convs
        ph, pw = -(-h // m) * m, -(-w // m) * m
        if (ph, pw) != (h, w):
            pad = (0, pw - w, 0, ph - h)
            img0, img1 = F.pad(img0, pad), F.pad(img1, pad)
            timestep = timestep[:, :, :1, :1].expand(-1, -1, ph, pw)  # a plane of t over the padding too
            if f0 is not None and f1 is not None:  # features of the padded frames, as published
                f0, f1 = self.features(img0), self.features(img1)
        redo, _ = self._flow_and_blend(img0, img1, f0, f1, timestep, scales, ensemble, first_pass=False)
        return redo[..., :h, :w]

    def _flow_and_blend(self, img0: torch.Tensor, img1: torch.Tensor, f0: torch.Tensor | None,
                        f1: torch.Tensor | None, timestep: torch.Tensor, scales: tuple[float, ...],
                        ensemble: bool, first_pass: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One coarse-to-fine pass. On the first pass of 4.0, also report which samples need the restart;
        the restart's block 0 runs without the ensemble, as in the published code."""
        row = self.row
        large: torch.Tensor | None = None
        flow, mask, feat, _ = self._block(0, _Inputs(img0, img1, f0, f1, timestep), None, scales[0],
                                          ensemble and first_pass)
        for i in range(1, len(scales)):
            wf0 = warp(f0, flow[:, :2]) if f0 is not None else None
            wf1 = warp(f1, flow[:, 2:4]) if f1 is not None else None
            x = _Inputs(warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4]), wf0, wf1, timestep, mask, feat)
            fd, m, feat, raw = self._block(i, x, flow, scales[i], ensemble)
            if i == 1 and first_pass and row.large_motion_restart:
                large = (raw[:, :2].abs().amax((1, 2, 3)) > LARGE_MOTION_PX) & (
                    raw[:, 2:4].abs().amax((1, 2, 3)) > LARGE_MOTION_PX)
            flow = flow + fd
            mask = mask + m if row.accumulate_mask else m
        w0, w1 = warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4])
        alpha = torch.sigmoid(mask)
        return w0 * alpha + w1 * (1 - alpha), large

    def _block(self, i: int, x: _Inputs, flow: torch.Tensor | None, scale: float, ensemble: bool
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Run block i; with `ensemble`, also on the time-reversed input and average (test-time
        ensemble). Returns (flow residual, mask, passed features, the forward-only flow residual)."""
        block = self.blocks[i]
        f, m, feat = block(x.cat(), flow, scale)
        if not ensemble:
            return f, m, feat, f
        # Reverse time: swap the frames (and features), t -> 1 - t, negate the mask, swap the two flows.
        f_r, m_r, _ = block(x.reversed().cat(), _swap(flow) if flow is not None else None, scale)
        return (f + _swap(f_r)) / 2, (m + (-m_r)) / 2, feat, f


class _Inputs:
    """What a block sees, in the published channel order: frame 0, frame 1, their features, timestep,
    mask, the previous block's features."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, fa: torch.Tensor | None, fb: torch.Tensor | None,
                 t: torch.Tensor, mask: torch.Tensor | None = None, feat: torch.Tensor | None = None) -> None:
        self.a, self.b, self.fa, self.fb, self.t, self.mask, self.feat = a, b, fa, fb, t, mask, feat

    def cat(self) -> torch.Tensor:
        parts = [self.a, self.b, self.fa, self.fb, self.t, self.mask, self.feat]
        return torch.cat([p for p in parts if p is not None], 1)

    def reversed(self) -> _Inputs:
        mask = -self.mask if self.mask is not None else None
        return _Inputs(self.b, self.a, self.fb, self.fa, 1 - self.t, mask, self.feat)
