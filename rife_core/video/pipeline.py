"""`interpolate_video`: probe -> decode (+ cut detection, dedup) -> pairs -> model -> encode, streaming.

`_Pipeline` holds one job: `plan` (probe, rates, audio), then the stages `decode`, `pair`,
`interpolate` and `encode`, whose shared state (counts, the audio track) are its attributes.

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
from fractions import Fraction
from math import ceil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from rife_core.errors import CancelledError, InvalidVideoError, LimitExceededError, TooFewFramesError
from rife_core.video.audio import AudioTrack, plan_audio
from rife_core.video.channel import Channel, Stopped
from rife_core.video.chunks import ChunkedEncoder, chunk_frames, encoder_count, part_format
from rife_core.video.codecs import choose_encoder, nvenc_cannot_open, plan_codec
from rife_core.video.decode import DecodeStats, SeekMissed, StartAt, decode_frames
from rife_core.video.dedup import RepeatFilter
from rife_core.video.encode import ColorTags, Encoder, PngSink, open_encoder
from rife_core.video.formats import AV1_MIN_SIDE, GIF_MAX_FRAMES, GIF_MAX_SIDE
from rife_core.video.gif import GifEncoder
from rife_core.video.join import StreamJoiner
from rife_core.video.options import InterpolationOptions, Progress, Segment, VideoResult, default_preset
from rife_core.video.pairs import Frame, PairStats, interpolate_timed
from rife_core.video.probe import VideoInfo, check_limits, probe
from rife_core.video.resume import Resume, index_frames, plan_resume
from rife_core.video.scenes import CutDetector
from rife_core.video.schedule import EndRule, OutputClock
from rife_core.video.sniff import plain_reason
from rife_core.video.timing import output_frame_count, rational_fps, snap_rate
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


def _describe(info: VideoInfo, options: InterpolationOptions, out_fps: Fraction, expected: int, log: LogFn) -> None:
    how = ("frames placed by time at the target rate" if options.target_fps is not None
           else f"{options.num_frames} new frame(s) per pair")
    log(
        "INFO",
        f"input: {info.width}x{info.height} {info.codec} {info.pix_fmt}, ~{info.frame_count} frames at "
        f"{info.fps} ({float(info.fps):.3f}) fps; output: ~{expected} frames at {out_fps} "
        f"({float(out_fps):.3f}) fps, {how}",
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


class _Pipeline:
    """One job through the four stages. `plan` runs first (on the calling thread); then `decode` and
    `encode` run on threads of their own while the calling thread runs `interpolate`, which draws on
    `pair`. Counters the stages share (frames written, decoded, dropped) are attributes; each is
    written by one thread only."""

    def __init__(self, input_path: str | os.PathLike[str], output_path: str | os.PathLike[str],
                 options: InterpolationOptions, model: Interpolator | None, progress: ProgressFn | None,
                 log: LogFn | None, should_cancel: Callable[[], bool] | None, segment: Segment | None = None) -> None:
        self.started = time.perf_counter()
        self.segment = segment
        # Output frame numbers this run writes: all of them, or one segment's (see `pairs`).
        self.window: tuple[int, int | None] = (segment.out_start, segment.out_end) if segment else (0, None)
        self.input_path = input_path
        self.output_path = Path(output_path)
        self.options = options
        self.model = model
        self.progress = progress
        self.log = log
        self.should_cancel = should_cancel
        self.caller = threading.current_thread()
        self.held_logs: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self.stop = threading.Event()
        self.stats = PairStats()
        self.decoded_total: int | None = None  # set once decoding has finished
        self.total_reported = False  # the true total was reported (the header's estimate may be far off)
        self.decode_stats = DecodeStats()
        self.warnings: list[str] = []  # every WARN line, also carried by the result (truncated input...)
        self.repeats_dropped = 0
        self.written = 0
        self.last_progress = 0.0

    # --- logs and progress (always delivered on the calling thread) ---

    def say(self, level: str, message: str) -> None:
        # Pipeline threads hand their lines to the calling thread, which passes them on in order.
        if level == "WARN":
            self.warnings.append(message)
        if self.log is None:
            return
        if threading.current_thread() is self.caller:
            self.flush_logs()
            self.log(level, message)
        else:
            self.held_logs.put((level, message))

    def flush_logs(self) -> None:
        while self.log is not None and not self.held_logs.empty():
            self.log(*self.held_logs.get())

    def report(self, final: bool = False) -> None:
        if self.progress is None:
            return
        now = time.perf_counter()
        truth = self.decoded_total is not None and not self.total_reported
        if not final and not truth and now - self.last_progress < PROGRESS_INTERVAL_S:
            return
        self.last_progress = now
        self.total_reported = self.total_reported or self.decoded_total is not None
        total = self.expected
        if self.decoded_total is not None and self.options.target_fps is None and self.timing_label == "constant":
            total = output_frame_count(self.decoded_total, self.options.num_frames, self.options.loop)
        low, high = self.window
        total = max(0, (total if high is None else min(total, high)) - low)
        done = self.written
        elapsed = now - self.started
        self.progress(
            Progress(
                frames_done=done,
                frames_total=max(total, done),
                fps=done / elapsed if elapsed > 0 else 0.0,
                elapsed_s=elapsed,
                decode_s=self.decoder.busy_s,
                inference_s=self.stats.inference_s,
                encode_s=self.encoder_stage.busy_s,
            )
        )

    # --- plan ---

    def plan_clock(self) -> None:
        """Probe the input and decide the output clock, its rate and its length."""
        options, n = self.options, self.options.num_frames
        info = self.info = probe(self.input_path, options.limits, self.say)
        timing = info.timing
        self.timing_label = timing.label if timing is not None else "constant"
        constant = timing is None or timing.constant
        interval = 1 / info.fps
        if options.target_fps is not None:
            clock_rate = self.out_fps = options.target_fps
            self.end = EndRule(through_last=False, last_duration=interval)
            duration = timing.duration_s if timing is not None else info.frame_count * interval
            self.expected = max(1, round(duration * clock_rate))
            # An upper bound for decode's limit on output frames, as (F-1)*n + F.
            self.decode_n = max(0, ceil(clock_rate / info.fps) - 1)
        else:
            clock_rate = info.fps * (n + 1) if constant else snap_rate(info.fps * (n + 1))
            self.out_fps = clock_rate if options.use_calculated_fps else rational_fps(options.fps)
            self.end = EndRule(through_last=True, last_duration=interval)
            if constant or timing is None:
                self.expected = output_frame_count(info.frame_count, n, options.loop)
            else:
                self.expected = self.end.count(timing.span_s, clock_rate) + (n if options.loop else 0)
            self.decode_n = n
        self.clock = OutputClock(clock_rate)
        check_limits(info, options.limits, self.expected)
        _check_output_size(info, options, self.expected)
        _describe(info, options, self.out_fps, self.expected, self.say)
        self._describe_timing(clock_rate)
        self.clock_rate = clock_rate

    def plan(self) -> None:
        """`plan_clock`, then the output: encoder, audio, metadata, the channels between the stages."""
        self.plan_clock()
        options, info, n, clock_rate = self.options, self.info, self.options.num_frames, self.clock_rate
        fmt = self.fmt = options.output
        container = self.container = fmt.resolved_container
        duration_kept = options.use_calculated_fps or options.target_fps is not None
        self.audio: AudioTrack | None = plan_audio(info, duration_kept, self.say, container)
        self.bits = fmt.output_bit_depth(info.bit_depth)
        self.deep = info.bit_depth > 8 and self.bits > 8  # 16-bit RGB from decode to encode
        self.audio_kept = self.audio is not None
        # Audio that starts before the video keeps its head start: the video's first frame is shown
        # that much later (in whole output intervals) and the audio moves with it, so the offset
        # between the two is the input's.
        self.first_pts = 0
        if self.segment is not None:
            self._describe_segment()
            self.audio = None  # the join muxes the audio once, over the whole
        if self.audio is not None and info.audio is not None and info.audio.start_s < info.start_s:
            self.first_pts = round((info.start_s - info.audio.start_s) * self.out_fps)
            self.audio.start_video_at(float(self.first_pts / self.out_fps))
            if self.first_pts:
                self.say("INFO", f"audio starts {info.start_s - info.audio.start_s:.3f} s before the video: the "
                                 f"output's video starts {float(self.first_pts / self.out_fps):.3f} s in, as in the input")

        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        self.temp_path = self.output_path.with_name(f".{self.output_path.name}.{uuid.uuid4().hex[:8]}.partial")
        self.width, self.height = info.even_size
        # About one batch waits on each side of the model: enough for the three stages to overlap, and
        # at 4K with n=4 one batch of output is already 20 frames of 24 MB.
        per_pair = max(n, ceil(clock_rate / info.fps) - 1) + 1
        self.inputs: Channel[tuple[np.ndarray, Fraction, bool]] = Channel(options.batch_size + 2, self.stop)
        self.outputs: Channel[Frame] = Channel(options.batch_size * per_pair + 2, self.stop)
        self.detector = CutDetector(info.fps) if options.use_scene_detection else None
        self.repeats = RepeatFilter() if options.dedup else None
        self.resume: Resume | None = None
        self.first_frame: np.ndarray | None = None
        if self.segment is not None and self.segment.out_start > 0 and not options.dedup:
            self._plan_seek()
        # Where the output frames become YUV: on the model's device (default on CUDA, where the CPU is
        # x264's), and then generated frames are handed to the encoder without leaving that device.
        self.device = getattr(self.model, "device", None) or torch.device("cpu")
        self.preset = options.preset or default_preset(self.device.type)
        self.hw_encoder, encoder_note = choose_encoder(fmt.codec, options.video_encoder, self.device.type,
                                                       nvenc_cannot_open)
        if encoder_note:  # a fallback is a warning only when NVENC was asked for by name
            self.say("WARN" if self.hw_encoder is None and options.video_encoder == "nvenc" else "INFO", encoder_note)
        plan = self.codec_plan = plan_codec(fmt, self.bits, options.crf, self.preset, info.hdr, self.hw_encoder)
        self.encoders = encoder_count(options.encode_segments, fmt, plan)
        yuv_on_device = options.yuv_on_model_device
        yuv_on_device = self.device.type == "cuda" if yuv_on_device is None else yuv_on_device
        self.yuv_on_device = yuv_on_device and plan.accepts_yuv420p_planes and not self.deep
        if fmt.codec == "h264" and self.hw_encoder is None:
            self.say("INFO", f"encoder: H.264 (x264 preset {self.preset}, crf {plan.options['crf']}), yuv420p "
                             f"converted on the {'model device' if self.yuv_on_device else 'CPU'}")
        else:
            settings = ", ".join(f"{k} {v}" for k, v in plan.options.items() if not k.endswith("-params"))
            self.say("INFO", f"encoder: {plan.encoder} {plan.pix_fmt} ({plan.bits}-bit) in {container}, "
                             f"{settings or 'defaults'}")
        if self.encoders > 1:
            threads = max(1, (os.cpu_count() or 1) // self.encoders)
            self.say("INFO", f"encoding: {self.encoders} encoders at once on consecutive chunks of "
                             f"{chunk_frames(float(self.out_fps))} frames, {threads} thread(s) each, joined by stream copy")
        images = container in ("gif", "webp")
        self.tags = info.container_metadata.output_tags(options.keep_location_metadata) if not images else {}
        self.chapters = info.container_metadata.chapters if options.use_calculated_fps and not images else ()
        if self.segment is not None:
            self.tags, self.chapters = {}, ()  # written by the join
        elif info.container_metadata.chapters and not self.chapters:
            self.say("INFO", "chapters dropped: " + ("the output is retimed" if not options.use_calculated_fps
                                                     else f"a {container} file holds none"))

    def _plan_seek(self) -> None:
        """A segment starts decoding at a key frame before its window (`resume`), not at the input's start."""
        info = self.info
        origin = info.start_time if info.start_time is not None else Fraction(info.start_s)
        self.resume = plan_resume(info, index_frames(info.path, info.stream_index, origin), self.clock_rate,
                                  self.options.batch_size, self.window[0])
        if self.resume is None:
            return
        if self.options.loop:  # the wrap pair needs the first frame, and the cut detector its picture
            self.first_frame = next(iter(decode_frames(info, deep=self.deep)))
            if self.detector is not None:
                first = self.first_frame
                self.detector.remember_first(first if first.dtype == np.uint8 else (first >> 8).astype(np.uint8))
        self.say("INFO", f"decoding from input frame {self.resume.index} (a key frame before the segment), "
                         f"not from the start")

    def _frames(self, start: StartAt | None) -> Iterator[tuple[np.ndarray, Fraction]]:
        limits = self.options.limits
        return decode_frames(
            self.info,
            max_frames=limits.max_frames,
            max_output_frames=(min(limits.max_output_frames or GIF_MAX_FRAMES, GIF_MAX_FRAMES)
                               if self.fmt.codec == "gif" else limits.max_output_frames),
            num_frames=self.decode_n,
            loop=self.options.loop,
            log=self.say,
            stats=self.decode_stats,
            deep=self.deep,
            start=start,
            timed=True,
        )

    def _decoded(self) -> Iterator[tuple[np.ndarray, Fraction]]:
        """The timed frames from the input's start, or from the segment's key frame (`resume`): by a seek,
        or, where the seek does not land on that frame, by decoding from the start and skipping to it."""
        if self.resume is None:
            yield from self._frames(None)
            return
        start = StartAt(self.resume.index, self.resume.pts)
        try:
            yield from self._frames(start)
            return
        except SeekMissed as e:
            self.say("INFO", f"seek to input frame {start.index} missed ({e}); decoding from the start instead")
        self.decode_stats = DecodeStats()
        for index, item in enumerate(self._frames(None)):
            if index >= start.index:
                yield item

    def _describe_segment(self) -> None:
        segment, (low, high) = self.segment, self.window
        assert segment is not None
        to = f"up to {high - 1}" if high is not None else "to the end"
        span = f"{segment.start_s:.2f} s" + (f" to {segment.end_s:.2f} s" if segment.end_s is not None else " to the end")
        self.say("INFO", f"segment {segment.index + 1}/{segment.count}: output frames {low} {to} "
                         f"(input {span}); video only, joined with the audio afterwards")

    def _describe_timing(self, clock_rate: Fraction) -> None:
        info, options = self.info, self.options
        label = self.timing_label
        if label == "constant" or (label == "header overruled" and self.info.timing and self.info.timing.constant):
            how = f"timing: {label}, constant rate {info.fps}: frame i at i/{info.fps} s"
        elif label == "nominal":
            how = f"timing: nominal rate {info.fps} (no usable timestamps): frame i at i/{info.fps} s"
        else:
            how = (f"timing: {label}: each frame at its own timestamp, output frames at k/{clock_rate} s "
                   f"between them (average input rate {info.fps}, {float(info.fps):.3f} fps)")
        if options.target_fps is not None:
            how += f"; target rate {options.target_fps} ({float(options.target_fps):.3f} fps), duration kept"
        self.say("INFO", how)

    # --- stages ---

    def decode(self, stage: _Stage) -> None:
        """Decode thread: timed frames, cut flags, repeats dropped; into `inputs`."""
        try:
            frames = self._decoded()
            count = self.resume.index if self.resume is not None else 0
            pending: tuple[np.ndarray, Fraction, bool] | None = None  # a repeat kept back: it may be the last
            while True:
                t0 = time.perf_counter()
                item = next(frames, None)
                if item is None:
                    stage.busy_s += time.perf_counter() - t0
                    break
                frame, when = item
                # The cut detector and the repeat filter judge 8-bit frames (converted only when one runs).
                judged = self.detector is not None or self.repeats is not None
                frame8 = frame if frame.dtype == np.uint8 or not judged else (frame >> 8).astype(np.uint8)
                cut = self.detector.push(frame8) if self.detector is not None else False
                repeat = self.repeats is not None and not cut and count > 0 and self.repeats.is_repeat(frame8)
                if self.repeats is not None and (cut or count == 0):
                    self.repeats.is_repeat(frame8)  # keeps its reference frame current
                stage.busy_s += time.perf_counter() - t0
                if cut:
                    self.say("INFO", f"scene cut before input frame {count}: its slots repeat the nearer real frame")
                count += 1
                if repeat:
                    if pending is not None:
                        self.repeats_dropped += 1
                    pending = (frame, when, cut)
                    continue
                if pending is not None:
                    self.repeats_dropped += 1
                    pending = None
                self.inputs.put((frame, when, cut))
            if pending is not None:
                self.inputs.put(pending)  # the last frame stays, so the output keeps the input's duration
            self.decoded_total = count
            self.inputs.close()
        except Stopped:
            raise
        except BaseException as e:
            self.inputs.fail(e)

    def pair(self) -> Iterator[Frame]:
        """The output frames, in order: pairs of timed input frames through the output clock and the model."""
        assert self.model is not None, "only planning runs without a model"
        return interpolate_timed(
            self.inputs,
            self.model,
            self.clock,
            self.end,
            self.options.batch_size,
            loop=self.options.loop,
            loop_cut=self._loop_cut,
            before_batch=self._before_batch,
            stats=self.stats,
            on_device=self.yuv_on_device,
            window=self.window,
            resume=self.resume,
            first_frame=self.first_frame,
        )

    def interpolate(self) -> None:
        """Calling thread: run the model batch by batch and hand every output frame to `encode`."""
        for frame in self.pair():
            self.outputs.put(frame)
        if self.stats.input_frames < 2:
            raise TooFewFramesError(
                f"video has {self.stats.input_frames} decodable frame(s); at least two are needed to interpolate"
            )
        self.outputs.close()

    def encode(self, stage: _Stage) -> None:
        """Encode thread: output frames into the MP4 (and PNGs), with the audio interleaved."""
        options, info = self.options, self.info
        pngs = PngSink(options.frames_dir, first=self.window[0]) if options.frames_dir is not None else None
        color = ColorTags.for_input(info)
        to_yuv = DeviceYuv420p(self.device, color.colorspace, color.color_range == 2) if self.yuv_on_device else None

        # A segment of a split job is a part: written as `join` can copy it (MP4 for B-frames in MKV/WebM).
        written_as = part_format(self.fmt) if self.segment is not None else self.fmt

        def make(track: AudioTrack | None) -> Encoder | GifEncoder | ChunkedEncoder:
            single = open_encoder(self.temp_path, self.width, self.height, self.out_fps, options.crf, color, track,
                                  output=written_as, to_yuv420p=to_yuv, preset=self.preset, bits=self.bits,
                                  hdr=info.hdr, tags=self.tags, chapters=self.chapters, encoder=self.hw_encoder)
            if self.encoders == 1:
                return single
            single.abort()  # it opened: the audio goes into this container, so the join will take it too
            return self._chunked(color, track)

        try:
            encoder = make(self.audio)
        except Exception as e:
            if self.audio is None:
                raise
            codec = info.audio.codec if info.audio is not None else "input"
            self.say("WARN", f"audio dropped: the {codec} track cannot be carried into {self.container.upper()} "
                             f"({plain_reason(e)})")
            self.audio, self.audio_kept = None, False
            encoder = make(None)
        encoder.first_pts = self.first_pts if self.audio is not None else 0
        try:
            for frame in self.outputs:
                t0 = time.perf_counter()
                if pngs is not None:
                    pngs.write(frame if isinstance(frame, np.ndarray) else frame.cpu().numpy())
                encoder.write(frame)
                self.written += 1
                stage.busy_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            self.last_frame_ticks = self._last_frame_ticks()
            # A segment's frames all last one interval; the join gives the whole output's last frame its length.
            encoder.last_frame_ticks = self.last_frame_ticks if self.segment is None else 1
            encoder.close()
            stage.busy_s += time.perf_counter() - t0
            trouble = self.audio.problems() if self.audio is not None else None
            if trouble:
                self.say("WARN", f"audio: {trouble}; the rest of the audio is kept")
        except BaseException:
            encoder.abort()
            raise

    def _chunked(self, color: ColorTags, track: AudioTrack | None) -> ChunkedEncoder:
        """E encoders on consecutive chunks (`chunks`), each with its share of the cores, joined with the
        audio, tags and chapters into the output."""
        threads = max(1, (os.cpu_count() or 1) // self.encoders)
        local = threading.local()
        info = self.info

        def open_part(path: Path) -> Encoder:
            if self.yuv_on_device and not hasattr(local, "to_yuv"):  # one converter per encoder thread
                local.to_yuv = DeviceYuv420p(self.device, color.colorspace, color.color_range == 2)
            return Encoder(path, self.width, self.height, self.out_fps, self.options.crf, color, None, threads,
                           getattr(local, "to_yuv", None), self.preset, output=part_format(self.fmt), bits=self.bits,
                           hdr=info.hdr, encoder=self.hw_encoder)

        plan = self.codec_plan if self.segment is None else plan_codec(
            part_format(self.fmt), self.bits, self.options.crf, self.preset, info.hdr, self.hw_encoder)
        joiner = StreamJoiner(self.temp_path, plan, self.out_fps, track, tags=self.tags, chapters=self.chapters)
        return ChunkedEncoder(self.temp_path, self.encoders, chunk_frames(float(self.out_fps)), open_part, joiner)

    def _last_frame_ticks(self) -> int:
        """How many output intervals the last frame lasts: where the duration is kept, the output ends
        where the input does (its last frame plus that frame's interval), not one output interval after
        its last frame; a retimed output (fal's `fps`) gives every frame one interval. Constant-rate
        input keeps today's output exactly (every frame one interval, so its average rate is the output
        rate: (n+1) x fps), which for n >= 2 ends n-1 intervals early."""
        if not (self.options.use_calculated_fps or self.options.target_fps is not None) or self.options.loop:
            return 1
        if self.options.target_fps is None and self.timing_label == "constant":
            return 1
        end = (self.stats.last_time + self.end.last_duration) * self.clock.rate
        return max(1, round(end) - (self.window[0] + self.written - 1))

    def _before_batch(self) -> None:
        self.flush_logs()
        if self.should_cancel is not None and self.should_cancel():
            raise CancelledError("cancelled by the client")
        self.report()

    def _loop_cut(self) -> bool:
        cut = self.detector is not None and self.detector.wraps_with_cut()
        if cut:
            self.say("INFO", "scene cut between the last and the first frame: the loop's slots repeat real frames")
        return cut

    # --- the whole job ---

    def run(self) -> VideoResult:
        self.plan()
        self.decoder = _Stage("rife-decode", self.decode, self.stop)
        self.encoder_stage = _Stage("rife-encode", self.encode, self.stop)
        try:
            self.decoder.start()
            self.encoder_stage.start()
            try:
                self.interpolate()
            except Stopped:
                pass  # a pipeline thread failed; its error is raised below
            self.encoder_stage.join()
            for stage in (self.decoder, self.encoder_stage):
                if stage.error is not None:
                    raise stage.error
            if self.stop.is_set():
                raise RuntimeError("the video pipeline stopped without an error")  # pragma: no cover
            os.replace(self.temp_path, self.output_path)
        except BaseException:
            self.stop.set()
            self.decoder.join()
            self.encoder_stage.join()
            self.temp_path.unlink(missing_ok=True)
            self.flush_logs()
            raise
        finally:
            self.stop.set()
            self.decoder.join()
        return self.result()

    def result(self) -> VideoResult:
        self.report(final=True)
        stats, options = self.stats, self.options
        wall = time.perf_counter() - self.started
        decoded = self.decoded_total if self.decoded_total is not None else stats.input_frames
        n = options.num_frames
        input_fps = self.info.fps
        if options.target_fps is None and self.timing_label != "constant":
            input_fps = self.clock.rate / (n + 1)  # the average the output rate was made from
        result = VideoResult(
            output_path=self.output_path,
            input_frames=decoded,
            input_fps=input_fps,
            output_frames=self.written,
            output_fps=self.out_fps,
            width=self.width,
            height=self.height,
            audio_kept=self.audio_kept,
            scene_cuts=sorted(stats.cuts),
            wall_s=wall,
            inference_s=stats.inference_s,
            timing=self.timing_label,
            generated_frames=stats.generated_frames + stats.held_frames,
            kept_frames=stats.kept_frames,
            dropped_frames=decoded - stats.kept_frames,
            warnings=list(self.warnings),
            content_type=self.fmt.content_type,
            file_extension=self.fmt.extension,
            bit_depth=self.bits,
            first_output_frame=self.window[0],
            last_frame_ticks=getattr(self, "last_frame_ticks", 1),
        )
        if options.target_fps is not None or options.dedup:
            extra = f", {self.repeats_dropped} repeated frame(s) removed before interpolation" if options.dedup else ""
            self.say(
                "INFO",
                f"frames: {result.output_frames} output = {result.generated_frames} generated + "
                f"{result.kept_frames} input frames kept at their own time; {result.dropped_frames} input "
                f"frame(s) dropped{extra}",
            )
        self.say(
            "INFO",
            f"done: {result.input_frames} -> {result.output_frames} frames, {stats.generated_frames} generated, "
            f"{len(result.scene_cuts)} scene cut(s), {wall:.1f} s (inference {stats.inference_s:.1f} s)",
        )
        return result


def interpolate_video(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    options: InterpolationOptions,
    model: Interpolator,
    progress: ProgressFn | None = None,
    log: LogFn | None = None,
    should_cancel: Callable[[], bool] | None = None,
    segment: Segment | None = None,
) -> VideoResult:
    """Interpolate `input_path` into `output_path` (H.264 MP4 unless `options.output` says otherwise); the
    semantics are in `rife_core.video`.

    With `segment` (from `segments.plan_segments`), only that segment's output frames are made and
    written, video only: `segments.join_segments` joins the segments' files into the job's output.

    Raises InvalidVideoError, TooFewFramesError, LimitExceededError (before any inference) or
    CancelledError; on any error no output file is left behind.
    """
    return _Pipeline(input_path, output_path, options, model, progress, log, should_cancel, segment).run()
