"""The RIFE 4.x family as a table: one row per distinct network, each a small frozen description.

Practical-RIFE published some twenty forward passes between 4.0 and 4.26, but they share one design
(a coarse-to-fine stack of IFBlocks, backward warping, a sigmoid fusion mask) and differ in a handful
of choices. A row names exactly those choices; `IFNet(row)` builds the network from the shared blocks.

Versions within a row have the same parameter shapes and the same forward pass: only their trained
weights differ, so the state dict alone tells the row, and the sha256 of a known file tells the version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Activation = Literal["prelu", "leaky"]
# What the eight convolutions of an IFBlock are: plain conv + activation with one skip around the
# whole stack (4.0), plain conv + activation without any skip (4.2), or residual convs whose branch
# is scaled by a learnt per-channel `beta` (4.5 on).
ConvBlock = Literal["residual_stack", "plain", "resconv"]
# How an IFBlock turns its features into flow/mask: a stride-2 transposed conv to 5 channels, then
# resized by scale * 2 (4.0-4.4); or a transposed conv to 4 * k channels and a PixelShuffle(2), at the
# block's own input resolution, then resized by scale (4.5 on).
Head = Literal["deconv", "pixelshuffle"]
# The per-frame feature encoder (4.7 on): a conv and a transposed conv (4.7-4.9), a 4-layer nn.Sequential
# (4.10-4.13.lite), or the `Head` module with named layers that clamps its input (4.13 on).
Encoder = Literal["none", "pair", "sequential", "head"]


@dataclass(frozen=True)
class Row:
    """One network of the RIFE 4.x family. `key` is the first version it was published as."""

    key: str
    versions: tuple[str, ...]
    widths: tuple[int, ...]  # channels of each IFBlock (block0 first)
    activation: Activation = "leaky"
    convblock: ConvBlock = "resconv"
    resconv_groups: int = 1  # grouped 3x3 convs in the residual stack (4.14.lite)
    head: Head = "pixelshuffle"
    head_channels: int = 6  # channels the head predicts: 4 flow + 1 mask (+ 1 unused, or + 8 features)
    encoder: Encoder = "none"
    encoder_width: int = 0  # hidden channels of the encoder
    feature_channels: int = 0  # channels the encoder gives each frame
    pass_features: bool = False  # each block's extra head channels are fed to the next block (4.21 on)
    accumulate_mask: bool = False  # mask logits are a sum of residuals (<= 4.6) or replaced each block
    scales: tuple[float, ...] = (8, 4, 2, 1)  # downsampling of each block at flow scale 1
    pad_multiple: int = 32  # spatial multiple of the padded input at flow scale 1
    ensemble: bool = True  # a test-time (time-reversed) ensemble exists for this network
    large_motion_restart: bool = False  # restart at doubled scales when block 1 sees > 32 px (4.0)

    @property
    def label(self) -> str:
        """The versions it covers, for messages and listings: '4.13-4.19, 4.24'."""
        return ", ".join(_ranges(self.versions))

    @property
    def block_feature_channels(self) -> int:
        """Channels each block passes to the next (the head's output beyond flow and mask)."""
        return self.head_channels - 5 if self.pass_features else 0

    def block_inputs(self, i: int) -> int:
        """Input channels of block i: block 0 sees two frames (+ their features) and the timestep;
        later blocks see the two warped frames (+ warped features), timestep, mask, the flow (4)
        and, when passed, the previous block's features."""
        frames = 2 * (3 + self.feature_channels)
        if i == 0:
            return frames + 1
        return frames + 1 + 1 + 4 + self.block_feature_channels


def _ranges(versions: tuple[str, ...]) -> list[str]:
    """('4.13', '4.14', '4.15', '4.24') -> ['4.13-4.15', '4.24'] (consecutive minor versions merged)."""
    out: list[list[str]] = []
    for v in versions:
        prev = out[-1][-1] if out else None
        if prev and _consecutive(prev, v):
            out[-1].append(v)
        else:
            out.append([v])
    return [g[0] if len(g) == 1 else f"{g[0]}-{g[-1]}" for g in out]


def _consecutive(a: str, b: str) -> bool:
    pa, pb = a.split("."), b.split(".")
    if pa[2:] != pb[2:]:  # a suffix ('lite', 'heavy') must match
        return False
    return pa[0] == pb[0] and int(pb[1]) == int(pa[1]) + 1


_CLASSIC = (192, 128, 96, 64)
_LITE = (128, 96, 64, 48)

ROWS: tuple[Row, ...] = (
    Row("4.0", ("4.0", "4.1"), _CLASSIC, activation="prelu", convblock="residual_stack", head="deconv",
        head_channels=5, accumulate_mask=True,
        large_motion_restart=True),  # the restart doubles the scales; IFNet re-pads just those samples to 64
    Row("4.2", ("4.2", "4.3", "4.4"), _CLASSIC, convblock="plain", head="deconv", head_channels=5,
        accumulate_mask=True),
    Row("4.5", ("4.5",), _CLASSIC, head_channels=5, accumulate_mask=True),
    Row("4.6", ("4.6",), _CLASSIC, accumulate_mask=True),
    Row("4.7", ("4.7", "4.8", "4.9"), _CLASSIC, encoder="pair", encoder_width=16, feature_channels=4),
    Row("4.10", ("4.10", "4.11", "4.12"), _CLASSIC, encoder="sequential", encoder_width=32, feature_channels=8),
    Row("4.12.lite", ("4.12.lite", "4.13.lite"), _LITE, encoder="sequential", encoder_width=32,
        feature_channels=4),
    Row("4.13", ("4.13", "4.14", "4.15", "4.17", "4.18", "4.19", "4.24"), _CLASSIC, encoder="head",
        encoder_width=32, feature_channels=8),
    Row("4.14.lite", ("4.14.lite",), _CLASSIC, resconv_groups=2, encoder="head", encoder_width=32,
        feature_channels=8),
    Row("4.15.lite", ("4.15.lite", "4.16.lite", "4.17.lite"), _LITE, encoder="head", encoder_width=16,
        feature_channels=4),
    Row("4.20", ("4.20",), (384, 192, 96, 48), encoder="head", encoder_width=32, feature_channels=8),
    Row("4.21", ("4.21", "4.22", "4.23"), (256, 192, 96, 48), head_channels=13, pass_features=True,
        encoder="head", encoder_width=32, feature_channels=8, ensemble=False),
    Row("4.22.lite", ("4.22.lite",), (192, 128, 64, 32), head_channels=13, pass_features=True,
        encoder="head", encoder_width=16, feature_channels=4, ensemble=False),
    Row("4.25", ("4.25", "4.26"), (192, 128, 96, 64, 32), head_channels=13, pass_features=True,
        encoder="head", encoder_width=16, feature_channels=4, scales=(16, 8, 4, 2, 1), pad_multiple=64,
        ensemble=False),
    Row("4.25.lite", ("4.25.lite",), (192, 128, 96, 64, 24), head_channels=13, pass_features=True,
        encoder="head", encoder_width=16, feature_channels=4, scales=(32, 16, 8, 4, 1), pad_multiple=128,
        ensemble=False),
    Row("4.25.heavy", ("4.25.heavy",), (384, 256, 192, 128, 64), head_channels=13, pass_features=True,
        encoder="head", encoder_width=16, feature_channels=4, scales=(16, 8, 4, 2, 1), pad_multiple=64,
        ensemble=False),
    Row("4.26.heavy", ("4.26.heavy",), (192, 128, 96, 64, 32), head_channels=13, pass_features=True,
        encoder="head", encoder_width=16, feature_channels=16, scales=(16, 8, 4, 2, 1), pad_multiple=64,
        ensemble=False),
)

ROWS_BY_KEY: dict[str, Row] = {r.key: r for r in ROWS}
ROW_OF_VERSION: dict[str, Row] = {v: r for r in ROWS for v in r.versions}


def row_for(version_or_key: str) -> Row:
    """The row of a version ('4.17' -> row '4.13') or of a row key."""
    v = version_or_key.removeprefix("v").removeprefix("rife-")
    try:
        return ROW_OF_VERSION[v]
    except KeyError:
        raise KeyError(f"unknown RIFE version {version_or_key!r}; known: {', '.join(ROW_OF_VERSION)}") from None
