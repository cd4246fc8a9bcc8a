"""The playground route (`GET /` and its assets) in-process, and the result's `media` summary."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from litestar.testing import TestClient

from api.app import create_app
from api.routes.playground import ASSETS, STATIC_DIR
from worker.process.jobs import media_summary

ROOT = Path(__file__).resolve().parents[2]


def test_page_says_whether_keys_are_needed(settings, redis, runtime):
    for keys, flag in (((), "0"), (("k1",), "1")):
        with TestClient(create_app(replace(settings, api_keys=keys), redis=redis)) as c:
            r = c.get("/")  # no key needed for the page itself
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert f'<body data-auth="{flag}">' in r.text
            assert "default-src 'self'" in r.headers["content-security-policy"]


def test_assets_are_a_fixed_list_with_their_types(settings, redis, runtime):
    with TestClient(create_app(settings, redis=redis)) as c:
        for name in ASSETS:
            r = c.get(f"/playground/{name}")
            assert r.status_code == 200 and r.text == (STATIC_DIR / name).read_text()
            assert r.headers["content-type"].split(";")[0] == ("text/css" if name.endswith(".css") else "text/javascript")
        for name in ("index.html", "..%2Fapp.py", "nope.js"):
            assert c.get(f"/playground/{name}").status_code == 404
        assert "/" not in c.get("/openapi.json").json()["paths"]  # not part of the API


def test_the_page_references_only_its_own_assets():
    """Everything the page loads is served (and shipped): nothing is fetched from elsewhere."""
    html = (STATIC_DIR / "index.html").read_text()
    referenced = set(re.findall(r'(?:src|href)="/playground/([^"]+)"', html))
    for name in [n for n in ASSETS if n.endswith(".js")]:
        referenced |= set(re.findall(r'from "\./([^"]+)"', (STATIC_DIR / name).read_text()))
    assert referenced == set(ASSETS)
    for name in [*ASSETS, "index.html"]:
        text = (STATIC_DIR / name).read_text()
        assert not re.search(r"(src|href)=\"https?://|import\s.*https?://|@import|url\(", text), name
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["api"]
    on_disk = {p.name for p in STATIC_DIR.iterdir()}
    assert on_disk == {p.name for pattern in shipped for p in (ROOT / "api").glob(pattern)}


@dataclass
class Result:  # rife_core.video.VideoResult's fields that matter here
    input_frames: int
    input_fps: Fraction
    output_frames: int
    output_fps: Fraction


@dataclass
class StandInResult:  # a test engine that does not know its input
    output_frames: int
    output_fps: float


def test_media_summary_before_and_after():
    ntsc = Fraction(30000, 1001)
    assert media_summary(Result(30, ntsc, 117, ntsc * 4)) == {
        "media": {
            "input_frames": 30,
            "input_fps": 29.97003,
            "output_frames": 117,
            "output_fps": 119.88012,
            "duration_s": 1.001,
            "output_duration_s": 0.975975,
        }
    }
    assert media_summary(StandInResult(2, 20.0)) == {"media": {"output_frames": 2, "output_fps": 20.0, "output_duration_s": 0.1}}
