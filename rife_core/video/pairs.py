"""Turn the stream of input frames into the stream of output frames.

Consecutive frames form pairs; pairs are collected into batches of `batch_size` and the model
computes all n in-between frames of a batch in one call (each t = k/(n+1) directly, no recursion).
A pair that straddles a scene cut never reaches the model: its slots repeat the nearer real frame
(t < 0.5 the earlier one, otherwise the later one), because warping one shot into another only
makes a ghostly mix. With `loop` the last frame is paired with the first as well, and the output
stops after those in-between frames, so that playing it on repeat shows the first frame once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from rife_core.video.timing import timesteps

if TYPE_CHECKING:
    from rife_core.interpolator import Interpolator


@dataclass
class _Pair:
    first: np.ndarray
    second: np.ndarray
    cut: bool


@dataclass
class PairStats:
    """Filled in while frames flow; read by the pipeline for progress and the result."""

    input_frames: int = 0
    generated_frames: int = 0
    model_calls: int = 0
    inference_s: float = 0.0
    cuts: list[int] = field(default_factory=list)


def interpolate_pairs(
    frames: Iterable[tuple[np.ndarray, bool]],
    model: Interpolator,
    num_frames: int,
    batch_size: int,
    loop: bool = False,
    loop_cut: Callable[[], bool] | None = None,
    before_batch: Callable[[], None] | None = None,
    stats: PairStats | None = None,
    on_device: bool = False,
) -> Iterator[np.ndarray | torch.Tensor]:
    """Yield the output frames for `frames`, an iterable of (rgb frame, cut before this frame).

    With `on_device`, generated frames stay on the model's device (uint8 (H, W, 3) tensors) for an
    encoder that converts them there; input frames are always yielded as the arrays they came as.

    `loop_cut` is asked at the end, when `loop` is set, whether last -> first is a cut.
    `before_batch` runs before every model call (the pipeline checks for cancellation there).
    """
    stats = stats if stats is not None else PairStats()
    ts = timesteps(num_frames)
    pending: list[_Pair] = []
    first: np.ndarray | None = None
    previous: np.ndarray | None = None

    def run(batch: list[_Pair]) -> Iterator[np.ndarray]:
        if before_batch is not None:
            before_batch()
        todo = [p for p in batch if not p.cut]
        generated: Iterator[np.ndarray | torch.Tensor] = iter(())
        if todo:
            start = time.perf_counter()
            first = torch.from_numpy(np.stack([p.first for p in todo]))
            second = torch.from_numpy(np.stack([p.second for p in todo]))
            with torch.inference_mode():
                if on_device:
                    result: np.ndarray | torch.Tensor = model.interpolate(first, second, list(ts), on_device=True)
                else:
                    result = model.interpolate(first, second, list(ts)).cpu().numpy()
            stats.inference_s += time.perf_counter() - start
            stats.model_calls += 1
            generated = iter(result)
        for pair in batch:
            yield pair.first
            if pair.cut:
                for t in ts:
                    yield pair.first if t < 0.5 else pair.second
            else:
                yield from next(generated)
            stats.generated_frames += num_frames

    for index, (frame, cut) in enumerate(frames):
        stats.input_frames = index + 1
        if previous is None:
            first = frame
        else:
            if cut:
                stats.cuts.append(index)
            pending.append(_Pair(previous, frame, cut))
            if len(pending) == batch_size:
                yield from run(pending)
                pending = []
        previous = frame
    if previous is None:
        return
    if loop and first is not None and stats.input_frames >= 2:
        wrap_cut = bool(loop_cut()) if loop_cut is not None else False
        if wrap_cut:
            stats.cuts.append(0)
        pending.append(_Pair(previous, first, wrap_cut))
        for start in range(0, len(pending), batch_size):
            yield from run(pending[start : start + batch_size])
    else:
        if pending:
            yield from run(pending)
        yield previous
