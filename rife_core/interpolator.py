"""The Interpolator: a loaded RIFE network plus everything around it that callers should not redo.

It owns device and precision choice, padding to the multiple the network needs (and cropping
back), uint8 <-> float conversion, and batching of many pairs x many timesteps into one forward
pass. Every timestep is computed directly (t = 1/3 is never approximated by recursion).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rife_core.model.ifnet import IFNet
from rife_core.weights import WeightsError, load_state_dict, resolve_path

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    pad_multiple: int  # spatial multiple the padded input must have, at scale 1


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when available unless told otherwise (`RIFE_DEVICE` is read by the service's settings)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available (torch.cuda.is_available() is False)")
    return dev


def pad_multiple_for(base: int, scale: float) -> int:
    """Padding multiple at a flow scale: halving the flow resolution doubles the coarsest stride."""
    m = int(round(base / scale))
    return max(m, base)


class Interpolator:
    """A warm RIFE model on one device. Create it once per process; call it for every batch."""

    def __init__(self, net: IFNet, info: ModelInfo, device: torch.device, precision: str = "auto",
                 scale: float = 1.0, ensemble: bool = False, compile: bool = False) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if scale not in (0.25, 0.5, 1.0, 2.0):
            raise ValueError(f"scale must be 0.25, 0.5, 1.0 or 2.0, got {scale!r}")
        if precision == "auto":
            precision = "fp16" if device.type == "cuda" else "fp32"
        if device.type == "cpu" and precision != "fp32":
            raise ValueError("on the CPU only fp32 is supported (fp16/bf16 convolutions are slower there)")
        self.info = info
        self.device = device
        self.precision = precision
        self.scale = scale
        self.ensemble = ensemble
        self.scales = tuple(s / scale for s in (8.0, 4.0, 2.0, 1.0))
        self.pad_multiple = pad_multiple_for(info.pad_multiple, scale)
        self.channels_last = device.type == "cuda"
        net = net.to(device).eval()
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net
        self._forward = torch.compile(net, dynamic=False) if compile else net
        if device.type == "cpu" and torch.get_num_threads() < (os.cpu_count() or 1):
            torch.set_num_threads(os.cpu_count() or 1)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def dtype(self) -> torch.dtype:
        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.precision]

    def padded_size(self, h: int, w: int) -> tuple[int, int]:
        m = self.pad_multiple
        return (h + m - 1) // m * m, (w + m - 1) // m * m

    @torch.inference_mode()
    def interpolate_float(self, img0: torch.Tensor, img1: torch.Tensor, timesteps: Sequence[float]) -> torch.Tensor:
        """img0, img1: float (B, 3, H, W) in [0, 1]. Returns float (B, T, 3, H, W) on the model's device."""
        _check_pair(img0, img1, timesteps)
        b, _, h, w = img0.shape
        t_count = len(timesteps)
        ph, pw = self.padded_size(h, w)
        pad = (0, pw - w, 0, ph - h)
        x0 = F.pad(img0.to(self.device, torch.float32), pad)
        x1 = F.pad(img1.to(self.device, torch.float32), pad)
        # Pairs x timesteps as one batch: sample k*T + j is pair k at timesteps[j].
        x0 = x0.repeat_interleave(t_count, 0)
        x1 = x1.repeat_interleave(t_count, 0)
        ts = torch.tensor(list(timesteps), device=self.device, dtype=torch.float32).repeat(b)
        tplane = ts.view(-1, 1, 1, 1).expand(-1, 1, ph, pw)
        if self.channels_last:
            x0, x1 = (x.contiguous(memory_format=torch.channels_last) for x in (x0, x1))
        if self.device.type == "cuda" and self.precision != "fp32":
            with torch.autocast("cuda", dtype=self.dtype):
                out = self._forward(x0, x1, tplane, self.scales, self.ensemble)
        else:
            out = self._forward(x0, x1, tplane, self.scales, self.ensemble)
        return out[:, :, :h, :w].float().reshape(b, t_count, 3, h, w)

    @torch.inference_mode()
    def interpolate(self, frames0: torch.Tensor, frames1: torch.Tensor, timesteps: Sequence[float]) -> torch.Tensor:
        """frames0, frames1: uint8 RGB (B, H, W, 3), as decoded. Returns uint8 (B, T, H, W, 3) on the CPU."""
        if frames0.dtype != torch.uint8 or frames0.dim() != 4 or frames0.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 (B, H, W, 3), got {tuple(frames0.shape)} {frames0.dtype}")
        img0 = _to_float(frames0, self.device)
        img1 = _to_float(frames1, self.device)
        out = self.interpolate_float(img0, img1, timesteps)
        return out.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 1, 3, 4, 2).contiguous().cpu()


def _to_float(frames: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda" and not frames.is_cuda:
        frames = frames.pin_memory().to(device, non_blocking=True)
    else:
        frames = frames.to(device)
    return frames.permute(0, 3, 1, 2).float().div_(255.0)


def _check_pair(img0: torch.Tensor, img1: torch.Tensor, timesteps: Sequence[float]) -> None:
    if img0.shape != img1.shape or img0.dim() != 4 or img0.shape[1] != 3:
        raise ValueError(f"expected two (B, 3, H, W) batches of equal shape, got {tuple(img0.shape)} and {tuple(img1.shape)}")
    h, w = img0.shape[-2:]
    if h < 2 or w < 2:
        raise ValueError(f"frames must be at least 2x2 pixels, got {w}x{h}")
    if not timesteps or not all(0.0 < float(t) < 1.0 for t in timesteps):
        raise ValueError(f"timesteps must be a non-empty list of values in (0, 1), got {list(timesteps)}")


def build_net(state_dict: dict[str, torch.Tensor], source: str) -> IFNet:
    """Load strictly: a missing, unexpected or mis-shaped key names the file and the key."""
    net = IFNet()
    expected = net.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        raise WeightsError(
            f"{source} is not a RIFE 4.0 checkpoint: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}"
        )
    for k, v in expected.items():
        if state_dict[k].shape != v.shape:
            raise WeightsError(f"{source}: key {k!r} has shape {tuple(state_dict[k].shape)}, expected {tuple(v.shape)}")
    net.load_state_dict(state_dict, strict=True)
    return net


def load_model(name_or_path: str = "rife-4.0", device: str | torch.device | None = None, precision: str = "auto",
               scale: float = 1.0, ensemble: bool = False, compile: bool = False) -> Interpolator:
    """Load a registered model (verified by sha256) or a `flownet.pkl` path. Never touches the network."""
    path = resolve_path(name_or_path)
    net = build_net(load_state_dict(path), str(path))
    name = name_or_path if isinstance(name_or_path, str) and "/" not in name_or_path else str(path)
    info = ModelInfo(name=name, version="4.0", pad_multiple=64)
    return Interpolator(net, info, pick_device(device), precision=precision, scale=scale,
                        ensemble=ensemble, compile=compile)
