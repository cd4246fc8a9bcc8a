"""Fixtures for the video pipeline tests.

`blend` stands in for the model where a test checks the pipeline (counts, timestamps, errors):
it has the model's signature and is instant. Tests that judge quality or scene cuts use the real
model (`model`, from tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rife_core.video import InterpolationOptions, interpolate_video


class BlendModel:
    """Linear cross-fade with `Interpolator.interpolate`'s signature; counts its calls."""

    device = torch.device("cpu")

    def __init__(self) -> None:
        self.calls: list[tuple[int, list[float]]] = []

    def interpolate(self, frames0: torch.Tensor, frames1: torch.Tensor, timesteps: list[float],
                    on_device: bool = False) -> torch.Tensor:
        assert frames0.dtype in (torch.uint8, torch.uint16) and frames0.dtype == frames1.dtype
        assert frames0.shape == frames1.shape and frames0.shape[-1] == 3
        assert all(0 < t < 1 for t in timesteps)
        self.calls.append((frames0.shape[0], list(timesteps)))
        a, b = frames0.float(), frames1.float()
        if frames0.dtype == torch.uint16:  # deep (10-bit) video: 16-bit RGB in and out
            return torch.stack([(a * (1 - t) + b * t).round().to(torch.int32).to(torch.uint16) for t in timesteps], 1)
        return torch.stack([(a * (1 - t) + b * t).round().to(torch.uint8) for t in timesteps], dim=1)


@pytest.fixture
def blend() -> BlendModel:
    return BlendModel()


class Run:
    """interpolate_video with the logs and progress collected."""

    def __init__(self) -> None:
        self.logs: list[tuple[str, str]] = []
        self.progress: list = []

    def __call__(self, src: Path, dst: Path, model, should_cancel=None, **options):
        return interpolate_video(
            src,
            dst,
            InterpolationOptions(**options),
            model,
            progress=self.progress.append,
            log=lambda level, msg: self.logs.append((level, msg)),
            should_cancel=should_cancel,
        )

    def warnings(self) -> list[str]:
        return [m for level, m in self.logs if level == "WARN"]

    def text(self) -> str:
        return "\n".join(m for _, m in self.logs)


@pytest.fixture
def run() -> Run:
    return Run()
