"""Fan-out with the real RIFE model and pipeline: a real clip split across two worker processes joins
into the same frames, count and rate as the unsplit run of the same clip.

The split stack's workers run the real engine (RifeEngine, CPU) with SPLIT_MIN_S and SPLIT_SEGMENT_S
tiny, so a 10-frame clip (0.33 s) becomes two segments; the unsplit run is the same request on the
`real_stack` (fan-out at its default of 300 s). Both outputs are decoded and compared frame by frame:
the segments are encoded separately, so the pictures match within x264's loss, not bit for bit
(bit-identical frames before encoding are the pipeline's own test, tests/video/test_video_segments.py).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from servicekit import Certs, Stack, start_stack, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def split_stack(backends: dict[str, str], certs: Certs, service_logs: Path) -> Iterator[Stack]:
    extra = {"RIFE_DEVICE": "cpu", "MAX_VIDEO_FRAMES": "10", "SPLIT_MIN_S": "0.1", "SPLIT_SEGMENT_S": "0.15",
             "OMP_NUM_THREADS": "1"}
    with start_stack("realsplit", backends, certs, service_logs, workers=2, extra=extra) as stack:
        yield stack


@pytest.fixture(scope="module")
def clip10(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 10 frames of carphone_pristine.mp4 (176x144, 29.97 fps)."""
    from clips import cut_clip

    from rife_core.samples import sample_clip

    return cut_clip(sample_clip("carphone_pristine.mp4"), tmp_path_factory.mktemp("clips") / "carphone10.mp4", 10)


def run(stack: Stack, clip: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit the clip (num_frames 1) and wait: (final status with logs, result)."""
    url = "data:video/mp4;base64," + base64.b64encode(clip.read_bytes()).decode()
    with stack.client() as c:
        r = c.post("/fal-ai/rife/video", json={"video_url": url, "num_frames": 1})
        assert r.status_code == 200, r.text
        request_id = r.json()["request_id"]
        seen: dict[str, Any] = {}

        def done() -> bool:
            seen.update(c.get(f"/fal-ai/rife/requests/{request_id}/status", params={"logs": "1"}).json())
            return seen["status"] == "COMPLETED"

        wait_for(done, f"{stack.name} request to complete", 400)
        return seen, c.get(f"/fal-ai/rife/requests/{request_id}").json()


def decode(url: str, dest: Path) -> tuple[list[np.ndarray], list[float], Any]:
    dest.write_bytes(httpx.get(url).content)
    with av.open(str(dest)) as c:
        stream = c.streams.video[0]
        frames = [(f.to_ndarray(format="rgb24"), float(f.time)) for f in c.decode(stream)]
        return [f for f, _t in frames], [t for _f, t in frames], stream.average_rate


def test_a_split_run_with_the_real_model_matches_the_unsplit_run(split_stack: Stack, real_stack: Stack, clip10: Path, tmp_path: Path):
    split_status, split = run(split_stack, clip10)
    whole_status, whole = run(real_stack, clip10)
    assert "error" not in split_status and "error" not in whole_status, (split_status, whole_status)
    split_logs = [e["message"] for e in split_status["logs"]]
    assert any(m.startswith("Split into 2 segments") for m in split_logs), split_logs
    assert not any(e["message"].startswith("Split into") for e in whole_status["logs"])
    assert split["media"] == whole["media"] and split["media"]["output_frames"] == 19
    frames_split, times_split, rate_split = decode(split["video"]["url"], tmp_path / "split.mp4")
    frames_whole, times_whole, rate_whole = decode(whole["video"]["url"], tmp_path / "whole.mp4")
    assert len(frames_split) == len(frames_whole) == 19 and rate_split == rate_whole
    assert times_split == pytest.approx(times_whole, abs=1e-3)  # continuous timestamps across the join
    psnr = [psnr_db(a, b) for a, b in zip(frames_split, frames_whole, strict=True)]
    print(f"\nsplit vs unsplit, PSNR per frame (dB): min {min(psnr):.1f}, mean {sum(psnr) / len(psnr):.1f}")
    assert min(psnr) > 33.0, psnr  # the same pictures, encoded by two runs of x264 (lossy, crf 17)
    for i, a in enumerate(frames_split):  # and each the unsplit run's frame at its own place, not a neighbour
        for j in (i - 1, i + 1):
            if 0 <= j < len(frames_whole):
                assert psnr[i] > psnr_db(a, frames_whole[j]), (i, j)


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
