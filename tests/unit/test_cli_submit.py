"""`rife-video submit` before and around the service: parameters checked before any upload, a
missing service named with what to do, the service URL from --url or RIFE_VIDEO_URL.
(Against a real service: tests/service/test_localstack_tls.py.)"""

from __future__ import annotations

import http.server
import threading

import pytest

from api.cli import DEFAULT_URL, _parser, check_arguments, main
from worker.dev.localstack import free_port


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_POST(self) -> None:  # noqa: N802
        _Recorder.requests.append(self.path)
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder():
    _Recorder.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(("flags", "field"), [(["--num-frames", "9"], "num_frames"), (["--fps", "0"], "fps")])
def test_bad_parameters_fail_before_uploading(flags, field, tmp_path, recorder, capsys):
    video = tmp_path / "big.mp4"
    video.write_bytes(b"\0" * 100_000)
    assert main(["submit", str(video), "--url", recorder, *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {field}: ") and err.count("\n") == 1, err
    assert _Recorder.requests == []  # nothing was uploaded


def test_no_service_says_how_to_start_one(tmp_path, capsys):
    video = tmp_path / "in.mp4"
    video.write_bytes(b"\0" * 10)
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["submit", str(video), "--url", url]) == 1
    err = capsys.readouterr().err
    assert err == f"error: no service at {url}: start one with `make run`\n"


def test_service_url_from_flag_then_environment(monkeypatch):
    monkeypatch.delenv("RIFE_VIDEO_URL", raising=False)
    assert _parser().parse_args(["submit", "a.mp4"]).url == DEFAULT_URL
    monkeypatch.setenv("RIFE_VIDEO_URL", "https://rife.example:8443")
    assert _parser().parse_args(["submit", "a.mp4"]).url == "https://rife.example:8443"
    assert _parser().parse_args(["submit", "a.mp4", "--url", "http://other:1"]).url == "http://other:1"


def test_arguments_are_checked_with_the_api_request_type():
    assert check_arguments({"video_url": "https://x/a.mp4", "num_frames": 4}) == []
    assert check_arguments({"video_url": "https://x/a.mp4", "num_frames": 5}) == ["num_frames: Expected `int` <= 4"]
