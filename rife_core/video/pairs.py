"""Turn the stream of timed input frames into the stream of output frames.

Consecutive frames form pairs; the output clock (`schedule`) says which output frames fall between
them and at which t. Pairs are collected into batches of `batch_size` and the model computes all
in-between frames of a batch in one call (each t directly, no recursion): pairs with the same
timesteps (every pair of a constant-rate input) go as one (pairs x timesteps) call, as before;
pairs with different timesteps (variable rate, `target_fps`, dedup) go as one call with a t per
sample where the model has `interpolate_each`, else one call per distinct t.
A pair that straddles a scene cut never reaches the model: its slots repeat the nearer real frame
(t < 0.5 the earlier one, otherwise the later one), because warping one shot into another only
makes a ghostly mix. With `loop` the last frame is paired with the first as well, and the output
stops after those in-between frames, so that playing it on repeat shows the first frame once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
import torch

from rife_core.video.schedule import EndRule, OutputClock

if TYPE_CHECKING:
    from rife_core.interpolator import Interpolator

Frame = np.ndarray | torch.Tensor


@dataclass
class _Pair:
    first: np.ndarray
    second: np.ndarray
    cut: bool
    ts: list[Fraction] = field(default_factory=list)  # one per output frame; 0 = `first` itself
    index: int = 0  # input frame number of `first`


@dataclass
class PairStats:
    """Filled in while frames flow; read by the pipeline for progress and the result."""

    input_frames: int = 0
    generated_frames: int = 0  # output frames that are not an input frame at its own time
    kept_frames: int = 0  # input frames shown at their own time
    held_frames: int = 0  # output frames past the last input frame, which repeat it
    model_calls: int = 0
    inference_s: float = 0.0
    last_time: Fraction = Fraction(0)  # of the last input frame, from the first
    cuts: list[int] = field(default_factory=list)


def _run_model(model: Interpolator, todo: list[_Pair], on_device: bool) -> list[list[Frame]]:
    """The generated frames of each pair in `todo`, in its timestep order (t = 0 slots excluded)."""
    first = [p.ts for p in todo]
    ts_lists = [[float(t) for t in ts if t] for ts in first]
    if all(ts == ts_lists[0] for ts in ts_lists):
        a = torch.from_numpy(np.stack([p.first for p in todo]))
        b = torch.from_numpy(np.stack([p.second for p in todo]))
        out = _call(model.interpolate, a, b, ts_lists[0], on_device)
        return [list(out[i]) for i in range(len(todo))]
    samples = [(i, t) for i, ts in enumerate(ts_lists) for t in ts]
    results: list[list[Frame]] = [[] for _ in todo]
    each = getattr(model, "interpolate_each", None)
    if each is not None:
        a = torch.from_numpy(np.stack([todo[i].first for i, _ in samples]))
        b = torch.from_numpy(np.stack([todo[i].second for i, _ in samples]))
        out = _call(each, a, b, [t for _, t in samples], on_device)
        for (i, _), frame in zip(samples, out, strict=True):
            results[i].append(frame)
        return results
    by_t: dict[float, list[int]] = {}
    for i, t in samples:
        by_t.setdefault(t, []).append(i)
    made: dict[tuple[int, float], Frame] = {}
    for t, pairs in by_t.items():
        a = torch.from_numpy(np.stack([todo[i].first for i in pairs]))
        b = torch.from_numpy(np.stack([todo[i].second for i in pairs]))
        out = _call(model.interpolate, a, b, [t], on_device)
        for row, i in enumerate(pairs):
            made[(i, t)] = out[row][0]
    for i, t in samples:
        results[i].append(made[(i, t)])
    return results


def _call(fn: Callable[..., torch.Tensor], a: torch.Tensor, b: torch.Tensor, ts: list[float], on_device: bool):
    with torch.inference_mode():
        if on_device:
            return fn(a, b, ts, on_device=True)
        return fn(a, b, ts).cpu().numpy()


def interpolate_timed(
    frames: Iterable[tuple[np.ndarray, Fraction, bool]],
    model: Interpolator,
    clock: OutputClock,
    end: EndRule,
    batch_size: int,
    loop: bool = False,
    loop_cut: Callable[[], bool] | None = None,
    before_batch: Callable[[], None] | None = None,
    stats: PairStats | None = None,
    on_device: bool = False,
) -> Iterator[Frame]:
    """Yield the output frames for `frames`, an iterable of (rgb frame, its time in seconds from the
    first frame, cut before this frame), as `clock` places them; `end` says where the output stops.

    With `on_device`, generated frames stay on the model's device (uint8 (H, W, 3) tensors) for an
    encoder that converts them there; input frames are always yielded as the arrays they came as.
    `loop_cut` is asked at the end, when `loop` is set, whether last -> first is a cut; the wrap pair
    lasts `end.last_duration`. `before_batch` runs before every model call (the pipeline checks for
    cancellation there). A batch holds `batch_size` pairs that have frames to make.
    """
    stats = stats if stats is not None else PairStats()
    pending: list[_Pair] = []
    busy = 0  # pairs in `pending` that have in-between frames
    first: np.ndarray | None = None
    previous: np.ndarray | None = None
    previous_time = Fraction(0)

    def run(batch: list[_Pair]) -> Iterator[Frame]:
        todo = [p for p in batch if not p.cut and any(p.ts)]
        generated: Iterator[list[Frame]] = iter(())
        if before_batch is not None:
            before_batch()
        if todo:
            start = time.perf_counter()
            generated = iter(_run_model(model, todo, on_device))
            stats.inference_s += time.perf_counter() - start
            stats.model_calls += 1
        for pair in batch:
            made = iter(next(generated)) if not pair.cut and any(pair.ts) else None
            shown = False
            for t in pair.ts:
                if t == 0:
                    if not shown:
                        stats.kept_frames += 1
                        shown = True
                    yield pair.first
                    continue
                stats.generated_frames += 1
                if made is None:
                    yield pair.first if t < Fraction(1, 2) else pair.second
                else:
                    yield next(made)

    def add(pair: _Pair) -> Iterator[Frame]:
        nonlocal pending, busy
        pending.append(pair)
        busy += any(pair.ts)
        if busy >= batch_size:
            yield from run(pending)
            pending, busy = [], 0

    index = -1
    for index, (frame, when, cut) in enumerate(frames):
        stats.input_frames = index + 1
        if previous is None:
            first = frame
        else:
            if cut:
                stats.cuts.append(index)
            yield from add(_Pair(previous, frame, cut, clock.between(previous_time, when), index - 1))
        previous, previous_time = frame, max(when, previous_time)
    if previous is None:
        return
    stats.last_time = previous_time
    if loop and first is not None and stats.input_frames >= 2:
        wrap_cut = bool(loop_cut()) if loop_cut is not None else False
        if wrap_cut:
            stats.cuts.append(0)
        ts = clock.between(previous_time, previous_time + end.last_duration)
        pending.append(_Pair(previous, first, wrap_cut, ts, index))
        busy += any(ts)
        for start in range(0, len(pending), max(batch_size, 1)):
            yield from run(pending[start : start + batch_size])
        return
    if pending:
        yield from run(pending)
    for real in clock.finish(previous_time, end):
        if real:
            stats.kept_frames += 1
        else:
            stats.held_frames += 1
        yield previous


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
) -> Iterator[Frame]:
    """Constant-rate input, n frames between each pair at t = k/(n+1): frame i at time i, the
    output clock at n+1 frames per input interval. `frames` yields (rgb frame, cut before it)."""
    timed = ((frame, Fraction(i), cut) for i, (frame, cut) in enumerate(frames))
    return interpolate_timed(
        timed,
        model,
        OutputClock(Fraction(num_frames + 1)),
        EndRule(through_last=True, last_duration=Fraction(1)),
        batch_size,
        loop=loop,
        loop_cut=loop_cut,
        before_batch=before_batch,
        stats=stats,
        on_device=on_device,
    )
