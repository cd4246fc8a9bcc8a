"""The worker's RIFE engine honours the request's `model` and `quality`, loading each once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "video"))

from clipmaker import moving_square, read_video, write_video  # noqa: E402

from worker.process.engine import RifeEngine  # noqa: E402
from worker.shared.settings import Settings  # noqa: E402
from worker.shared.video_input import VideoInput  # noqa: E402


@pytest.fixture(scope="module")
def engine():
    return RifeEngine(Settings(rife_device="cpu"))


def run(engine, tmp_path, **opts):
    src = write_video(tmp_path / "in.mp4", [moving_square(i) for i in range(5)])
    out = tmp_path / "out.mp4"
    engine.run(src, out, VideoInput(video_url="x", **{"num_frames": 1, **opts}),
               progress=lambda p: None, log=lambda level, msg: None, should_cancel=lambda: False)
    return read_video(out)


def test_best_quality_runs_the_ensemble_and_is_loaded_once(engine, tmp_path):
    assert run(engine, tmp_path, quality="best").frames == 9
    best = engine.model_for(None, "best")
    assert best.ensemble is True and engine.model.ensemble is False
    assert engine.model_for("rife-4.0", "best") is best  # named explicitly: the same loaded model
    assert engine.model_for(None, "fast") is engine.model


def test_extra_models_are_capped_and_the_default_stays(engine, monkeypatch):
    loaded: list[str] = []
    monkeypatch.setattr(engine, "_load", lambda name, device, quality, precision: loaded.append(name) or object())
    for name in ("a", "b", "c", "a"):
        engine.model_for(name, "fast")
    assert loaded == ["a", "b", "c", "a"]  # "a" was evicted by "c" (at most EXTRA_MODELS extras)
    assert engine.model_for(None, "fast") is engine.model


def test_a_model_the_worker_cannot_load_fails_clearly(tmp_path, monkeypatch):
    from rife_core.weights import WeightsError
    from worker.shared.failures import classify

    f = classify(WeightsError(f"weights for 'mine' are not installed at {tmp_path}/models/mine/flownet.pkl"))
    assert (f.error_type, f.http_status) == ("model_unavailable", 503)
    assert str(tmp_path) not in f.message  # no worker paths in client-facing messages


def test_x264_preset_reaches_the_encoder(engine, tmp_path, monkeypatch):
    import dataclasses

    import rife_core.video.encode as encode

    seen: list[str | None] = []
    real_init = encode.Encoder.__init__

    def spy(self, *args, preset=None, **kwargs):
        seen.append(preset)
        real_init(self, *args, preset=preset, **kwargs)

    monkeypatch.setattr(encode.Encoder, "__init__", spy)
    monkeypatch.setattr(engine, "settings", dataclasses.replace(engine.settings, x264_preset="ultrafast"))
    assert run(engine, tmp_path).frames == 9
    assert seen == ["ultrafast"]


def test_an_unknown_x264_preset_stops_the_worker_at_start():
    from worker.shared.settings import SettingsError

    with pytest.raises(SettingsError, match="X264_PRESET: preset must be one of ultrafast"):
        RifeEngine(Settings(rife_device="cpu", x264_preset="fastest"))


def test_the_worker_warms_its_model_at_start(monkeypatch):
    from rife_core.interpolator import Interpolator

    calls: list[tuple[int, ...]] = []
    real = Interpolator.interpolate

    def spy(self, frames0, frames1, timesteps, on_device=False):
        calls.append(tuple(frames0.shape))
        return real(self, frames0, frames1, timesteps, on_device)

    monkeypatch.setattr(Interpolator, "interpolate", spy)
    RifeEngine(Settings(rife_device="cpu"))
    assert calls == [(1, 64, 64, 3)]  # one small pass before any job


def test_torch_threads_holds_after_every_model_load():
    import torch

    before = torch.get_num_threads()
    try:
        engine = RifeEngine(Settings(rife_device="cpu", torch_threads=1))
        assert torch.get_num_threads() == 1  # loading sets every core; the worker's share wins
        engine.model_for(None, "best")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_engine_passes_the_worker_options_to_segments_and_the_merge(engine, tmp_path):
    """plan_segments / run_segment / merge_segments use `options` (the same as `run`): a 2-segment split of a
    real clip joins to the unsplit run's frame count."""
    src = write_video(tmp_path / "in.mp4", [moving_square(i) for i in range(12)], rate=10)
    request = VideoInput(video_url="x", num_frames=1)
    segments = engine.plan_segments(src, request, segment_s=0.5, min_s=0.1, log=lambda level, msg: None)
    assert len(segments) == 2 and not engine.plan_segments(src, request, segment_s=0.5, min_s=5.0, log=lambda *a: None)
    parts = []
    for seg in segments:
        out = tmp_path / f"seg{seg['index']}.mp4"
        result = engine.run_segment(src, out, request, seg, progress=lambda p: None, log=lambda *a: None, should_cancel=lambda: False)
        parts.append((out, result.to_json()))
    merged = engine.merge_segments(src, parts, tmp_path / "merged.mp4", request, log=lambda *a: None)
    assert merged.output_frames == 23 == read_video(tmp_path / "merged.mp4").frames


def test_rife_precision_reaches_every_model_the_worker_loads():
    engine = RifeEngine(Settings(rife_device="cpu", rife_precision="fp32"))
    assert engine.model.precision == "fp32" and engine.model_for(None, "best").precision == "fp32"
    with pytest.raises(ValueError, match="'fp16' is not supported on the CPU"):
        RifeEngine(Settings(rife_device="cpu", rife_precision="fp16"))
