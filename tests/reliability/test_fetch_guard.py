"""`video_url` fetching cannot reach what it must not, and cannot be held open or flooded.

The guard stack's worker may reach only 127.0.0.1 (FETCH_ALLOW=127.0.0.1/32), so every other
loopback address stands in for a private network: a canary listener on 127.0.0.2 counts any
connection that gets through. A hostile server on 127.0.0.1 redirects, trickles bytes and sends
too much. FETCH_TIMEOUT_S is 2 s and MAX_INPUT_BYTES 200000.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from relkit import HookReceiver, client, data_uri, submit, wait_done
from servicekit import Stack

pytestmark = pytest.mark.timeout(150)

TRICKLE_S = 0.2


class Hostile:
    """Loopback HTTP server: /ok.mp4, /redirect?to=URL, /slow-body, /slow-headers, /big, /big-chunked."""

    def __init__(self) -> None:
        outer = self
        self.stop = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def trickle(self, data: bytes) -> None:
                for byte in data:
                    if outer.stop.is_set():
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(TRICKLE_S)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                try:
                    if url.path == "/ok.mp4":
                        self._send(200, b"gate", {"content-type": "video/mp4"})
                    elif url.path == "/redirect":
                        self._send(302, b"", {"location": parse_qs(url.query)["to"][0]})
                    elif url.path == "/slow-body":
                        self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
                        self.trickle(b"x" * 1000)
                    elif url.path == "/slow-headers":
                        self.trickle(b"HTTP/1.1 200 OK\r\nx-slow: " + b"a" * 1000)
                    elif url.path == "/big":
                        self._send(200, b"x" * 300_000, {"content-type": "video/mp4"})
                    elif url.path == "/big-chunked":
                        self.wfile.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                        for _ in range(30):
                            self.wfile.write(b"2710\r\n" + b"x" * 10_000 + b"\r\n")
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        self._send(404, b"", {})
                except OSError:
                    pass  # the fetcher hung up: that is the point

            def _send(self, code: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


class Canary:
    """A listener on 127.0.0.2 that counts connections: a blocked address must never be connected to."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.2", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = Hostile()
    yield server
    server.close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.close()


