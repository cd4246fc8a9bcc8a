"""Which RIFE 4.x network a checkpoint is, read from its state dict alone, and a strict load into it.

Users bring `flownet.pkl` files from Practical-RIFE releases, renamed and unversioned. The file says
nothing reliable about its version, but the keys and shapes say which row it is: the number of
IFBlocks and their widths, block 0's input channels (frames + encoder features + timestep), PReLU
parameters or none, `beta` (residual convs) or plain conv stacks, the head's output channels, and the
encoder's layer names. That signature is read first (so a file that is no RIFE 4.x network is refused
with a description of what it is), then every key is checked against the row so a damaged file is
refused naming the key, never loaded partially.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from rife_core.errors import WeightsError
from rife_core.model.ifnet import IFNet
from rife_core.model.rows import ROWS, Row


@dataclass(frozen=True)
class Signature:
    """The architecture facts a state dict shows; equal signatures mean interchangeable weights."""

    widths: tuple[int, ...]
    block0_inputs: int
    activation: str  # "prelu" | "leaky"
    convblock: str  # "conv" | "resconv"
    resconv_groups: int
    head: str  # "deconv" | "pixelshuffle" | "?"
    head_channels: int
    encoder: str  # "none" | "pair" | "sequential" | "head"
    encoder_width: int
    feature_channels: int

    def describe(self) -> str:
        enc = "no encoder" if self.encoder == "none" else (
            f"{self.encoder} encoder ({self.encoder_width} wide, {self.feature_channels} channels out)")
        conv = "residual convs with beta" if self.convblock == "resconv" else "plain convs"
        if self.resconv_groups > 1:
            conv += f" in {self.resconv_groups} groups"
        return (f"{len(self.widths)} IFBlocks of widths {'/'.join(map(str, self.widths))}, block 0 sees "
                f"{self.block0_inputs} channels, {self.activation}, {conv}, {self.head} head with "
                f"{self.head_channels} channels, {enc}")


def row_signature(row: Row) -> Signature:
    return Signature(
        widths=row.widths,
        block0_inputs=row.block_inputs(0),
        activation=row.activation,
        convblock="resconv" if row.convblock == "resconv" else "conv",
        resconv_groups=row.resconv_groups if row.convblock == "resconv" else 1,
        head=row.head,
        head_channels=row.head_channels,
        encoder=row.encoder,
        encoder_width=row.encoder_width,
        feature_channels=row.feature_channels,
    )


_BLOCK_KEY = re.compile(r"^block(\d+)\.")


def read_signature(sd: Mapping[str, torch.Tensor]) -> Signature:
    """Read the signature; each fact is taken from the first block that has the key, so one damaged
    block does not change the answer (the strict check then names the damaged key)."""
    indices = sorted({int(m.group(1)) for k in sd if (m := _BLOCK_KEY.match(k))})
    n = indices[-1] + 1 if indices else 0

    def shape(key: str) -> tuple[int, ...] | None:
        v = sd.get(key)
        return tuple(v.shape) if v is not None else None

    def first(suffix: str) -> tuple[int, ...] | None:
        for i in range(n):
            s = shape(f"block{i}.{suffix}")
            if s is not None:
                return s
        return None

    widths = []
    for i in range(n):
        s1, s0 = shape(f"block{i}.conv0.1.0.weight"), shape(f"block{i}.conv0.0.0.weight")
        widths.append(s1[0] if s1 else (2 * s0[0] if s0 else 0))
    in0 = shape("block0.conv0.0.0.weight")
    prelu = any(re.match(r"block\d+\.(conv0|convblock)\.\d+\.1\.weight$", k) for k in sd)
    resconv = any(re.match(r"block\d+\.convblock\.\d+\.(beta|conv\.weight)$", k) for k in sd)
    groups = 1
    if resconv:
        for i in range(n):
            s = shape(f"block{i}.convblock.0.conv.weight")
            if s and s[1]:
                groups = max(1, widths[i] // s[1])
                break
    deconv, shuffle = first("lastconv.weight"), first("lastconv.0.weight")
    head, head_channels = ("deconv", deconv[1]) if deconv and len(deconv) == 4 else (
        ("pixelshuffle", shuffle[1] // 4) if shuffle and len(shuffle) == 4 else ("?", 0))
    if "encode.cnn0.weight" in sd:
        enc, first_conv, last = "head", shape("encode.cnn0.weight"), shape("encode.cnn3.weight")
    elif "encode.6.weight" in sd:
        enc, first_conv, last = "sequential", shape("encode.0.weight"), shape("encode.6.weight")
    elif "encode.1.weight" in sd:
        enc, first_conv, last = "pair", shape("encode.0.weight"), shape("encode.1.weight")
    else:
        enc, first_conv, last = "none", None, None
    return Signature(
        widths=tuple(widths),
        block0_inputs=in0[1] if in0 and len(in0) == 4 else 0,
        activation="prelu" if prelu else "leaky",
        convblock="resconv" if resconv else "conv",
        resconv_groups=groups,
        head=head,
        head_channels=head_channels,
        encoder=enc,
        encoder_width=first_conv[0] if first_conv else 0,
        feature_channels=last[1] if last and len(last) == 4 else 0,
    )


_BY_SIGNATURE: dict[Signature, Row] = {row_signature(r): r for r in ROWS}
assert len(_BY_SIGNATURE) == len(ROWS), "two rows share a signature: detection would be ambiguous"


def detect_row(sd: Mapping[str, torch.Tensor], source: str = "state dict") -> Row:
    """The row whose signature this state dict has; WeightsError saying what the file is otherwise."""
    if not any(_BLOCK_KEY.match(k) for k in sd):
        keys = ", ".join(list(sd)[:4])
        raise WeightsError(f"{source} is not a RIFE 4.x checkpoint: it has no IFBlock keys (block0.*); "
                           f"its first keys are {keys}")
    sig = read_signature(sd)
    row = _BY_SIGNATURE.get(sig)
    if row is not None:
        return row
    closest = min(ROWS, key=lambda r: _distance(row_signature(r), sig))
    differs = [f for f in Signature.__dataclass_fields__ if getattr(row_signature(closest), f) != getattr(sig, f)]
    hint = " (RIFE v3.x and older are not supported)" if len(sig.widths) < 4 else ""
    raise WeightsError(
        f"{source} is not a RIFE 4.x network we know{hint}: it has {sig.describe()}. The closest, RIFE "
        f"{closest.label}, differs in {', '.join(differs)}. Supported: RIFE 4.0 to 4.26 including the "
        f"lite and heavy variants."
    )


def _distance(a: Signature, b: Signature) -> int:
    return sum(getattr(a, f) != getattr(b, f) for f in Signature.__dataclass_fields__)


def load_network(sd: Mapping[str, torch.Tensor], source: str = "state dict") -> IFNet:
    """Detect the row and load strictly: a missing, unexpected or mis-shaped key is a WeightsError naming
    the file and the key; nothing is ever loaded partially."""
    row = detect_row(sd, source)
    net = IFNet(row)
    expected = net.state_dict()
    label = f"RIFE {row.label}"
    missing = [k for k in expected if k not in sd]
    if missing:
        raise WeightsError(f"{source} looks like {label} but lacks key(s) {', '.join(missing[:5])}"
                           + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    unexpected = [k for k in sd if k not in expected]
    if unexpected:
        raise WeightsError(f"{source} looks like {label} but has unexpected key(s) {', '.join(unexpected[:5])}")
    for k, v in expected.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise WeightsError(f"{source}: key {k!r} has shape {tuple(sd[k].shape)}, expected {tuple(v.shape)} "
                               f"for {label}")
    net.load_state_dict(dict(sd), strict=True)
    return net
