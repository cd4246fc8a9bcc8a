"""`rife-video`: the command line.

- `submit FILE|URL`: send a video to a running service (uploading a local file first), print its
  logs as they arrive, and download the result.
- `interpolate`, `models`: local work without the service, handled by `rife_core.cli` (imported
  only then, so the API's client needs no torch).
- `api`, `worker`: run the service's processes (same as `python -m api` / `python -m worker`).
"""

from __future__ import annotations

import argparse
import mimetypes
import os
import re
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec

from api.models import ENDPOINT_ID, VideoInput

DEFAULT_URL = "http://127.0.0.1:8000"

LOCAL_COMMANDS = ("interpolate", "models")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rife-video", description="RIFE video frame interpolation.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("submit", help="interpolate a video on a running rife-video service")
    s.add_argument("video", help="a local file (uploaded first) or an http(s) URL")
    s.add_argument("--url", default=os.environ.get("RIFE_VIDEO_URL") or DEFAULT_URL,
                   help=f"base URL of the service (default: $RIFE_VIDEO_URL, else {DEFAULT_URL})")
    s.add_argument("--key", default=None, help="API key, sent as `Authorization: Key <key>`")
    s.add_argument("--num-frames", type=int, default=1, help="frames generated between each pair (1..4)")
    s.add_argument("--scene-detection", action="store_true", help="do not interpolate across scene cuts")
    s.add_argument("--fps", type=int, default=None, help="fixed output fps (1..60) instead of input fps x (n+1)")
    s.add_argument("--loop", action="store_true", help="also interpolate last -> first frame")
    s.add_argument("-o", "--output", type=Path, default=None, help="where to save the result (default <name>_rife.mp4)")
    s.add_argument("--poll", type=float, default=0.5, help="status poll interval in seconds")
    for name in LOCAL_COMMANDS:
        sub.add_parser(name, help=f"local work without the service (see `rife-video {name} --help`)", add_help=False)
    sub.add_parser("api", help="run the API server (settings from the environment)")
    sub.add_parser("worker", help="run a worker process (settings from the environment)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LOCAL_COMMANDS:
        from rife_core.cli import main as local_main  # torch is imported only here

        return int(local_main(argv) or 0)
    if argv and argv[0] == "worker":
        from worker.process.main import main as worker_main

        return worker_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "api":
        from api.__main__ import main as api_main

        return api_main()
    return submit(args)


def _arguments(args: argparse.Namespace, video_url: str) -> dict[str, Any]:
    body: dict[str, Any] = {"video_url": video_url, "num_frames": args.num_frames}
    if args.scene_detection:
        body["use_scene_detection"] = True
    if args.fps is not None:
        body |= {"use_calculated_fps": False, "fps": args.fps}
    if args.loop:
        body["loop"] = True
    return body


def _fail(response: httpx.Response) -> int:
    """Print an error response: a 422's details as one `field: message` line each."""
    try:
        body = response.json()
        detail = body.get("detail", response.text) if isinstance(body, dict) else body
    except ValueError:
        detail = response.text
    if isinstance(detail, list):
        print(f"error: HTTP {response.status_code}:", file=sys.stderr)
        for item in detail:
            if isinstance(item, dict):
                loc = item.get("loc") or []
                field = str(loc[-1]) if loc else "request"
                print(f"  {field}: {item.get('msg', item)}", file=sys.stderr)
            else:
                print(f"  {item}", file=sys.stderr)
        return 1
    print(f"error: HTTP {response.status_code}: {detail}", file=sys.stderr)
    return 1


_MSGSPEC_ERROR = re.compile(r"^(?P<msg>.*?)(?: - at `\$\.(?P<field>[\w.]+)`)?$", re.DOTALL)


def check_arguments(body: dict[str, Any]) -> list[str]:
    """`field: message` for each parameter the service would refuse, checked here with the API's own
    request type so that a bad `--num-frames` fails before a large file is uploaded."""
    try:
        msgspec.convert(body, VideoInput)
    except msgspec.ValidationError as e:
        match = _MSGSPEC_ERROR.match(str(e))
        field = (match and match["field"]) or "request"
        message = (match and match["msg"]) or str(e)
        return [f"{field}: {message}"]
    return []


def upload(client: httpx.Client, base: str, path: Path) -> str:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    with path.open("rb") as f:
        r = client.post(f"{base}/storage/upload", content=f, headers={"content-type": content_type, "x-fal-file-name": path.name})
    r.raise_for_status()
    return str(r.json()["url"])


def submit(args: argparse.Namespace) -> int:
    base = args.url.rstrip("/")
    problems = check_arguments(_arguments(args, "https://example.com/placeholder.mp4"))
    if problems:
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
    try:
        return _submit(args, base)
    except httpx.ConnectError as e:
        if "CERTIFICATE_VERIFY_FAILED" in str(e):
            print(f"error: the TLS certificate of {base} is not trusted: set SSL_CERT_FILE to its CA "
                  f"(`make run TLS=1` prints the line)", file=sys.stderr)
        else:
            print(f"error: no service at {base}: start one with `make run`", file=sys.stderr)
        return 1
    except httpx.TimeoutException:
        print(f"error: the service at {base} did not answer in time", file=sys.stderr)
        return 1
    except httpx.HTTPError as e:
        print(f"error: talking to {base} failed ({type(e).__name__})", file=sys.stderr)
        return 1


def _submit(args: argparse.Namespace, base: str) -> int:
    headers = {"Authorization": f"Key {args.key}"} if args.key else {}
    source = args.video
    # The system trust store, which honours SSL_CERT_FILE (`make run TLS=1`'s CA), as fal's clients do.
    verify = ssl.create_default_context()
    with httpx.Client(headers=headers, timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True,
                      verify=verify) as client:
        if source.startswith(("http://", "https://")):
            video_url = source
        else:
            path = Path(source)
            if not path.is_file():
                print(f"error: {path} is not a file", file=sys.stderr)
                return 2
            print(f"uploading {path} ...", flush=True)
            try:
                video_url = upload(client, base, path)
            except httpx.HTTPStatusError as e:
                return _fail(e.response)
        r = client.post(f"{base}/{ENDPOINT_ID}", json=_arguments(args, video_url))
        if r.status_code != 200:
            return _fail(r)
        queued = r.json()
        print(f"request {queued['request_id']} queued", flush=True)
        result = _follow(client, queued, args.poll)
        if result.status_code != 200:
            return _fail(result)
        body = result.json()
        for warning in body.get("warnings") or []:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        video = body["video"]
        stem = Path(source).stem if not source.startswith(("http://", "https://")) else "video"
        output = args.output or Path(f"{stem}_rife.mp4")
        with client.stream("GET", video["url"]) as download:
            download.raise_for_status()
            with output.open("wb") as out:
                for chunk in download.iter_bytes():
                    out.write(chunk)
        print(f"saved {output} ({video['file_size']} bytes)", flush=True)
    return 0


def _follow(client: httpx.Client, queued: dict[str, Any], poll_s: float) -> httpx.Response:
    """Poll the status (printing new log lines and queue moves) until COMPLETED; return the result response."""
    seen = 0
    last_position = None
    while True:
        r = client.get(queued["status_url"], params={"logs": "1"})
        if r.status_code not in (200, 202):
            return r
        status = r.json()
        if status["status"] == "IN_QUEUE" and status.get("queue_position") != last_position:
            last_position = status.get("queue_position")
            print(f"in queue, position {last_position}", flush=True)
        logs = status.get("logs") or []
        for entry in logs[seen:]:
            print(f"[{entry['level']}] {entry['message']}", flush=True)
        seen = max(seen, len(logs))
        if status["status"] == "COMPLETED":
            return client.get(queued["response_url"])
        time.sleep(poll_s)


if __name__ == "__main__":
    sys.exit(main())
