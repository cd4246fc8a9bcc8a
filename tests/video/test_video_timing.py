"""Frame counts, exact timestamps and rates of real outputs, for n = 1..4, both rate modes, loop."""

from __future__ import annotations

from fractions import Fraction

import pytest
from clipmaker import cut_clip, read_video

from rife_core.video.timing import output_frame_count


@pytest.fixture(scope="module")
def carphone_piece(tmp_path_factory, clip):
    """The first 6 frames of carphone_pristine.mp4 (176x144, 30000/1001 fps), losslessly re-encoded."""
    path = tmp_path_factory.mktemp("piece") / "carphone6.mp4"
    cut_clip(clip("carphone_pristine.mp4"), path, start=0, count=6)
    return path


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("loop", [False, True])
@pytest.mark.parametrize("calculated", [True, False])
def test_counts_timestamps_and_rates(carphone_piece, tmp_path, blend, run, n, loop, calculated):
    out = tmp_path / "out.mp4"
    result = run(carphone_piece, out, blend, num_frames=n, loop=loop, use_calculated_fps=calculated, fps=12.5)

    frames = output_frame_count(6, n, loop)
    assert frames == 5 * n + 6 + (n if loop else 0)
    expected_fps = Fraction(30000, 1001) * (n + 1) if calculated else Fraction(25, 2)
    assert result.input_frames == 6 and result.input_fps == Fraction(30000, 1001)
    assert result.output_frames == frames
    assert result.output_fps == expected_fps and isinstance(result.output_fps, Fraction)
    assert (result.width, result.height) == (176, 144)

    got = read_video(out)
    assert got.frames == frames
    assert got.codec == "h264" and got.pix_fmt == "yuv420p"
    assert got.average_rate == expected_fps
    # every timestamp is exactly k / fps: monotonic, no rounding drift
    times = [p * got.time_base for p in got.pts]
    assert times == [Fraction(k) / expected_fps for k in range(frames)]
    assert not list(out.parent.glob(".*partial"))

    assert result.scene_cuts == []
    last = run.progress[-1]
    assert last.frames_done == last.frames_total == frames


def test_progress_is_throttled_and_final(carphone_piece, tmp_path, blend, run):
    run(carphone_piece, tmp_path / "o.mp4", blend, num_frames=4, batch_size=1)
    assert 1 <= len(run.progress) <= 6  # a sub-second job: a few calls, not one per batch
    p = run.progress[-1]
    assert p.frames_done == 26 and p.elapsed_s > 0 and p.fps > 0
    assert p.decode_s >= 0 and p.inference_s >= 0 and p.encode_s > 0


def test_frames_in_flight_stay_bounded_for_long_inputs(tmp_path, blend, run, monkeypatch):
    """400 frames through a slow encoder: the decoder never runs more than a few batches ahead."""
    import time

    from clipmaker import moving_square, write_video

    from rife_core.video import pipeline
    from rife_core.video.encode import Encoder

    src = write_video(tmp_path / "long.mp4", [moving_square(i) for i in range(400)], rate=25)
    counts = {"decoded": 0, "written": 0, "ahead": 0}
    real_decode, real_write = pipeline.decode_frames, Encoder.write

    def counting_decode(*args, **kwargs):
        for frame in real_decode(*args, **kwargs):
            counts["decoded"] += 1
            counts["ahead"] = max(counts["ahead"], counts["decoded"] - counts["written"] // 2)
            yield frame

    def slow_write(self, rgb):
        time.sleep(0.001)
        counts["written"] += 1
        return real_write(self, rgb)

    monkeypatch.setattr(pipeline, "decode_frames", counting_decode)
    monkeypatch.setattr(Encoder, "write", slow_write)
    result = run(src, tmp_path / "out.mp4", blend, num_frames=1, batch_size=4)
    assert result.output_frames == counts["written"] == 799
    print(f"\ninput frames decoded ahead of the encoder, at most: {counts['ahead']} of 400")
    assert counts["ahead"] <= 40