def _outcomes(guard: Stack, urls: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Submit each URL (three at a time: MAX_QUEUED_PER_KEY) and wait for all; name -> final status."""
    finals: dict[str, dict[str, Any]] = {}
    names = list(urls)
    with client(guard) as c:
        for i in range(0, len(names), 3):
            batch = {name: submit(c, {"video_url": urls[name]}) for name in names[i : i + 3]}
            for name, request_id in batch.items():
                finals[name] = wait_done(c, request_id, 30) | {"record": guard.record(request_id)}
    return finals


def test_private_loopback_link_local_and_metadata_addresses_are_refused(guard: Stack, hostile: Hostile, canary: Canary, observe):
    p = canary.port
    blocked = {
        "other loopback address": f"http://127.0.0.2:{p}/clip.mp4",
        "hex host resolving to 127.0.0.2": f"http://0x7f000002:{p}/clip.mp4",
        "decimal host resolving to 127.0.0.2": f"http://2130706434:{p}/clip.mp4",
        "IPv4-mapped IPv6": f"http://[::ffff:127.0.0.2]:{p}/clip.mp4",
        "IPv6 loopback": f"http://[::1]:{p}/clip.mp4",
        "unspecified": f"http://0.0.0.0:{p}/clip.mp4",
        "cloud metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "private network": f"http://10.0.0.1:{p}/clip.mp4",
        "redirect to loopback": f"{hostile.base}/redirect?to=http://127.0.0.2:{p}/clip.mp4",
        "redirect to metadata": f"{hostile.base}/redirect?to=http://169.254.169.254/latest/meta-data/",
        "redirect to file:": f"{hostile.base}/redirect?to=file:///etc/passwd",
        "redirect to IPv6 metadata": f"{hostile.base}/redirect?to=http://[fd00:ec2::254]/",
    }
    guard.redis.set(f"{guard.queue_name}:gate:open", 1)
    try:
        allowed = _outcomes(guard, {"allowlisted 127.0.0.1": f"{hostile.base}/ok.mp4"})
        finals = _outcomes(guard, blocked)
    finally:
        guard.redis.delete(f"{guard.queue_name}:gate:open")
    assert "error" not in allowed["allowlisted 127.0.0.1"]
    wrong = {name: (f.get("error_type"), f.get("error")) for name, f in finals.items() if f.get("error_type") != "file_download_error"}
    assert wrong == {}
    for name, final in finals.items():
        refused = "private or reserved address" in final["error"] or "only http and https" in final["error"]
        assert refused, (name, final["error"])
    assert canary.connections == 0
    observe(attack="SSRF: private/loopback/link-local/metadata, by literal, DNS name and redirect", requests_tried=len(blocked),
            refused=len(finals), connections_reaching_the_canary=canary.connections, error_type="file_download_error")


def test_only_http_https_and_data_urls_are_accepted(guard: Stack):
    with client(guard) as c:
        for url in ("file:///etc/passwd", "ftp://example.com/a.mp4", "gopher://127.0.0.1:70/", "javascript:alert(1)",
                    "http://", "http://[::1/clip.mp4", "//example.com/a.mp4", "data-video"):
            r = c.post("/fal-ai/rife/video", json={"video_url": url})
            assert r.status_code == 422, (url, r.text)
            assert r.json()["detail"][0]["loc"] == ["body", "video_url"]


def test_slow_loris_servers_are_cut_off_at_the_deadline(guard: Stack, hostile: Hostile, observe):
    finals = _outcomes(guard, {"slow body": f"{hostile.base}/slow-body", "slow headers": f"{hostile.base}/slow-headers"})
    took = {}
    for name, final in finals.items():
        assert final["error_type"] == "file_download_timeout", (name, final)
        rec = final["record"]
        took[name] = round(float(rec["completed_at"]) - float(rec["started_at"]), 2)
        assert 1.9 <= took[name] < 4.0, took  # FETCH_TIMEOUT_S=2, whatever the server trickles
    observe(attack="slow-loris server (1 byte / 0.2 s, headers or body), FETCH_TIMEOUT_S=2", cut_off_after_s=took,
            error_type="file_download_timeout")


def test_oversized_downloads_are_cut_off(guard: Stack, hostile: Hostile, observe):
    finals = _outcomes(guard, {"declared 300 kB": f"{hostile.base}/big", "chunked 300 kB": f"{hostile.base}/big-chunked"})
    assert {name: f["error_type"] for name, f in finals.items()} == {"declared 300 kB": "file_too_large", "chunked 300 kB": "file_too_large"}
    with client(guard) as c:
        inline = c.post("/fal-ai/rife/video", json={"video_url": data_uri(b"x" * 300_000)})
        upload = c.post("/storage/upload", content=b"x" * 300_000, headers={"content-type": "video/mp4"})
    assert inline.status_code == 422 and inline.json()["detail"][0]["type"] == "file_too_large"
    assert upload.status_code == 413 and upload.json()["error_type"] == "file_too_large"
    observe(attack="inputs over MAX_INPUT_BYTES=200000 (URL with/without length, data: URI, upload)",
            outcomes="file_too_large (job) / 422 file_too_large (inline) / 413 file_too_large (upload)")


def test_webhooks_to_private_addresses_are_never_sent(guard: Stack, hostile: Hostile, canary: Canary):
    public_hook = HookReceiver()  # on the allowlisted 127.0.0.1: a control that webhooks do work
    try:
        guard.redis.set(f"{guard.queue_name}:gate:open", 1)
        with client(guard) as c:
            blocked = submit(c, {"video_url": f"{hostile.base}/ok.mp4"}, params={"fal_webhook": f"http://127.0.0.2:{canary.port}/hook"})
            allowed = submit(c, {"video_url": f"{hostile.base}/ok.mp4"}, params={"fal_webhook": public_hook.url})
            wait_done(c, blocked)
            wait_done(c, allowed)
        deadline = time.monotonic() + 10
        while not public_hook.posts and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.5)  # WEBHOOK_RETRY_DELAYS_S=1,1: the blocked delivery's retries are over
    finally:
        guard.redis.delete(f"{guard.queue_name}:gate:open")
        public_hook.close()
    assert len(public_hook.posts) == 1
    assert canary.connections == 0
