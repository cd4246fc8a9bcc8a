"""Temporary files: removed after every job whatever its outcome, and after a crash by the next worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from relkit import client, data_uri, files_under, kill_worker, start_worker, submit, wait_done, wait_record
from servicekit import Stack, wait_for

pytestmark = pytest.mark.timeout(120)

GATE = data_uri(b"gate")


def test_temp_files_are_removed_after_success_failure_cancel_and_a_crash(chaos: Stack, observe):
    tmp = Path(chaos.env["WORKER_TMP_DIR"])
    a, a_name = start_worker(chaos)
    counts: dict[str, int] = {"after start": len(files_under(tmp))}
    with client(chaos) as c:
        request_id = submit(c, {"video_url": GATE})
        wait_record(chaos, request_id, lambda r: r.get("status") == "IN_PROGRESS", "running")
        wait_for(lambda: len(files_under(tmp)) >= 2, "the job's files (input, scratch)", 10)
        counts["during a job"] = len(files_under(tmp))
        chaos.release()
        assert "error" not in wait_done(c, request_id)
        counts["after success"] = len(files_under(tmp))

        failed = wait_done(c, submit(c, {"video_url": data_uri(b"boom:engine exploded")}))
        assert failed["error_type"] == "internal_error" and "exploded" not in failed["error"]
        counts["after an engine error"] = len(files_under(tmp))

        too_big = wait_done(c, submit(c, {"video_url": data_uri(b"big:200000")}))  # MAX_OUTPUT_BYTES=100000
        assert too_big["error_type"] == "output_too_large"
        counts["after output_too_large"] = len(files_under(tmp))

        cancelled = submit(c, {"video_url": GATE})
        wait_record(chaos, cancelled, lambda r: r.get("status") == "IN_PROGRESS", "running")
        assert c.put(f"/fal-ai/rife/requests/{cancelled}/cancel").status_code == 202
        assert wait_done(c, cancelled)["error_type"] == "cancelled"
        counts["after cancel"] = len(files_under(tmp))

        crashed = submit(c, {"video_url": GATE})
        wait_record(chaos, crashed, lambda r: r.get("status") == "IN_PROGRESS", "running")
        wait_for(lambda: len(files_under(tmp)) >= 2, "the job's files", 10)
        kill_worker(chaos, a)
        counts["after SIGKILL (dead worker's files)"] = len(files_under(tmp))
        dead_dirs = [d for d in tmp.iterdir() if d.is_dir()]
        b, b_name = start_worker(chaos)  # sweeps the dead worker's folder at start
        counts["after the next worker started"] = len(files_under(tmp))
        assert not any(d.exists() for d in dead_dirs)
        wait_record(chaos, crashed, lambda r: r.get("worker") == b_name, "requeued to the new worker", 20)
        chaos.release()
        assert "error" not in wait_done(c, crashed)
        counts["after the requeued job"] = len(files_under(tmp))
    assert counts["during a job"] >= 2 and counts["after SIGKILL (dead worker's files)"] >= 2
    assert {k: v for k, v in counts.items() if k not in ("during a job", "after SIGKILL (dead worker's files)")} == {
        k: 0 for k in counts if k not in ("during a job", "after SIGKILL (dead worker's files)")
    }
    observe(fault="temp files per outcome", files=counts)
