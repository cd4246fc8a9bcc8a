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

A `window` of output frame numbers makes one segment of a split job: every pair is still formed and
every output frame still numbered exactly as in the whole job (the clock, cuts and repeats are
decided from the same frames), but the model only makes, and the stream only yields, the frames
whose numbers fall in the window; the pairs after it are never read. The model's batches are
the whole job's (a batch that straddles a window's edge is made whole), because its rounding
depends on what a pair is batched with. So the segments of a job, joined, are exactly the whole
job's frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
import torch

from rife_core.video.resume import Resume
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
    start: int = 0  # output frame number of ts[0]
    keep: list[bool] = field(default_factory=list)  # per output frame: inside the window (yielded)

    def made(self) -> list[float]:
        """The timesteps the model makes for this pair: every one but the first frame itself (also those
        outside the window: see `run`)."""
        return [float(t) for t in self.ts if t]


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
    ts_lists = [p.made() for p in todo]
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
    window: tuple[int, int | None] | None = None,
    resume: Resume | None = None,
    first_frame: np.ndarray | None = None,
) -> Iterator[Frame]:
    """Yield the output frames for `frames`, an iterable of (rgb frame, its time in seconds from the
    first frame, cut before this frame), as `clock` places them; `end` says where the output stops.

    With `on_device`, generated frames stay on the model's device (uint8 (H, W, 3) tensors) for an
    encoder that converts them there; input frames are always yielded as the arrays they came as.
    `loop_cut` is asked at the end, when `loop` is set, whether last -> first is a cut; the wrap pair
    lasts `end.last_duration`. `before_batch` runs before every model call (the pipeline checks for
    cancellation there). A batch holds `batch_size` pairs that have frames to make.
    `window` = (first, end) yields only the output frames numbered first <= k < end (end None: to the
    end of the job); see the module's docstring. With `resume`, `frames` starts at that input frame
    (a segment's seek, `resume`) and the clock, the numbering and the batch are the whole job's there;
    `first_frame` is then the input's first frame, for `loop`'s wrap pair.
    """
    stats = stats if stats is not None else PairStats()
    low, high = window if window is not None else (0, None)
    pending: list[_Pair] = []
    busy = resume.busy if resume is not None else 0  # pairs in the batch that have in-between frames
    first: np.ndarray | None = first_frame
    previous: np.ndarray | None = None
    previous_time = Fraction(0)
    numbered = resume.numbered if resume is not None else 0  # output frames numbered so far, in and out of the window
    clock.next = numbered

    def inside(k: int) -> bool:
        return k >= low and (high is None or k < high)

    def run(batch: list[_Pair]) -> Iterator[Frame]:
        # A batch is the whole job's batch, made whole even where the window takes only part of it: the
        # model's rounding depends on what it is batched with, so only the same batches make the same frames.
        if before_batch is not None:
            before_batch()
        if not any(any(p.keep) for p in batch):
            return  # wholly outside the window: nothing to make
        todo = [p for p in batch if not p.cut and p.made()]
        generated: Iterator[list[Frame]] = iter(())
        if todo:
            start = time.perf_counter()
            generated = iter(_run_model(model, todo, on_device))
            stats.inference_s += time.perf_counter() - start
            stats.model_calls += 1
        for pair in batch:
            made = iter(next(generated)) if not pair.cut and pair.made() else None
            shown = False
            for t, kept in zip(pair.ts, pair.keep, strict=True):
                picture = next(made) if made is not None and t else None
                if not kept:
                    continue
                if t == 0:
                    if not shown:
                        stats.kept_frames += 1
                        shown = True
                    yield pair.first
                    continue
                stats.generated_frames += 1
                if picture is None:
                    yield pair.first if t < Fraction(1, 2) else pair.second
                else:
                    yield picture

    def number(pair: _Pair, cut_at: int) -> _Pair:
        """Give the pair's output frames their numbers and mark those in the window; the pair's cut
        is reported by the segment that holds its first output frame (each cut once over a job)."""
        nonlocal numbered
        pair.start = numbered
        pair.keep = [inside(numbered + j) for j in range(len(pair.ts))]
        numbered += len(pair.ts)
        if pair.cut and inside(pair.start):
            stats.cuts.append(cut_at)
        return pair

    def add(pair: _Pair) -> Iterator[Frame]:
        nonlocal pending, busy
        pending.append(pair)
        busy += bool(pair.made())
        if busy >= batch_size:
            yield from run(pending)
            pending, busy = [], 0

    def past_window() -> bool:
        return high is not None and numbered >= high and not pending

    first_index = resume.index if resume is not None else 0
    index = first_index - 1
    for index, (frame, when, cut) in enumerate(frames, start=first_index):
        stats.input_frames = index + 1
        if previous is None:
            first = first if first is not None else frame
        else:
            yield from add(number(_Pair(previous, frame, cut, clock.between(previous_time, when), index - 1), index))
            if past_window():
                break  # the rest of the input is another segment's
        previous, previous_time = frame, max(when, previous_time)
    if previous is None or past_window():
        return
    if high is not None and numbered >= high:
        yield from run(pending)  # the input ended inside the window's last batch
        return
    stats.last_time = previous_time
    if loop and first is not None and stats.input_frames >= 2:
        wrap_cut = bool(loop_cut()) if loop_cut is not None else False
        ts = clock.between(previous_time, previous_time + end.last_duration)
        yield from add(number(_Pair(previous, first, wrap_cut, ts, index), 0))
        if pending:
            yield from run(pending)
        return
    if pending:
        yield from run(pending)
    for real in clock.finish(previous_time, end):
        numbered += 1
        if not inside(numbered - 1):
            continue
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
