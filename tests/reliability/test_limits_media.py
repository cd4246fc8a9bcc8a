"""Job limits and broken media through the whole service with the real model and pipeline.

The real stack's worker runs RIFE 4.0 on the CPU with MAX_VIDEO_DURATION_S=3, MAX_VIDEO_FRAMES=80,
MAX_VIDEO_WIDTH/HEIGHT=320/240 and MAX_OUTPUT_FRAMES=200; inputs arrive as data: URIs (stored by
the API) or through the upload route (fetched back by the worker from its presigned URL). Every
request must end COMPLETED with its own error type (or succeed), never a 500, never hang.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from clips import cut_clip
from media import broken_corpus, make_clip
from relkit import KEYS, client, data_uri, submit, wait_done
from servicekit import Stack

from api.auth import key_fingerprint
from worker.shared.queue import RequestQueue
from worker.shared.settings import Settings

pytestmark = pytest.mark.timeout(240)


def _upload(c, payload: bytes, name: str) -> str:
    r = c.post("/storage/upload", content=payload, headers={"content-type": "video/mp4", "x-fal-file-name": name})
    assert r.status_code == 200, r.text
    return str(r.json()["url"])


def test_each_job_limit_ends_with_its_own_error_type(real: Stack, tmp_path: Path, observe):
    cases = {
        "duration_limit": (make_clip(tmp_path / "long.mp4", frames=8, fps=2), {}),  # 4 s > 3 s
        "frame_limit": (make_clip(tmp_path / "many.mp4", frames=90, fps=60), {}),  # 90 > 80 frames
        "resolution_limit": (make_clip(tmp_path / "wide.mp4", width=400, height=300, frames=3), {}),  # > 320x240
        "output_limit": (make_clip(tmp_path / "out.mp4", frames=60, fps=30), {"num_frames": 4}),  # 296 > 200 frames
    }
    with client(real) as c:
        ids = {name: submit(c, {"video_url": data_uri(path.read_bytes()), **extra}) for name, (path, extra) in cases.items()}
        finals = {name: wait_done(c, request_id, 60) for name, request_id in ids.items()}
        results = {name: c.get(f"/fal-ai/rife/requests/{request_id}") for name, request_id in ids.items()}
    assert {name: f.get("error_type") for name, f in finals.items()} == {name: name for name in cases}
    for name, r in results.items():
        assert r.status_code == 422 and r.headers["x-fal-error-type"] == name
        assert r.json()["detail"][0]["loc"] == ["body", "video_url"] and r.json()["detail"][0]["msg"]
    observe(fault="inputs over each job limit (real pipeline)", outcomes={n: f["error_type"] for n, f in finals.items()}, server_errors=0)


def test_job_timeout_stops_the_real_pipeline(real: Stack, tmp_path: Path, observe):
    from rife_core.samples import sample_clip

    clip = cut_clip(sample_clip("carphone_pristine.mp4"), tmp_path / "carphone40.mp4", 40)
    settings = Settings.from_env(real.env, job_timeout_s=1)  # as an API with JOB_TIMEOUT_S=1 would enqueue it
    queued = RequestQueue(real.redis, settings).submit(
        {"video_url": data_uri(clip.read_bytes()), "num_frames": 4}, owner=key_fingerprint(KEYS[0]), base_url=real.url
    )
    with client(real) as c:
        final = wait_done(c, queued.id, 60)
        rec = real.record(queued.id)
        after = wait_done(c, submit(c, {"video_url": data_uri(make_clip(tmp_path / "ok.mp4").read_bytes())}), 60)
    ran_s = float(rec["completed_at"]) - float(rec["started_at"])
    assert final["error_type"] == "generation_timeout", final
    assert ran_s < 3.0, ran_s
    assert "error" not in after  # the worker goes on with the next job
    observe(fault="real pipeline over JOB_TIMEOUT_S=1 (40 frames 176x144, num_frames=4)", stopped_after_s=round(ran_s, 2),
            error_type="generation_timeout", next_job="ok")


def test_broken_media_ends_with_specific_error_types(real: Stack, tmp_path: Path, observe):
    corpus = broken_corpus(tmp_path / "corpus")
    started = time.monotonic()
    with client(real) as c:
        ids = {}
        for i, (name, (payload, _)) in enumerate(corpus.items()):
            if i % 2 and payload:  # half through the upload route, as fal_client.upload_file would
                url = _upload(c, payload, "clip.mp4")
            else:
                url = data_uri(payload)
            ids[name] = submit(c, {"video_url": url})
        finals = {name: wait_done(c, request_id, 90) for name, request_id in ids.items()}
        results = {name: c.get(f"/fal-ai/rife/requests/{request_id}").status_code for name, request_id in ids.items()}
        empty_upload = c.post("/storage/upload", content=b"", headers={"content-type": "video/mp4"})
    got = {name: finals[name].get("error_type") for name in corpus}
    assert got == {name: expected for name, (_, expected) in corpus.items()}
    assert all(code < 500 for code in results.values()), results
    shown = " ".join(f.get("error", "") for f in finals.values())
    assert real.env["WORKER_TMP_DIR"] not in shown and "/job-" not in shown  # no local paths in messages
    assert empty_upload.status_code == 400 and empty_upload.json()["error_type"] == "empty_upload"
    observe(fault="broken media corpus through the service", files=len(corpus), outcomes=got, result_codes=results,
            server_errors=0, all_done_in_s=round(time.monotonic() - started, 2))
