"""One job as K consecutive segments: plan them, run each anywhere, join them into one output.

A long input need not wait on one worker: `plan_segments` cuts the job's output into K ranges of
output frame numbers, `interpolate_video(..., segment=s)` makes one range (on any worker, in any
order), and `join_segments` copies the segments' video, in order, into one file with the input's
audio muxed once (`join.StreamJoiner`: no re-encode).

Why ranges of output frames: a segment run decodes and pairs the input exactly as the whole job
does (the same clock, scene cuts, repeats dropped, `loop`'s wrap pair), and only makes and writes the
frames numbered in its range (`pairs.interpolate_timed`'s `window`). So the joined output has
exactly the whole job's frames whatever the options are, each made once; a boundary is the output
frame shown at an input frame's own time, so no pair is split between two segments. Boundaries
sit at the input's key frames (where encoders put scene cuts, and where a later seek can start
decoding), about `segment_s` apart. A segment seeks to a key frame shortly before its range and
picks up the whole job's state there (`resume`); it reads on only as far as its range's last batch.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from fractions import Fraction
from math import ceil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rife_core.video.chunks import why_whole
from rife_core.video.join import StreamJoiner
from rife_core.video.options import InterpolationOptions, Progress, Segment, VideoResult
from rife_core.video.pipeline import _Pipeline
from rife_core.video.resume import index_frames
from rife_core.video.timing import ON_FRAME

if TYPE_CHECKING:
    from rife_core.interpolator import Interpolator

LogFn = Callable[[str, str], None]



def plan_segments(input_path: str | os.PathLike[str], options: InterpolationOptions, segment_s: float | None = None,
                  count: int | None = None, log: LogFn | None = None, min_s: float = 0.0) -> list[Segment]:
    """About one segment per `segment_s` seconds of input (or exactly `count` where the input's key frames
    allow), boundaries at key frames; [] when the job should run whole: silently for an input no longer
    than `min_s` seconds (the usual case), else with the reason in the log (too short for two segments,
    a GIF/WebP output). Probes the input (limits included: the errors of an unsplit run) but decodes
    nothing."""
    say = log or (lambda level, message: None)
    job = _Pipeline(input_path, input_path, options, None, None, lambda level, message: None, None)
    job.plan_clock()
    info, rate = job.info, job.clock.rate
    timing = info.timing
    duration = float(timing.duration_s) if timing is not None else info.frame_count / float(info.fps)
    if duration <= min_s:
        return []
    whole = why_whole(options.output)
    if whole is not None:
        say("INFO", f"not split: {whole}")
        return []
    wanted = count if count is not None else (round(duration / segment_s) if segment_s else 1)
    if wanted < 2 or job.expected < 2 * wanted:
        say("INFO", f"not split: {duration:.1f} s of input makes one segment")
        return []
    origin = info.start_time if info.start_time is not None else Fraction(info.start_s)
    demuxed = index_frames(info.path, info.stream_index, origin)
    times = demuxed.times
    if len(times) < 2 * wanted:
        say("INFO", "not split: too few frames with timestamps to place segment boundaries")
        return []
    # Constant-rate input is timed on its exact grid, as the pipeline times it; else by its timestamps.
    grid = timing is None or timing.constant
    frame_time = (lambda i: Fraction(i) / info.fps) if grid else (lambda i: times[i])
    keys_at = [i for i, key in enumerate(demuxed.keys) if key]
    step = len(times) / wanted
    starts: list[int] = [0]
    for i in range(1, wanted):
        ideal = round(i * step)
        near = [k for k in keys_at if abs(k - ideal) <= step / 2 and k > starts[-1]]
        start = min(near, key=lambda k: abs(k - ideal)) if near else ideal  # no key frame near: the ideal frame
        if start > starts[-1] and start < len(times) - 1:
            starts.append(start)
    outs = [ceil((frame_time(i) - ON_FRAME) * rate) for i in starts]
    segments = []
    for index, first in enumerate(starts):
        last = index == len(starts) - 1
        segments.append(Segment(
            index=index, count=len(starts), first=first, end=None if last else starts[index + 1],
            start_s=float(frame_time(first)), end_s=None if last else float(frame_time(starts[index + 1])),
            out_start=outs[index], out_end=None if last else outs[index + 1],
        ))
    on_keys = sum(1 for start in starts[1:] if start in keys_at)
    say("INFO", f"split into {len(segments)} segments at input frames " + ", ".join(str(s.first) for s in segments)
                + f" (about {duration / len(segments):.1f} s each; {on_keys} of {len(starts) - 1} boundaries on key frames)")
    return segments


def join_segments(input_path: str | os.PathLike[str], parts: Sequence[tuple[Path, VideoResult]],
                  output_path: str | os.PathLike[str], options: InterpolationOptions,
                  log: LogFn | None = None) -> VideoResult:
    """Join the segments' files, in segment order, into `output_path` with the input's audio, tags and
    chapters, as the whole job writes them; the result sums the segments'. The output appears only
    when complete (a temporary name, then a rename)."""
    started = time.perf_counter()
    say = log or (lambda level, message: None)
    # The whole job's plan (audio, metadata, the audio's head start); its lines were logged by the segments.
    job = _Pipeline(input_path, output_path, options, None, None,
                    lambda level, message: say(level, message) if level == "WARN" else None, None)
    job.plan()
    results = [result for _, result in parts]
    expected = 0
    for result in results:
        if result.first_output_frame != expected:
            raise ValueError(f"segment starting at output frame {result.first_output_frame} does not follow the "
                             f"frames before it ({expected})")
        expected += result.output_frames
    output = Path(output_path)
    temp = output.with_name(f".{output.name}.{uuid.uuid4().hex[:8]}.partial")
    audio = job.audio

    def joiner(track: Any) -> StreamJoiner:
        return StreamJoiner(temp, job.codec_plan, job.out_fps, track, tags=job.tags, chapters=job.chapters,
                            first_pts=job.first_pts if track is not None else 0)

    writer = joiner(audio)
    try:
        try:
            for path, result in parts:
                if result.output_frames:
                    writer.add(path)
        except Exception as e:
            if audio is None or writer.frames:
                raise
            say("WARN", f"audio dropped: the track cannot be carried into this output ({e})")
            writer.abort()
            audio = None
            writer = joiner(None)
            for path, result in parts:
                if result.output_frames:
                    writer.add(path)
        writer.close(results[-1].last_frame_ticks)
        os.replace(temp, output)
    except BaseException:
        writer.abort()
        temp.unlink(missing_ok=True)
        raise
    trouble = audio.problems() if audio is not None else None
    if trouble:
        say("WARN", f"audio: {trouble}; the rest of the audio is kept")
    last = results[-1]
    kept = sum(r.kept_frames for r in results)
    warnings = list(dict.fromkeys(w for r in results for w in r.warnings))
    joined = VideoResult(
        output_path=output, input_frames=last.input_frames, input_fps=last.input_fps,
        output_frames=expected, output_fps=last.output_fps, width=last.width, height=last.height,
        audio_kept=audio is not None, scene_cuts=sorted({c for r in results for c in r.scene_cuts}),
        wall_s=sum(r.wall_s for r in results) + time.perf_counter() - started,
        inference_s=sum(r.inference_s for r in results), warnings=warnings, content_type=last.content_type,
        file_extension=last.file_extension, bit_depth=last.bit_depth, timing=last.timing,
        generated_frames=sum(r.generated_frames for r in results), kept_frames=kept,
        dropped_frames=last.input_frames - kept, first_output_frame=0, last_frame_ticks=last.last_frame_ticks,
    )
    say("INFO", f"joined {len(parts)} segments: {joined.input_frames} -> {joined.output_frames} frames"
                + (", audio muxed once over the whole" if audio is not None else ""))
    return joined


def interpolate_split(input_path: str | os.PathLike[str], output_path: str | os.PathLike[str],
                      options: InterpolationOptions, model: Interpolator, segments: Sequence[Segment],
                      log: LogFn | None = None, progress: Callable[[Progress], None] | None = None) -> VideoResult:
    """Run every segment here, one after another, and join them: what a fan-out across workers does,
    in one process (the CLI's `--segments`, tests). With no segments, the whole job as usual.
    `progress` counts the whole output's frames."""
    from rife_core.video.pipeline import interpolate_video

    if not segments:
        return interpolate_video(input_path, output_path, options, model, progress=progress, log=log)
    output = Path(output_path)
    parts: list[tuple[Path, VideoResult]] = []
    try:
        for segment in segments:
            part = output.with_name(f".{output.stem}.segment{segment.index:03d}{options.output.extension}")
            ahead = segment.out_start  # the frames of the segments before this one

            def whole(p: Progress, ahead: int = ahead) -> None:
                if progress is not None:
                    progress(replace(p, frames_done=p.frames_done + ahead, frames_total=p.frames_total + ahead))

            parts.append((part, interpolate_video(input_path, part, options, model, progress=whole, log=log,
                                                  segment=segment)))
        return join_segments(input_path, parts, output, options, log)
    finally:
        for part, _ in parts:
            part.unlink(missing_ok=True)
