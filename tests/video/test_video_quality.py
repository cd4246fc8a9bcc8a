"""The real model on real footage: interpolated frames must beat blending, cuts must never be mixed."""

from __future__ import annotations

import numpy as np
import pytest
from clipmaker import cut_clip, psnr, read_pngs

from rife_core.video.scenes import CutDetector

pytestmark = pytest.mark.slow


def test_interpolation_beats_blending_on_real_motion(tmp_path, clip, model, run):
    """Drop every other frame of a fast pan in bikes.mp4, interpolate them back (n=1).

    A pan with several pixels of motion per frame is where blending ghosts and flow wins; on
    near-static footage (carphone's first seconds) a 50/50 blend is already within 1 dB.
    """
    src = tmp_path / "half.mp4"
    # frames 40, 42, ... 56 (inside one shot), scaled to 320x136
    originals = cut_clip(clip("bikes.mp4"), src, start=40, count=9, step=2, size=(320, 136))
    result = run(src, tmp_path / "out.mp4", model, num_frames=1, frames_dir=tmp_path / "png")
    frames = read_pngs(tmp_path / "png")
    assert len(frames) == result.output_frames == 17
    # the kept frames come back unchanged (lossless piece, lossless PNG)
    for i in range(0, 17, 2):
        assert np.array_equal(frames[i], originals[i])
    rife = [psnr(frames[i], originals[i]) for i in range(1, 17, 2)]
    blend = [
        psnr(((originals[i - 1].astype(np.uint16) + originals[i + 1] + 1) // 2).astype(np.uint8), originals[i])
        for i in range(1, 17, 2)
    ]
    print(f"\nPSNR of the 8 dropped frames: RIFE {np.mean(rife):.2f} dB, 50/50 blend {np.mean(blend):.2f} dB")
    print("per frame RIFE :", " ".join(f"{v:.2f}" for v in rife))
    print("per frame blend:", " ".join(f"{v:.2f}" for v in blend))
    assert np.mean(rife) > np.mean(blend) + 3.0
    assert sum(r > b for r, b in zip(rife, blend, strict=True)) >= 7


@pytest.fixture(scope="module")
def bikes_cut(tmp_path_factory, clip):
    """bikes.mp4 frames 26..35 at 160x68: a hard cut between piece frames 3 and 4 (source 29|30)."""
    path = tmp_path_factory.mktemp("bikes") / "bikes_cut.mp4"
    frames = cut_clip(clip("bikes.mp4"), path, start=26, count=10, size=(160, 68))
    return path, frames


@pytest.mark.parametrize("n", [1, 3])
def test_no_generated_frame_mixes_two_shots(tmp_path, bikes_cut, model, run, n):
    src, originals = bikes_cut
    result = run(src, tmp_path / "out.mp4", model, num_frames=n, use_scene_detection=True, frames_dir=tmp_path / "png")
    assert result.scene_cuts == [4]
    frames = read_pngs(tmp_path / "png")
    assert len(frames) == 9 * n + 10
    # the slots between piece frames 3 and 4 repeat the nearer real frame exactly
    start = 3 * (n + 1)
    assert np.array_equal(frames[start], originals[3])
    for k in range(1, n + 1):
        nearer = originals[3] if k / (n + 1) < 0.5 else originals[4]
        assert np.array_equal(frames[start + k], nearer), f"slot {k}/{n + 1} across the cut is not a real frame"
    assert np.array_equal(frames[start + n + 1], originals[4])
    # elsewhere frames really are interpolated (the model ran)
    assert not np.array_equal(frames[1], originals[0]) and not np.array_equal(frames[1], originals[1])
    assert "scene cut before input frame 4" in run.text()


def test_without_detection_the_cut_is_blended(tmp_path, bikes_cut, model, run):
    """The control: the same piece without detection does produce a mixed frame (so the test above means something)."""
    src, originals = bikes_cut
    run(src, tmp_path / "out.mp4", model, num_frames=1, frames_dir=tmp_path / "png")
    mid = read_pngs(tmp_path / "png")[7]
    assert not np.array_equal(mid, originals[3]) and not np.array_equal(mid, originals[4])


def test_cut_right_after_the_first_frame_and_loop_wrap(tmp_path, clip, model, run):
    """Every cut counts: one between frames 0 and 1, and with loop the last -> first jump."""
    src = tmp_path / "edge.mp4"
    originals = cut_clip(clip("bikes.mp4"), src, start=29, count=5, size=(160, 68))
    result = run(
        src,
        tmp_path / "out.mp4",
        model,
        num_frames=1,
        use_scene_detection=True,
        loop=True,
        frames_dir=tmp_path / "png",
    )
    assert result.scene_cuts == [0, 1]  # 0: the wrap from the last frame back to the first
    frames = read_pngs(tmp_path / "png")
    assert len(frames) == 4 + 5 + 1
    assert np.array_equal(frames[1], originals[1])  # t=0.5 across the cut -> the later frame
    assert np.array_equal(frames[-1], originals[0])  # wrap slot repeats the first frame


def test_detector_finds_every_cut_of_bikes(clip):
    """The tuned threshold on the whole clip: exactly its 5 hard cuts, no false ones."""
    import av

    with av.open(str(clip("bikes.mp4"))) as c:
        s = c.streams.video[0]
        detector = CutDetector(s.average_rate)
        cuts = [i for i, f in enumerate(c.decode(s)) if detector.push(f.to_ndarray(format="rgb24"))]
    assert cuts == [30, 76, 137, 187, 242]
