"""The thing a job runs the video through: by default the RIFE model and the video pipeline.

The engine is built once per worker process (RIFE_ENGINE names its class), so the model is
loaded once and stays warm for every job. The seam also lets the service tests run the queue with
a stand-in engine where the timing of a job must be controlled (queue positions, cancellation)
while the end-to-end tests run the real one.
"""

from __future__ import annotations

import importlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from worker.shared.settings import Settings, SettingsError
from worker.shared.video_input import VideoInput

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Any], None]  # receives rife_core.video.Progress (frames_done, frames_total, fps, elapsed_s)
LogCallback = Callable[[str, str], None]  # (level, message)
CancelCheck = Callable[[], bool]


class EngineResult(Protocol):
    """What the worker reads from an engine's result (a subset of rife_core.video.VideoResult)."""

    @property
    def output_frames(self) -> int: ...

    @property
    def output_fps(self) -> float | Fraction: ...

    @property
    def inference_s(self) -> float: ...


class Engine(Protocol):
    def run(
        self,
        input_path: Path,
        output_path: Path,
        request: VideoInput,
        *,
        progress: ProgressCallback,
        log: LogCallback,
        should_cancel: CancelCheck,
    ) -> EngineResult: ...


class RifeEngine:
    """RIFE through `rife_core.video.interpolate_video`, with the model loaded at construction."""

    def __init__(self, settings: Settings) -> None:
        from rife_core import load_model
        from rife_core.video.options import InterpolationOptions

        try:  # refuse a bad preset at start-up, not in every job
            InterpolationOptions(preset=settings.x264_preset or None)
        except ValueError as e:
            raise SettingsError(f"X264_PRESET: {e}") from e
        self.settings = settings
        self._load: Callable[..., Any] = load_model
        log.info("loading model %s on %s", settings.rife_model, settings.rife_device or "auto")
        self.model = load_model(settings.rife_model, device=settings.rife_device or None, precision=settings.rife_precision)
        self._limit_threads()
        self.model.warm_up()
        # (model, quality) -> loaded model. The default stays loaded; others are loaded on first use and
        # kept, at most EXTRA_MODELS of them, so a request naming another model does not reload per job.
        self._models: OrderedDict[tuple[str, str], Any] = OrderedDict({(settings.rife_model, "fast"): self.model})

    EXTRA_MODELS = 2

    def _limit_threads(self) -> None:
        """TORCH_THREADS, after each model load (loading a model on the CPU sets torch to every core)."""
        if self.settings.torch_threads:
            import torch

            torch.set_num_threads(self.settings.torch_threads)

    def model_for(self, name: str | None, quality: str) -> Any:
        key = (name or self.settings.rife_model, quality)
        if key not in self._models:
            log.info("loading model %s (quality %s) on %s", key[0], quality, self.model.device)
            self._models[key] = self._load(key[0], device=self.model.device, quality=quality, precision=self.model.precision)
            self._limit_threads()
            default = (self.settings.rife_model, "fast")
            extras = [k for k in self._models if k != default]
            while len(extras) > self.EXTRA_MODELS:
                del self._models[extras.pop(0)]
        self._models.move_to_end(key)
        return self._models[key]

    def options(self, request: VideoInput) -> Any:
        """The pipeline's options for `request` with this worker's knobs (limits, encoder, preset...): the
        same for a whole run, each segment of a fanned-out one and its merge, so the parts join into
        exactly the output one run would write."""
        from rife_core.video import Limits

        s = self.settings
        limits = Limits(
            max_duration_s=s.max_video_duration_s or None,
            max_frames=s.max_video_frames or None,
            max_width=s.max_video_width or None,
            max_height=s.max_video_height or None,
            max_output_frames=s.max_output_frames or None,
        )
        local: dict[str, Any] = {"limits": limits, "video_encoder": s.video_encoder,
                                 "keep_location_metadata": s.keep_location_metadata,
                                 "encode_segments": s.encode_segments}
        if s.rife_batch_size:
            local["batch_size"] = s.rife_batch_size
        if s.x264_preset:
            local["preset"] = s.x264_preset
        return request.pipeline_options(**local)

    def run(
        self,
        input_path: Path,
        output_path: Path,
        request: VideoInput,
        *,
        progress: ProgressCallback,
        log: LogCallback,
        should_cancel: CancelCheck,
        segment: Any = None,
    ) -> EngineResult:
        """The whole request, or with `segment` (a `rife_core.video.options.Segment`) one segment of it."""
        from rife_core.video import interpolate_video

        model = self.model_for(request.model, request.quality)
        return interpolate_video(input_path, output_path, self.options(request), model, progress=progress, log=log,
                                 should_cancel=should_cancel, segment=segment)

    # --- fan-out (worker.process.parts): an engine without these methods never fans a request out ---

    def plan_segments(
        self, input_path: Path, request: VideoInput, *, segment_s: float, min_s: float, log: LogCallback
    ) -> list[dict[str, Any]]:
        """The segments (JSON, `rife_core.video.segments.Segment.to_json`) to run `request` as separate
        jobs, or [] to run it as one: an input no longer than `min_s` seconds, or one the pipeline
        cannot split (it logs why). The probe is the pipeline's own (one, reading the timestamps), so an
        input over a limit fails here with the same error an unsplit run gives."""
        from rife_core.video.segments import plan_segments

        segments = plan_segments(input_path, self.options(request), segment_s, log=log, min_s=min_s)
        return [segment.to_json() for segment in segments]

    def run_segment(
        self,
        input_path: Path,
        output_path: Path,
        request: VideoInput,
        segment: dict[str, Any],
        *,
        progress: ProgressCallback,
        log: LogCallback,
        should_cancel: CancelCheck,
    ) -> Any:
        """Write one segment's output frames (video only) to `output_path`; the result has `to_json()`."""
        from rife_core.video.options import Segment

        return self.run(input_path, output_path, request, progress=progress, log=log, should_cancel=should_cancel,
                        segment=Segment.from_json(segment))

    def merge_segments(
        self, input_path: Path, parts: list[tuple[Path, dict[str, Any]]], output_path: Path, request: VideoInput, *, log: LogCallback
    ) -> EngineResult:
        """Join the segments' files (in order, each with its `run_segment` result as JSON) by stream copy
        into the request's output, with the input's audio and metadata; the result is the whole job's."""
        from rife_core.video.options import VideoResult
        from rife_core.video.segments import join_segments

        results = [(path, VideoResult.from_json(result)) for path, result in parts]
        return join_segments(input_path, results, output_path, self.options(request), log=log)


def load_engine(settings: Settings) -> Engine:
    """Instantiate the `module:Class` named by RIFE_ENGINE with the settings."""
    module_name, _, class_name = settings.rife_engine.partition(":")
    if not class_name:
        raise ValueError(f"RIFE_ENGINE must look like 'module:Class', not {settings.rife_engine!r}")
    engine_class = getattr(importlib.import_module(module_name), class_name)
    return engine_class(settings)
