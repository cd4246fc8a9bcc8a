"""The building blocks every RIFE 4.x network is made of: conv layers, the IFBlock, the feature encoders.

Attribute names follow the published modules (`conv0`, `convblock`, `lastconv`, `beta`, `encode.cnn0`,
...) so checkpoints load strictly without renaming. Each block is parameterised by its row (rows.py)
rather than copied per version.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from rife_core.model.rows import Row


def resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear resize by `factor`, as the published code calls it (scale_factor given, not recomputed:
    the sampling positions use `factor` itself). A factor of 1 is the identity, so skip the work."""
    if factor == 1:
        return x
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def activation(kind: str, channels: int) -> nn.Module:
    return nn.PReLU(channels) if kind == "prelu" else nn.LeakyReLU(0.2, inplace=True)


def conv(cin: int, cout: int, stride: int = 1, act: str = "leaky") -> nn.Sequential:
    """3x3 conv + activation (keys `.0.weight`, and `.1.weight` for PReLU)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=True), activation(act, cout))


class ResConv(nn.Module):
    """x + beta * conv(x), then LeakyReLU: a residual conv whose branch starts at a learnt strength."""

    def __init__(self, c: int, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1, groups=groups)
        self.beta = nn.Parameter(torch.ones((1, c, 1, 1)))
        self.relu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) * self.beta + x)


class IFBlock(nn.Module):
    """One coarse-to-fine step of the intermediate flow estimation.

    The input (frames or warped frames, their features, timestep, mask) is downsampled by `scale`, two
    stride-2 convs and eight 3x3 convs process it at 1/(4*scale), and the head upsamples the result back
    to full resolution. Returns the flow F_t->0, F_t->1 (4 channels, in full-frame pixels), the mask
    logits (1 channel) and, for rows that pass them on, features for the next block.
    """

    def __init__(self, row: Row, in_planes: int, c: int) -> None:
        super().__init__()
        self.row = row
        act = row.activation
        self.conv0 = nn.Sequential(conv(in_planes, c // 2, 2, act), conv(c // 2, c, 2, act))
        if row.convblock == "resconv":
            self.convblock = nn.Sequential(*[ResConv(c, row.resconv_groups) for _ in range(8)])
        else:
            self.convblock = nn.Sequential(*[conv(c, c, 1, act) for _ in range(8)])
        if row.head == "deconv":
            self.lastconv: nn.Module = nn.ConvTranspose2d(c, row.head_channels, 4, 2, 1)
        else:
            self.lastconv = nn.Sequential(nn.ConvTranspose2d(c, 4 * row.head_channels, 4, 2, 1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None, scale: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        x = resize(x, 1.0 / scale)
        if flow is not None:
            # Flow is in pixels: downsampling the field by `scale` shrinks its vectors by the same factor.
            x = torch.cat((x, resize(flow, 1.0 / scale) / scale), 1)
        # The first conv reads the frames and the flow themselves, and runs in fp32 even under the CPU's bf16
        # autocast: bf16's 8-bit mantissa would quantise them (pixel levels, flow to 1/4 px at 50 px), which
        # cost 0.03 dB on bikes.mp4's fast motion; in fp32 the cost is gone (bench/RESULTS.md) and the
        # conv is cheap (few input channels, stride 2). A no-op without autocast.
        with torch.autocast("cpu", enabled=False):
            feat = self.conv0[0](x)
        feat = self.conv0[1](feat)
        if self.row.convblock == "residual_stack":
            feat = self.convblock(feat) + feat
        else:
            feat = self.convblock(feat)
        # The head's output takes the input's dtype: under the CPU's bf16 autocast the convs yield bf16,
        # and the flow must be resized, scaled and accumulated over the blocks in fp32 (in bf16 it cost
        # 0.06 dB on bikes.mp4's fast motion). A no-op wherever the network runs in one dtype.
        tmp = self.lastconv(feat).to(x.dtype)
        # The deconv head outputs half the block's input resolution, the PixelShuffle head all of it.
        up = scale * 2 if self.row.head == "deconv" else scale
        tmp = resize(tmp, up)
        passed = tmp[:, 5:] if self.row.pass_features else None
        return tmp[:, :4] * up, tmp[:, 4:5], passed


class Head(nn.Module):
    """The named-layer feature encoder of 4.13 on: three convs at half resolution, a transposed conv back
    to full resolution; clamps its input to [0, 1] first, as published."""

    def __init__(self, width: int, out: int) -> None:
        super().__init__()
        self.cnn0 = nn.Conv2d(3, width, 3, 2, 1)
        self.cnn1 = nn.Conv2d(width, width, 3, 1, 1)
        self.cnn2 = nn.Conv2d(width, width, 3, 1, 1)
        self.cnn3 = nn.ConvTranspose2d(width, out, 4, 2, 1)
        self.relu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.cnn0(x.clamp(0.0, 1.0)))
        x = self.relu(self.cnn1(x))
        x = self.relu(self.cnn2(x))
        return self.cnn3(x)


def encoder(row: Row) -> nn.Module | None:
    """The per-frame feature encoder of a row (None before 4.7). Its output is computed once per frame
    and shared by every timestep and both pairs the frame belongs to."""
    w, out = row.encoder_width, row.feature_channels
    if row.encoder == "pair":
        return nn.Sequential(nn.Conv2d(3, w, 3, 2, 1), nn.ConvTranspose2d(w, out, 4, 2, 1))
    if row.encoder == "sequential":
        return nn.Sequential(
            nn.Conv2d(3, w, 3, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, w, 3, 1, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, w, 3, 1, 1), nn.LeakyReLU(0.2, True),
            nn.ConvTranspose2d(w, out, 4, 2, 1),
        )
    if row.encoder == "head":
        return Head(w, out)
    return None
