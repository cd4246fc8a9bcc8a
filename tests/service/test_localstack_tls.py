"""`make run TLS=1` as a new user runs it: the README's fal_client snippet unchanged against the
stack it starts (real processes: redis-server, SeaweedFS, the https API, a RIFE worker on the CPU),
real-world media through it (no 5xx, no errno numbers or temp paths in any message), and the local
fetch allowlist: loopback is reachable, the stack's own Redis and S3 ports are not."""

from __future__ import annotations

import http.server
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "video"))
from corpus import BY_NAME, truncate, write_case, write_y4m_declaring  # noqa: E402

from worker.dev.localstack import free_port  # noqa: E402

pytestmark = pytest.mark.timeout(420)
ROOT = Path(__file__).resolve().parents[2]
_INTERNALS = re.compile(r"errno|avcodec|avformat|returned -?\d|/tmp/|\[Errno|Traceback", re.IGNORECASE)


@dataclass
class TlsStack:
    url: str
    exports: dict[str, str]
    redis_port: int
    s3_port: int
    filer_port: int
    master_port: int
    data_dir: Path
    output: list[str]


def _make_run_command() -> list[str]:
    """What `make run TLS=1` runs, read from the Makefile's dry run (so the test follows the Makefile)."""
    dry = subprocess.run(["make", "-n", "run", "TLS=1"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    line = next(x for x in dry.splitlines() if "worker.dev.localstack" in x)
    assert line.rstrip().endswith("--tls"), line
    return [sys.executable, "-m", "worker.dev.localstack", "--tls"]


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsStack]:
    data_dir = tmp_path_factory.mktemp("make-run-tls")
    port = free_port()
    env = {**os.environ, "RIFE_DATA_DIR": str(data_dir), "API_PORT": str(port), "PYTHONPATH": str(ROOT)}
    env.pop("SSL_CERT_FILE", None)
    proc = subprocess.Popen(_make_run_command(), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        while not any(x.startswith("export FAL_RUN_HOST=") for x in lines):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        text = "".join(lines)
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", text, re.M))
        yield TlsStack(
            url=f"https://127.0.0.1:{port}",
            exports=exports,
            redis_port=int(re.search(r"Redis redis://127\.0\.0\.1:(\d+)", text)[1]),
            s3_port=int(re.search(r"S3 http://127\.0\.0\.1:(\d+)", text)[1]),
            filer_port=int(re.search(r"-filer\.port=(\d+)", _weed_command(data_dir))[1]),
            master_port=int(re.search(r"-master\.port=(\d+)", _weed_command(data_dir))[1]),
            data_dir=data_dir,
            output=lines,
        )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _weed_command(data_dir: Path) -> str:
    """The command line of the stack's SeaweedFS (its ports), from /proc: the stack prints only S3's."""
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if " mini " in cmd and str(data_dir) in cmd:
            return cmd
    raise AssertionError("the stack's SeaweedFS process was not found")


def _readme_snippet() -> str:
    readme = (ROOT / "README.md").read_text()
    return re.search(r"```python\n(import fal_client.*?)```", readme, re.S)[1]


def test_prints_the_export_lines_and_serves_https(tls_stack: TlsStack):
    host = tls_stack.url.removeprefix("https://")
    assert tls_stack.exports == {
        "SSL_CERT_FILE": str(tls_stack.data_dir / "tls" / "ca.pem"),
        "FAL_KEY": tls_stack.exports["FAL_KEY"],
        "FAL_QUEUE_RUN_HOST": host,
        "FAL_RUN_HOST": f"{host}/run",
    }
    verify = ssl.create_default_context(cafile=tls_stack.exports["SSL_CERT_FILE"])
    assert httpx.get(f"{tls_stack.url}/health", verify=verify).status_code == 200
    with pytest.raises(httpx.ConnectError):  # a client without the local CA is refused, as it should be
        httpx.get(f"{tls_stack.url}/health", verify=ssl.create_default_context())


def test_readme_fal_client_snippet_runs_unchanged(tls_stack: TlsStack, tmp_path: Path):
    write_case(BY_NAME["mp4_h264_aac"], tmp_path).rename(tmp_path / "in.mp4")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")} | tls_stack.exports
    done = subprocess.run([sys.executable, "-c", _readme_snippet()], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    url = done.stdout.strip().splitlines()[-1]
    assert url.startswith("http") and "Completed(" in done.stdout
    video = httpx.get(url, timeout=30)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"


def _client(stack: TlsStack) -> httpx.Client:
    verify = ssl.create_default_context(cafile=stack.exports["SSL_CERT_FILE"])
    return httpx.Client(base_url=stack.url, verify=verify, timeout=30)


def _run_to_end(c: httpx.Client, body: dict) -> tuple[httpx.Response, dict]:
    r = c.post("/fal-ai/rife/video", json=body)
    assert r.status_code == 200, r.text
    request_id = r.json()["request_id"]
    deadline = time.monotonic() + 120
    while True:
        status = c.get(f"/fal-ai/rife/requests/{request_id}/status", params={"logs": "1"}).json()
        if status["status"] == "COMPLETED":
            return c.get(f"/fal-ai/rife/requests/{request_id}"), status
        assert time.monotonic() < deadline, status
        time.sleep(0.3)


def _data_uri(path: Path) -> str:
    import base64

    return "data:application/octet-stream;base64," + base64.b64encode(path.read_bytes()).decode()


def test_real_world_media_never_5xx_and_say_why_in_plain_words(tls_stack: TlsStack, tmp_path: Path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 40)
    cases = {
        "ogg": (write_case(BY_NAME["ogg_vp8_vorbis_empty"], tmp_path), 200, None),
        "truncated_mp4": (truncate(write_case(BY_NAME["mp4_h264_aac"], tmp_path), 0.3), 200, None),
        "huge_y4m": (write_y4m_declaring(tmp_path / "huge.y4m", 30000, 30000), 422, "resolution_limit"),
        "text": (text, 422, "invalid_video"),
    }
    outcomes = {}
    with _client(tls_stack) as c:
        for name, (path, status, error_type) in cases.items():
            result, final = _run_to_end(c, {"video_url": _data_uri(path)})
            outcomes[name] = result.status_code
            assert result.status_code == status, (name, result.text)
            messages = [entry["message"] for entry in final.get("logs") or []]
            if status == 422:
                detail = result.json()["detail"][0]
                assert detail["type"] == error_type and detail["loc"] == ["body", "video_url"]
                messages.append(detail["msg"])
            else:
                messages.extend(result.json().get("warnings", []))
            for message in messages:
                assert not _INTERNALS.search(message), (name, message)
            outcomes[name] = (result.status_code, result.json().get("warnings") or result.json().get("detail"))
    assert all(code < 500 for code, _ in outcomes.values()), outcomes
    assert outcomes["text"][1][0]["msg"] == "not a video: looks like a text file"
    assert "30000x30000" in outcomes["huge_y4m"][1][0]["msg"]
    truncated = [w for w in outcomes["truncated_mp4"][1] if "truncated" in w]
    # 3 frames survive, at 0, 0.1 and 0.4 s (the cut took B-frames): 0.6 s at their average rate.
    assert truncated and "recovered 3 frames (0.60 s) of about 12 (1.20 s)" in truncated[0], outcomes["truncated_mp4"]


class _ClipHandler(http.server.BaseHTTPRequestHandler):
    payload = b""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("content-type", "video/mp4")
        self.send_header("content-length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args: object) -> None:
        pass


def test_fetches_from_loopback_but_never_from_its_own_redis_or_s3(tls_stack: TlsStack, tmp_path: Path):
    _ClipHandler.payload = write_case(BY_NAME["mp4_h264_aac"], tmp_path).read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ClipHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with _client(tls_stack) as c:
            local, _ = _run_to_end(c, {"video_url": f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"})
            own = {
                "redis": _run_to_end(c, {"video_url": f"http://127.0.0.1:{tls_stack.redis_port}/"})[0],
                "redis by name": _run_to_end(c, {"video_url": f"http://localhost:{tls_stack.redis_port}/x.mp4"})[0],
                "seaweedfs filer": _run_to_end(c, {"video_url": f"http://127.0.0.1:{tls_stack.filer_port}/"})[0],
                "seaweedfs master": _run_to_end(c, {"video_url": f"http://127.0.0.1:{tls_stack.master_port}/dir/status"})[0],
            }
            # The S3 gateway too: only a presigned URL of the service's own bucket passes (the gateway checks
            # its signature: a forged one is its 403); unsigned requests never leave the worker.
            own["s3 unsigned"] = _run_to_end(c, {"video_url": f"http://127.0.0.1:{tls_stack.s3_port}/rife-video/_ready"})[0]
            own["s3 other path"] = _run_to_end(
                c, {"video_url": f"http://127.0.0.1:{tls_stack.s3_port}/other-bucket/x?X-Amz-Signature=ab"})[0]
            forged, _ = _run_to_end(c, {"video_url": f"http://127.0.0.1:{tls_stack.s3_port}/rife-video/rife-video/"
                                                     f"uploads/x.mp4?X-Amz-Signature=00&X-Amz-Credential=x"})
    finally:
        server.shutdown()
    assert local.status_code == 200, local.text
    assert local.json()["video"]["file_name"] == "clip_rife.mp4"
    for name, r in own.items():
        assert r.status_code == 422, (name, r.text)
        assert "one of this service's own servers" in r.json()["detail"][0]["msg"], (name, r.text)
    # Reached the gateway, which refused the bad signature (400 for its malformed credential, 403 for a wrong one).
    assert forged.status_code == 422 and re.search(r"HTTP 40[03]", forged.json()["detail"][0]["msg"]), forged.text
    redis_log = (tls_stack.data_dir / "redis" / "redis.log").read_text()
    assert "SECURITY ATTACK" not in redis_log


def test_rife_video_submit_against_the_tls_stack(tls_stack: TlsStack, tmp_path: Path):
    src = truncate(write_case(BY_NAME["mp4_h264_aac"], tmp_path), 0.3, tmp_path / "cut.mp4")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RIFE_VIDEO_URL": tls_stack.url,
           "SSL_CERT_FILE": tls_stack.exports["SSL_CERT_FILE"]}
    cli = [sys.executable, "-m", "api.cli", "submit"]
    done = subprocess.run([*cli, str(src)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cut_rife.mp4").stat().st_size > 0
    assert "warning: the video looks truncated" in done.stderr
    # The API's own 422, printed as one `field: message` line each.
    refused = subprocess.run([*cli, "https://"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 1
    assert re.search(r"^  video_url: .+", refused.stderr, re.M), refused.stderr
    assert "Traceback" not in refused.stderr and "{'" not in refused.stderr
