"""Secrets never reach a log line or an error body.

Secrets here: the API keys (and a decoy key a client tried), the S3 secret key (and the access key
as a signing credential), and every presigned URL signature the service handed out. This test
first makes failures happen where they are most tempting to log: bad keys, an engine error whose
message is the S3 secret key, a failing webhook whose body holds a presigned URL, a `video_url`
carrying a signature, and a worker at LOG_LEVEL=DEBUG (botocore prints signed request headers at
that level). Then it reads every log file every server of the session wrote, and every error
response the tests received. It runs last (see conftest) so that the logs of all the faults the
other tests injected are read too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from relkit import (
    ALL_KEYS,
    DECOY_KEY,
    EXPOSURE,
    HookReceiver,
    client,
    data_uri,
    start_worker,
    submit,
    wait_done,
)
from servicekit import Stack, wait_for

pytestmark = pytest.mark.timeout(120)


def test_failures_with_secrets_in_play_leave_no_secret_in_logs_or_error_bodies(chaos: Stack, rel_logs: Path, observe):
    aws_secret = chaos.env["AWS_SECRET_ACCESS_KEY"]
    access_key = chaos.env["AWS_ACCESS_KEY_ID"]
    start_worker(chaos, LOG_LEVEL="DEBUG")
    hook = HookReceiver(status=500)
    try:
        with client(chaos, key=DECOY_KEY) as intruder:
            assert intruder.post("/fal-ai/rife/video", json={"video_url": data_uri(b"gate")}).status_code == 401
            assert intruder.get("/fal-ai/rife/requests/x/status").status_code == 401
        with client(chaos, key=f"{ALL_KEYS[0]}-with-a-suffix") as near_miss:
            assert near_miss.get("/fal-ai/rife/requests/x/status").status_code == 401
        with client(chaos) as c:
            crash = wait_done(c, submit(c, {"video_url": data_uri(f"boom:failed with {aws_secret} and {ALL_KEYS[1]}".encode())}))
            assert crash["error_type"] == "internal_error"
            chaos.redis.set(f"{chaos.queue_name}:gate:open", 1)
            hooked = submit(c, {"video_url": data_uri(b"gate")}, params={"fal_webhook": hook.url})
            done = wait_done(c, hooked)
            assert "X-Amz-Signature=" in c.get(f"/fal-ai/rife/requests/{hooked}").json()["video"]["url"]
            wait_for(lambda: len(hook.posts) >= 1, "the webhook (refused: RQ logs the failed delivery job)", 20)
            signed = c.get(f"/fal-ai/rife/requests/{hooked}").json()["video"]["url"]
            leaky_url = signed.replace("127.0.0.1", "127.0.0.9")  # unreachable, and its signature must not be logged
            fetch_failed = wait_done(c, submit(c, {"video_url": leaky_url}))
            assert fetch_failed["error_type"] == "file_download_error"
            assert "error" not in done
    finally:
        hook.close()

    secrets = {*ALL_KEYS, DECOY_KEY, f"{ALL_KEYS[0]}-with-a-suffix", aws_secret, *EXPOSURE.signatures}
    patterns = [re.compile(re.escape(s)) for s in secrets] + [
        re.compile(rf"Credential={re.escape(access_key)}", re.I),
        re.compile(r"X-Amz-Signature=[0-9a-f]{16}", re.I),
        re.compile(r"Signature=[0-9a-f]{64}"),
    ]
    logs = sorted(rel_logs.rglob("*.log"))
    log_text = {path: path.read_text(errors="replace") for path in logs}
    leaks = [f"{path.name}: {p.pattern[:30]}" for path, text in log_text.items() for p in patterns if p.search(text)]
    body_leaks = [f"{status} {path}: {p.pattern[:30]}" for status, path, text in EXPOSURE.bodies for p in patterns if p.search(text)]
    tracebacks = [f"{status} {path}" for status, path, text in EXPOSURE.bodies if "Traceback" in text]
    assert len(EXPOSURE.signatures) >= 1 and sum(len(t) for t in log_text.values()) > 10_000
    assert "[redacted]" in "".join(log_text.values())  # the debug worker's botocore lines were there, and scrubbed
    assert leaks == [], leaks[:10]
    assert body_leaks == [] and tracebacks == []
    observe(attack="secrets in logs and error bodies", log_files=len(logs), log_bytes=sum(len(t) for t in log_text.values()),
            error_bodies=len(EXPOSURE.bodies), secrets_checked=len(secrets), signatures_checked=len(EXPOSURE.signatures),
            leaks=len(leaks) + len(body_leaks))
