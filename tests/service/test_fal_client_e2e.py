"""End to end with the real RIFE model and pipeline, driven by the official `fal_client`.

A 6-frame cut of real footage (176x144) through the whole service: the client uploads or inlines
it, a worker interpolates it on the CPU, the result lands in SeaweedFS, and the presigned URL
downloads a playable MP4 with (F-1)*n + F frames.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any

import fal_client
import httpx
import pytest
from clips import describe_video
from servicekit import KEYS, Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

APP = "fal-ai/rife/video"
F = 6  # frames in the tiny clip
CLIP_FPS = Fraction(30000, 1001)


def download(url: str, dest: Path) -> dict[str, Any]:
    r = httpx.get(url, timeout=30)
    assert r.status_code == 200, r.text
    dest.write_bytes(r.content)
    return describe_video(dest) | {"bytes": len(r.content)}


def check_video(result: dict[str, Any], dest: Path, frames: int, fps: Fraction) -> None:
    video = result["video"]
    assert video["content_type"] == "video/mp4" and video["file_name"].endswith(".mp4")
    got = download(video["url"], dest)
    assert got["bytes"] == video["file_size"]
    assert got["codec"] == "h264" and "mp4" in got["format"] and got["size"] == (176, 144)
    assert got["frames"] == frames
    assert got["fps"] == fps


def test_subscribe_with_environment_only(real_stack: Stack, tiny_clip: Path, tmp_path: Path):
    """What a user does: set FAL_KEY and the hosts before importing fal_client, call subscribe."""
    script = textwrap.dedent(
        f"""
        import json, fal_client
        updates = []
        def on_update(status):
            updates.append(type(status).__name__)
            for entry in getattr(status, "logs", None) or []:
                updates.append("log:" + entry["message"])
        result = fal_client.subscribe("{APP}", arguments={{
            "video_url": fal_client.encode_file({str(tiny_clip)!r}), "num_frames": 1}},
            with_logs=True, on_queue_update=on_update)
        print(json.dumps({{"result": result, "updates": updates}}))
        """
    )
    env = {
        **os.environ,
        "FAL_KEY": KEYS[0],
        "FAL_QUEUE_RUN_HOST": real_stack.host_port,
        "FAL_RUN_HOST": f"{real_stack.host_port}/run",
        "SSL_CERT_FILE": str(real_stack.certs.ca),
    }
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    updates = report["updates"]
    assert "InProgress" in updates and updates[-1].startswith(("Completed", "log:"))
    assert "Completed" in updates
    logs = [u[4:] for u in updates if u.startswith("log:")]
    assert any(line.startswith("Interpolated") for line in logs), logs
    check_video(report["result"], tmp_path / "out.mp4", (F - 1) * 1 + F, CLIP_FPS * 2)


def test_upload_submit_status_result(real_stack: Stack, tiny_clip: Path, tmp_path: Path, fal):
    clients = fal(real_stack)
    with real_stack.client() as c:
        up = c.post("/storage/upload", content=tiny_clip.read_bytes(), headers={"content-type": "video/mp4", "x-fal-file-name": tiny_clip.name})
        assert up.status_code == 200
    handle = clients.sync.submit(APP, {"video_url": up.json()["url"], "num_frames": 2})
    seen = [type(s).__name__ for s in handle.iter_events(with_logs=True, interval=0.1)]
    assert seen[-1] == "Completed" and seen.count("Completed") == 1
    final = clients.sync.status(APP, handle.request_id, with_logs=True)
    assert isinstance(final, fal_client.Completed) and final.error is None
    assert final.metrics["inference_time"] > 0 and any("Interpolated" in e["message"] for e in final.logs)
    result = handle.get()
    assert clients.sync.result(APP, handle.request_id) == result
    assert result["video"]["file_name"] == "carphone6_rife.mp4"
    check_video(result, tmp_path / "out.mp4", (F - 1) * 2 + F, CLIP_FPS * 3)


def test_sync_run_with_fixed_fps_and_loop(real_stack: Stack, tiny_clip: Path, tmp_path: Path, fal):
    clients = fal(real_stack)
    arguments = {
        "video_url": fal_client.encode_file(tiny_clip),
        "num_frames": 1,
        "use_calculated_fps": False,
        "fps": 12,
        "loop": True,
    }
    result = clients.sync.run(APP, arguments)
    check_video(result, tmp_path / "out.mp4", (F - 1) * 1 + F + 1, Fraction(12))


def test_async_client_subscribe(real_stack: Stack, tiny_clip: Path, tmp_path: Path, fal):
    clients = fal(real_stack)
    updates: list[str] = []

    async def go() -> dict[str, Any]:
        return await clients.aio.subscribe(
            APP,
            {"video_url": fal_client.encode_file(tiny_clip), "num_frames": 1},
            with_logs=True,
            on_queue_update=lambda s: updates.append(type(s).__name__),
        )

    result = asyncio.run(go())
    assert "Completed" in updates
    check_video(result, tmp_path / "out.mp4", (F - 1) + F, CLIP_FPS * 2)


def test_limits_of_the_deployment_are_enforced(real_stack: Stack, tiny_clip: Path, tmp_path: Path, fal):
    """The real stack runs with MAX_VIDEO_FRAMES=10: a 12-frame clip fails before any inference."""
    from clips import cut_clip

    from rife_core.samples import sample_clip

    longer = cut_clip(sample_clip("carphone_pristine.mp4"), tmp_path / "carphone12.mp4", 12)
    with pytest.raises(fal_client.FalClientHTTPError) as e:
        fal(real_stack).sync.subscribe(APP, {"video_url": fal_client.encode_file(longer)})
    assert e.value.status_code == 422 and e.value.error_type == "frame_limit"


def test_cli_submit_uploads_prints_logs_and_downloads(real_stack: Stack, tiny_clip: Path, tmp_path: Path, monkeypatch, capsys):
    from api.cli import main

    monkeypatch.setenv("SSL_CERT_FILE", str(real_stack.certs.ca))
    out = tmp_path / "result.mp4"
    code = main(["submit", str(tiny_clip), "--url", real_stack.url, "--key", KEYS[1], "--num-frames", "3", "-o", str(out), "--poll", "0.1"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "uploading" in printed and "queued" in printed and "[INFO] Interpolated" in printed and f"saved {out}" in printed
    assert describe_video(out)["frames"] == (F - 1) * 3 + F


def test_a_file_that_is_not_a_video_fails_cleanly(real_stack: Stack, fal):
    clients = fal(real_stack)
    handle = clients.sync.submit(APP, {"video_url": fal_client.encode(b"this is not a video", "video/mp4")})
    for _ in handle.iter_events(interval=0.1):
        pass
    status = handle.status()
    assert isinstance(status, fal_client.Completed) and status.error and status.error_type == "invalid_video"
    with pytest.raises(fal_client.FalClientHTTPError) as e:
        handle.get()
    assert e.value.status_code == 422 and e.value.error_type == "invalid_video"
    assert e.value.response_headers["x-fal-error-type"] == "invalid_video"


@pytest.mark.parametrize(
    ("output", "content_type", "suffix", "codec", "container"),
    [
        ({"codec": "vp9"}, "video/webm", ".webm", "vp9", "matroska,webm"),
        ({"codec": "hevc", "container": "mkv"}, "video/x-matroska", ".mkv", "hevc", "matroska,webm"),
        ({"codec": "gif"}, "image/gif", ".gif", "gif", "gif"),
    ],
)
def test_output_format_reaches_the_result(real_stack: Stack, tiny_clip: Path, tmp_path: Path, fal,
                                          output, content_type, suffix, codec, container):
    """The request's `output` extension through the queue: the stored file, its name and its content type."""
    result = fal(real_stack).sync.subscribe(APP, {"video_url": fal_client.encode_file(tiny_clip), "output": output})
    video = result["video"]
    assert video["content_type"] == content_type and video["file_name"].endswith(suffix)
    got = download(video["url"], tmp_path / f"out{suffix}")
    assert got["bytes"] == video["file_size"]
    assert (got["codec"], got["format"], got["frames"]) == (codec, container, (F - 1) + F)


def test_an_impossible_output_is_a_422_naming_the_field(real_stack: Stack, tiny_clip: Path):
    with real_stack.client() as c:
        r = c.post(f"/{APP}", json={"video_url": "https://example.com/a.mp4", "output": {"codec": "prores", "container": "webm"}})
    assert r.status_code == 422
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "output", "container"] and "use mov or mkv" in err["msg"]


def test_target_fps_and_dedup_through_the_service(real_stack: Stack, tiny_clip: Path, tmp_path: Path, fal):
    """The extensions `target_fps` and `dedup` reach the pipeline: exactly the asked rate, the input's duration."""
    result = fal(real_stack).sync.subscribe(
        APP, {"video_url": fal_client.encode_file(tiny_clip), "target_fps": "60", "dedup": True}, with_logs=True)
    got = download(result["video"]["url"], tmp_path / "out.mp4")
    duration = F / CLIP_FPS
    assert got["fps"] == 60 and abs(got["frames"] - round(duration * 60)) <= 1
    assert result["media"]["output_frames"] == got["frames"]
