"""RGB -> YUV 4:2:0 on the model's device, so the encoder's CPU is left to x264.

On a GPU worker, swscale's RGB -> yuv420p conversion of every output frame is the most expensive
thing the encode thread does besides x264 itself (about 8 ms per 1080p frame on one core): it caps
the output rate well below what the model produces. The same arithmetic is a few cheap kernels on
the GPU. The matrix and range are the ones the encoder tags the output with (the input's own), as
in the swscale path, so colours round-trip the same way.
"""

from __future__ import annotations

import numpy as np
import torch

# (Kr, Kb) of each AVColorSpace the encoder can tag; anything else is treated as BT.601, as swscale does.
_KR_KB = {
    1: (0.2126, 0.0722),  # BT.709
    4: (0.30, 0.11),  # FCC
    5: (0.299, 0.114),  # BT.470BG (BT.601 625)
    6: (0.299, 0.114),  # SMPTE 170M (BT.601 525)
    7: (0.212, 0.087),  # SMPTE 240M
    9: (0.2627, 0.0593),  # BT.2020 non-constant
    10: (0.2627, 0.0593),  # BT.2020 constant (converted as non-constant, as swscale does)
}
_BT601 = (0.299, 0.114)


def rgb_to_yuv420p(rgb: torch.Tensor, colorspace: int, full_range: bool) -> torch.Tensor:
    """uint8 RGB (H, W, 3), H and W even, on any device -> uint8 yuv420p planes (H*W*3/2,): Y, then U
    (Cb), then V (Cr), each row-major. Chroma is the mean of each 2x2 block (centre siting)."""
    h, w, _ = rgb.shape
    if h % 2 or w % 2:
        raise ValueError(f"yuv420p needs an even size, got {w}x{h}")
    kr, kb = _KR_KB.get(colorspace, _BT601)
    kg = 1.0 - kr - kb
    x = rgb.float()
    luma = torch.tensor([kr, kg, kb], device=x.device, dtype=torch.float32)
    y = x @ luma
    quads = x.view(h // 2, 2, w // 2, 2, 3).mean((1, 3))
    yq = quads @ luma
    cb = (quads[..., 2] - yq) / (2.0 * (1.0 - kb))
    cr = (quads[..., 0] - yq) / (2.0 * (1.0 - kr))
    if full_range:
        planes = (y, cb + 128.0, cr + 128.0)
    else:
        planes = (16.0 + y * (219.0 / 255.0), 128.0 + cb * (224.0 / 255.0), 128.0 + cr * (224.0 / 255.0))
    return torch.cat([p.round().clamp_(0, 255).to(torch.uint8).reshape(-1) for p in planes])


class DeviceYuv420p:
    """Converts frames for one Encoder on `device`, on a CUDA stream of its own so the conversion
    overlaps the model's kernels instead of queueing behind them."""

    def __init__(self, device: torch.device, colorspace: int, full_range: bool) -> None:
        self.device = device
        self.colorspace = colorspace
        self.full_range = full_range
        self._stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray | torch.Tensor) -> np.ndarray:
        """uint8 (H, W, 3) RGB, an array or a finished tensor on any device -> uint8 (H*W*3/2,) yuv420p
        planes on the CPU."""
        src = rgb.contiguous() if isinstance(rgb, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(rgb))
        if self._stream is None:
            return rgb_to_yuv420p(src.cpu(), self.colorspace, self.full_range).numpy()
        with torch.cuda.stream(self._stream):
            out = rgb_to_yuv420p(src.to(self.device), self.colorspace, self.full_range)
            return out.cpu().numpy()  # .cpu() waits for this stream only
