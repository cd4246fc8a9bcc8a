"""`interpolate_video`: probe -> decode (+ cut detection) -> pairs -> model -> encode, streaming.

Three threads overlap the stages: one decodes (FFmpeg and OpenCV release the GIL), the calling
thread runs the model batch by batch, one encodes (x264 and PNG writing release the GIL too).
Bounded channels between them hold a few batches at most, so memory does not grow with the video's
length. The calling thread is also where `should_cancel` is checked (before every batch) and where
`progress` and `log` are called (lines from the pipeline threads are handed over), so callers never
see their callbacks run on another thread.

The output is written under a hidden temporary name in the output's folder and renamed into place
only when complete, so a failed or cancelled job never leaves a file that looks finished.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from rife_core.errors import CancelledError, InvalidVideoError, LimitExceededError, TooFewFramesError
from rife_core.video.audio import AudioTrack, plan_audio
from rife_core.video.channel import Channel, Stopped
from rife_core.video.codecs import choose_encoder, nvenc_cannot_open, plan_codec
from rife_core.video.decode import DecodeStats, decode_frames
from rife_core.video.encode import ColorTags, Encoder, PngSink, open_encoder
from rife_core.video.formats import AV1_MIN_SIDE, GIF_MAX_FRAMES, GIF_MAX_SIDE
from rife_core.video.gif import GifEncoder
from rife_core.video.options import InterpolationOptions, Progress, VideoResult, default_preset
from rife_core.video.pairs import PairStats, interpolate_pairs
from rife_core.video.probe import VideoInfo, check_limits, probe
from rife_core.video.scenes import CutDetector
from rife_core.video.sniff import plain_reason
from rife_core.video.timing import output_fps, output_frame_count
from rife_core.video.yuv import DeviceYuv420p

if TYPE_CHECKING:
    from rife_core.interpolator import Interpolator

LogFn = Callable[[str, str], None]
ProgressFn = Callable[[Progress], None]

PROGRESS_INTERVAL_S = 0.3  # at most ~3 progress calls per second


class _Stage(threading.Thread):
    """A pipeline thread that keeps its error and its busy time; an error stops the whole pipeline."""

    def __init__(self, name: str, target: Callable[[_Stage], None], stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._body = target
        self._halt = stop
        self.error: BaseException | None = None
        self.busy_s = 0.0

    def run(self) -> None:
        try:
            self._body(self)
        except Stopped:
            pass
        except BaseException as e:  # handed to the calling thread, which re-raises it
            self.error = e
            self._halt.set()


def _describe(info: VideoInfo, options: InterpolationOptions, out_fps, expected: int, log: LogFn) -> None:
    log(
        "INFO",
        f"input: {info.width}x{info.height} {info.codec} {info.pix_fmt}, ~{info.frame_count} frames at "
        f"{info.fps} ({float(info.fps):.3f}) fps; output: ~{expected} frames at {out_fps} "
        f"({float(out_fps):.3f}) fps, {options.num_frames} new frame(s) per pair",
    )
    if info.rotation:
        log("INFO", f"rotation metadata: turning frames {info.rotation} degrees counter-clockwise to upright")
    ew, eh = info.even_size
    if (ew, eh) != (info.width, info.height):
        log("INFO", f"odd size {info.width}x{info.height}: cropped to {ew}x{eh} (last column/row) for yuv420p")
    bits = options.output.output_bit_depth(info.bit_depth)
    if info.bit_depth > 8 and bits == 8:
        log("INFO", f"{info.bit_depth}-bit input ({info.pix_fmt}) converted to 8-bit RGB; the output is 8-bit "
                    f"({options.output.codec} is written 8-bit here; hevc, av1, prores or ffv1 keep 10 bits)")
    elif info.bit_depth > 8:
        log("INFO", f"{info.bit_depth}-bit input ({info.pix_fmt}) kept deep: 16-bit RGB through the model, "
                    f"{bits}-bit {options.output.codec} output")
    if info.hdr is not None and options.output.codec not in ("hevc", "av1"):
        log("INFO", "HDR mastering-display/light-level metadata is written by hevc and av1 only; this output "
                    "keeps the colour tags (primaries, transfer, matrix, range) without it")


def _check_output_size(info: VideoInfo, options: InterpolationOptions, expected: int) -> None:
    """Sizes an output format cannot take are refused before any work: GIFs above GIF_MAX_SIDE /
    GIF_MAX_FRAMES (see formats), AV1 below AV1_MIN_SIDE."""
    if options.output.codec == "av1" and min(info.even_size) < AV1_MIN_SIDE:
        # SVT-AV1 hangs on some frames narrower than this (e.g. 128x16), rather than failing.
        raise InvalidVideoError(
            f"an av1 output needs at least {AV1_MIN_SIDE} pixels on each side; this video is "
            f"{info.width}x{info.height} (use hevc or vp9)"
        )
    if options.output.codec != "gif":
        return
    if max(info.width, info.height) > GIF_MAX_SIDE or expected > GIF_MAX_FRAMES:
        raise LimitExceededError(
            f"a GIF output is limited to {GIF_MAX_SIDE} px on its longer side and {GIF_MAX_FRAMES} frames; this "
            f"one would be {info.width}x{info.height} with {expected} frames (use webp, or a video codec)",
            limit="gif_limit",
        )


def interpolate_video(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    options: InterpolationOptions,
    model: Interpolator,
    progress: ProgressFn | None = None,
    log: LogFn | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> VideoResult:
    """Interpolate `input_path` into `output_path` (H.264 MP4 unless `options.output` says otherwise); the
    semantics are in `rife_core.video`.

    Raises InvalidVideoError, TooFewFramesError, LimitExceededError (before any inference) or
    CancelledError; on any error no output file is left behind.
    """
    started = time.perf_counter()
    caller = threading.current_thread()
    held_logs: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
    warnings: list[str] = []  # every WARN line, also carried by the result (truncated input...)

    def say(level: str, message: str) -> None:
        # Pipeline threads hand their lines to the calling thread, which passes them on in order.
        if level == "WARN":
            warnings.append(message)
        if log is None:
            return
        if threading.current_thread() is caller:
            flush_logs()
            log(level, message)
        else:
            held_logs.put((level, message))

    def flush_logs() -> None:
        while log is not None and not held_logs.empty():
            log(*held_logs.get())

    n = options.num_frames
    info = probe(input_path, options.limits, say)
    out_fps = output_fps(info.fps, n, options.use_calculated_fps, options.fps)
    expected = output_frame_count(info.frame_count, n, options.loop)
    check_limits(info, options.limits, expected)
    _check_output_size(info, options, expected)
    _describe(info, options, out_fps, expected, say)
    fmt = options.output
    container = fmt.resolved_container
    audio = plan_audio(info, options.use_calculated_fps, say, container)
    bits = fmt.output_bit_depth(info.bit_depth)
    deep = info.bit_depth > 8 and bits > 8  # 16-bit RGB from decode to encode

    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    temp_path = output_path.with_name(f".{output_path.name}.{uuid.uuid4().hex[:8]}.partial")
    width, height = info.even_size

    stop = threading.Event()
    # About one batch waits on each side of the model: enough for the three stages to overlap, and
    # at 4K with n=4 one batch of output is already 20 frames of 24 MB.
    inputs: Channel[tuple[np.ndarray, bool]] = Channel(options.batch_size + 2, stop)
    outputs: Channel[np.ndarray | torch.Tensor] = Channel(options.batch_size * (n + 1) + 2, stop)
    detector = CutDetector(info.fps) if options.use_scene_detection else None
    # Where the output frames become YUV: on the model's device (default on CUDA, where the CPU is
    # x264's), and then generated frames are handed to the encoder without leaving that device.
    device = getattr(model, "device", None) or torch.device("cpu")
    preset = options.preset or default_preset(device.type)
    hw_encoder, encoder_note = choose_encoder(fmt.codec, options.video_encoder, device.type, nvenc_cannot_open)
    if encoder_note:  # a fallback is a warning only when NVENC was asked for by name
        say("WARN" if hw_encoder is None and options.video_encoder == "nvenc" else "INFO", encoder_note)
    plan = plan_codec(fmt, bits, options.crf, preset, info.hdr, hw_encoder)
    yuv_on_device = options.yuv_on_model_device
    if yuv_on_device is None:
        yuv_on_device = device.type == "cuda"
    yuv_on_device = yuv_on_device and plan.accepts_yuv420p_planes and not deep
    if fmt.codec == "h264" and hw_encoder is None:
        say("INFO", f"encoder: H.264 (x264 preset {preset}, crf {plan.options['crf']}), yuv420p converted on the "
                    f"{'model device' if yuv_on_device else 'CPU'}")
    else:
        say("INFO", f"encoder: {plan.encoder} {plan.pix_fmt} ({plan.bits}-bit) in {container}, "
                    f"{', '.join(f'{k} {v}' for k, v in plan.options.items() if not k.endswith('-params')) or 'defaults'}")
    tags = info.container_metadata.output_tags(options.keep_location_metadata) if container not in ("gif", "webp") else {}
    chapters = info.container_metadata.chapters if options.use_calculated_fps and container not in ("gif", "webp") else ()
    if info.container_metadata.chapters and not chapters:
        say("INFO", "chapters dropped: " + ("the output is retimed" if not options.use_calculated_fps
                                            else f"a {container} file holds none"))
    decoded_total: list[int] = []  # set once decoding has finished
    decode_stats = DecodeStats()
    written = [0]
    audio_kept = [audio is not None]

    def decode_body(stage: _Stage) -> None:
        try:
            frames = decode_frames(
                info,
                max_frames=options.limits.max_frames,
                max_output_frames=(min(options.limits.max_output_frames or GIF_MAX_FRAMES, GIF_MAX_FRAMES)
                                   if fmt.codec == "gif" else options.limits.max_output_frames),
                num_frames=n,
                loop=options.loop,
                log=say,
                stats=decode_stats,
                deep=deep,
            )
            count = 0
            while True:
                t0 = time.perf_counter()
                frame = next(frames, None)
                if detector is not None and frame is not None:  # the detector judges 8-bit frames
                    cut = detector.push(frame if frame.dtype == np.uint8 else (frame >> 8).astype(np.uint8))
                else:
                    cut = False
                stage.busy_s += time.perf_counter() - t0
                if frame is None:
                    break
                if cut:
                    say("INFO", f"scene cut before input frame {count}: its slots repeat the nearer real frame")
                inputs.put((frame, cut))
                count += 1
            decoded_total.append(count)
            inputs.close()
        except Stopped:
            raise
        except BaseException as e:
            inputs.fail(e)

    def encode_body(stage: _Stage) -> None:
        nonlocal audio
        pngs = PngSink(options.frames_dir) if options.frames_dir is not None else None
        color = ColorTags.for_input(info)
        to_yuv = DeviceYuv420p(device, color.colorspace, color.color_range == 2) if yuv_on_device else None

        def make(track: AudioTrack | None) -> Encoder | GifEncoder:
            return open_encoder(temp_path, width, height, out_fps, options.crf, color, track, output=fmt,
                                to_yuv420p=to_yuv, preset=preset, bits=bits, hdr=info.hdr, tags=tags,
                                chapters=chapters, encoder=hw_encoder)

        try:
            encoder = make(audio)
        except Exception as e:
            if audio is None:
                raise
            codec = info.audio.codec if info.audio is not None else "input"
            say("WARN", f"audio dropped: the {codec} track cannot be carried into {container.upper()} ({plain_reason(e)})")
            audio, audio_kept[0] = None, False
            encoder = make(None)
        try:
            for frame in outputs:
                t0 = time.perf_counter()
                if pngs is not None:
                    pngs.write(frame if isinstance(frame, np.ndarray) else frame.cpu().numpy())
                encoder.write(frame)
                written[0] += 1
                stage.busy_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            encoder.close()
            stage.busy_s += time.perf_counter() - t0
            trouble = audio.problems() if audio is not None else None
            if trouble:
                say("WARN", f"audio: {trouble}; the rest of the audio is kept")
        except BaseException:
            encoder.abort()
            raise

    decoder = _Stage("rife-decode", decode_body, stop)
    encoder_stage = _Stage("rife-encode", encode_body, stop)
    stats = PairStats()
    last_progress = [0.0]
    total_known = [False]  # the true total was reported (the header's estimate may be far off)

    def report(final: bool = False) -> None:
        if progress is None:
            return
        now = time.perf_counter()
        truth = bool(decoded_total) and not total_known[0]
        if not final and not truth and now - last_progress[0] < PROGRESS_INTERVAL_S:
            return
        last_progress[0] = now
        total_known[0] = total_known[0] or bool(decoded_total)
        total = output_frame_count(decoded_total[0], n, options.loop) if decoded_total else expected
        done = written[0]
        elapsed = now - started
        progress(
            Progress(
                frames_done=done,
                frames_total=max(total, done),
                fps=done / elapsed if elapsed > 0 else 0.0,
                elapsed_s=elapsed,
                decode_s=decoder.busy_s,
                inference_s=stats.inference_s,
                encode_s=encoder_stage.busy_s,
            )
        )

    def before_batch() -> None:
        flush_logs()
        if should_cancel is not None and should_cancel():
            raise CancelledError("cancelled by the client")
        report()

    def frames_in() -> Iterator[tuple[np.ndarray, bool]]:
        yield from inputs

    def loop_cut() -> bool:
        cut = detector is not None and detector.wraps_with_cut()
        if cut:
            say("INFO", "scene cut between the last and the first frame: the loop's slots repeat real frames")
        return cut

    try:
        decoder.start()
        encoder_stage.start()
        try:
            for frame in interpolate_pairs(
                frames_in(),
                model,
                n,
                options.batch_size,
                loop=options.loop,
                loop_cut=loop_cut,
                before_batch=before_batch,
                stats=stats,
                on_device=yuv_on_device,
            ):
                outputs.put(frame)
            if stats.input_frames < 2:
                raise TooFewFramesError(
                    f"video has {stats.input_frames} decodable frame(s); at least two are needed to interpolate"
                )
            outputs.close()
        except Stopped:
            pass  # a pipeline thread failed; its error is raised below
        encoder_stage.join()
        for stage in (decoder, encoder_stage):
            if stage.error is not None:
                raise stage.error
        if stop.is_set():
            raise RuntimeError("the video pipeline stopped without an error")  # pragma: no cover
        os.replace(temp_path, output_path)
    except BaseException:
        stop.set()
        decoder.join()
        encoder_stage.join()
        temp_path.unlink(missing_ok=True)
        flush_logs()
        raise
    finally:
        stop.set()
        decoder.join()

    report(final=True)
    wall = time.perf_counter() - started
    result = VideoResult(
        output_path=output_path,
        input_frames=stats.input_frames,
        input_fps=info.fps,
        output_frames=written[0],
        output_fps=out_fps,
        width=width,
        height=height,
        audio_kept=audio_kept[0],
        scene_cuts=sorted(stats.cuts),
        wall_s=wall,
        inference_s=stats.inference_s,
        warnings=list(warnings),
        content_type=fmt.content_type,
        file_extension=fmt.extension,
        bit_depth=bits,
    )
    say(
        "INFO",
        f"done: {result.input_frames} -> {result.output_frames} frames, {stats.generated_frames} generated, "
        f"{len(result.scene_cuts)} scene cut(s), {wall:.1f} s (inference {stats.inference_s:.1f} s)",
    )
    return result
