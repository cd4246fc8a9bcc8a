"""The playground page (`GET /`) in headless chromium against a real stack with the real model.

One page session does what a person would: loads `/`, is told a key is needed, enters it, sets a
real short clip on the file input, submits `num_frames` 3 and watches the run; then compares the
players, steps a frame, moves the wipe, downloads the result; cancels a queued job and a running
one (reopened from the history); and reopens the first result from the history. Screenshots of
the finished page (desktop and phone width) are saved in the test's tmp folder.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import msgspec
import pytest
from clips import cut_clip, describe_video
from msgspec import Meta

from rife_core.samples import sample_clip

pytestmark = pytest.mark.slow

NUM_FRAMES = 3
CLIP_FRAMES = 30  # carphone: 176x144 at 29.97 fps, real footage; about 1 s of frames, a few s of model time

# Records, on every change of the run's status, progress bar or log list, what the page showed:
# what the page looked like *while* the job ran, however short the run.
RECORDER = """
window.__seen = [];
const snap = () => {
  const bar = document.getElementById('run-progress');
  window.__seen.push({
    status: document.getElementById('run-status').dataset.status || '',
    logs: document.querySelectorAll('#logs li').length,
    progress: bar.hasAttribute('value') ? bar.value / bar.max : null,
  });
};
new MutationObserver(snap).observe(document.getElementById('run'), {subtree: true, childList: true, attributes: true, characterData: true});
"""


def wait(driver: Any, check: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    logs = [entry["message"] for entry in driver.get_log("browser")]
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}; browser console: {logs[-10:]}")


def text(driver: Any, element_id: str) -> str:
    return str(driver.execute_script(f"return document.getElementById({json.dumps(element_id)}).textContent")).strip()


def human_bytes(n: int) -> str:
    """The page's size format (decimal units)."""
    if n < 1000:
        return f"{n} B"
    v, unit = n / 1000, "KB"
    if v >= 1000:
        v, unit = v / 1000, "MB"
    return f"{v:.2f} {unit}" if v < 10 else f"{v:.1f} {unit}"


def whole_page(driver: Any, width: int, path: Path) -> None:
    """A screenshot of the whole page at `width` CSS pixels (the window made as tall as the page)."""
    driver.set_window_size(width, 1000)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, height + 140)  # + the window's own chrome, which headless still counts
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.3)
    driver.save_screenshot(str(path))


def status(driver: Any) -> str:
    return str(driver.execute_script("return document.getElementById('run-status').dataset.status || ''"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("page-clips")
    source = sample_clip("carphone_pristine.mp4")
    return {"short": cut_clip(source, folder / "carphone30.mp4", CLIP_FRAMES), "long": cut_clip(source, folder / "carphone90.mp4", 90)}


def test_playground_end_to_end(page_stack: Any, browser: Any, clips: dict[str, Path], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    driver.get(page_stack.url + "/")
    wait(driver, lambda: driver.execute_script("return document.body.dataset.ready === '1'"), "the form from /openapi.json")

    # The form is the request schema: every field but video_url, with its type, range and default.
    num = driver.find_element(By.ID, "f-num_frames")
    assert (num.get_attribute("type"), num.get_attribute("min"), num.get_attribute("max"), num.get_attribute("value")) == ("number", "1", "4", "1")
    assert driver.find_element(By.ID, "f-loop").get_attribute("type") == "checkbox"
    quality = Select(driver.find_element(By.ID, "f-quality"))
    assert sorted(o.text for o in quality.options) == ["best", "fast"] and quality.first_selected_option.text == "fast"
    assert "default 8" in text(driver, "f-fps-desc") and "1 to 60" in text(driver, "f-fps-desc")
    assert driver.find_elements(By.ID, "f-video_url") == []  # the input section sets it

    # Keys are configured: the key field shows, and a 401 is a message, not a blank page.
    assert driver.find_element(By.ID, "key-section").is_displayed()
    driver.find_element(By.ID, "file-input").send_keys(str(clips["short"]))
    num.clear()
    num.send_keys(str(NUM_FRAMES))
    driver.find_element(By.ID, "submit").click()
    notice = wait(driver, lambda: text(driver, "notice"), "the 401 message")
    assert "API key" in notice, notice
    assert driver.switch_to.active_element.get_attribute("id") == "api-key"

    driver.find_element(By.ID, "api-key").send_keys(page_stack.key)
    # A value out of range: the API's 422 names the field, and the page marks it.
    fps = driver.find_element(By.ID, "f-fps")
    fps.clear()
    fps.send_keys("100")
    driver.find_element(By.ID, "submit").click()
    wait(driver, lambda: "422" in text(driver, "notice"), "the 422 message")
    assert "fps" in text(driver, "notice") and fps.get_attribute("aria-invalid") == "true", text(driver, "notice")
    assert text(driver, "f-fps-err")
    fps.clear()
    fps.send_keys("8")  # back to the default: not sent

    driver.execute_script(RECORDER)
    driver.find_element(By.ID, "submit").click()
    wait(driver, lambda: status(driver) == "OK" or status(driver) in ("FAILED", "CANCELLED"), "the job to finish", 600)
    assert status(driver) == "OK", text(driver, "logs")
    assert driver.execute_script("return document.getElementById('upload-progress').value") == 1
    request_id = text(driver, "run-id")

    # While it ran: log lines and progress arrived through the status stream before COMPLETED.
    seen = driver.execute_script("return window.__seen")
    running = [s for s in seen if s["status"] in ("IN_QUEUE", "IN_PROGRESS")]
    assert any(s["logs"] > 0 for s in running), seen
    assert any(s["status"] == "IN_PROGRESS" and s["progress"] and s["progress"] > 0 for s in running), seen
    log_lines = driver.execute_script("return [...document.querySelectorAll('#logs li')].map(li => li.textContent)")
    assert any("Interpolated" in line for line in log_lines) and any("Done." in line for line in log_lines), log_lines

    # Both players load; the output lasts as long as the input.
    ready = "return [document.getElementById('video-in').readyState, document.getElementById('video-out').readyState]"
    wait(driver, lambda: min(driver.execute_script(ready)) >= 2, "both players to have data", 60)
    d_in, d_out = driver.execute_script("return [document.getElementById('video-in').duration, document.getElementById('video-out').duration]")
    source = describe_video(clips["short"])
    assert d_in == pytest.approx(CLIP_FRAMES / float(source["fps"]), abs=0.002)
    # Same span: the output ends on the input's last frame, shown for one output frame instead of one input frame.
    out_fps = float(source["fps"]) * (NUM_FRAMES + 1)
    expected = (CLIP_FRAMES - 1) * NUM_FRAMES + CLIP_FRAMES
    assert d_out == pytest.approx(expected / out_fps, abs=0.002)
    assert d_in - d_out == pytest.approx(NUM_FRAMES / out_fps, abs=0.002) and d_in - d_out < 1 / float(source["fps"]), (d_in, d_out)

    # Frame counts and rates before -> after, the size, and a download link serving the MP4.
    assert (text(driver, "in-frames"), text(driver, "out-frames")) == (str(CLIP_FRAMES), str(expected))
    assert text(driver, "in-fps") == f"{round(float(source['fps']), 3)} fps"
    assert text(driver, "out-fps") == f"{round(float(source['fps'] * (NUM_FRAMES + 1)), 3)} fps"
    href = driver.find_element(By.ID, "download").get_attribute("href")
    body = httpx.get(href, timeout=30)
    assert body.status_code == 200 and body.content[4:8] == b"ftyp"
    downloaded = tmp_path / "result.mp4"
    downloaded.write_bytes(body.content)
    result = describe_video(downloaded)
    assert result["frames"] == expected and result["fps"] == Fraction(source["fps"]) * (NUM_FRAMES + 1)
    assert text(driver, "out-size") == human_bytes(len(body.content))
    with page_stack.client() as c:
        api_result = c.get(f"/fal-ai/rife/requests/{request_id}").json()
    assert api_result["video"]["file_size"] == len(body.content)
    assert api_result["media"] == {
        "input_frames": CLIP_FRAMES,
        "input_fps": round(float(source["fps"]), 6),
        "output_frames": expected,
        "output_fps": round(float(source["fps"] * (NUM_FRAMES + 1)), 6),
        "duration_s": round(CLIP_FRAMES / float(source["fps"]), 6),
        "output_duration_s": round(expected / float(source["fps"] * (NUM_FRAMES + 1)), 6),
    }

    # Every control has a name a screen reader announces, and the players answer the keyboard.
    unlabelled = driver.execute_script(
        """return [...document.querySelectorAll('input, select, button, video:not([aria-hidden])')]
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
             .map(e => e.id || e.outerHTML.slice(0, 60))"""
    )
    assert unlabelled == []
    driver.find_element(By.ID, "video-out").send_keys(".")
    wait(driver, lambda: "frame 2" in text(driver, "time"), "a frame step from the keyboard")
    driver.find_element(By.ID, "video-out").send_keys(",")
    wait(driver, lambda: "frame 1" in text(driver, "time"), "a frame step back from the keyboard")

    # The transport drives both players: a frame step moves both, paused, by one output frame.
    driver.find_element(By.ID, "step-fwd").click()
    driver.find_element(By.ID, "step-fwd").click()
    times = "return [document.getElementById('video-in').currentTime, document.getElementById('video-out').currentTime, document.getElementById('video-out').paused]"
    wait(driver, lambda: driver.execute_script(times)[1] > 0, "the frame step")
    t_in, t_out, paused = driver.execute_script(times)
    assert paused and t_in == pytest.approx(t_out, abs=1e-3) and int(t_out * out_fps) == 2, (t_in, t_out)
    assert "frame 3" in text(driver, "time")
    # The wipe shows the input over the left part of the output.
    wipe = driver.find_element(By.ID, "wipe")
    driver.execute_script("arguments[0].value = 40; arguments[0].dispatchEvent(new Event('input'))", wipe)
    assert driver.execute_script("return document.getElementById('video-wipe').style.clipPath") == "inset(0px 60% 0px 0px)"
    driver.find_element(By.ID, "play").click()
    wait(driver, lambda: driver.execute_script(times)[1] > t_out + 0.02, "playback")
    driver.find_element(By.ID, "play").click()
    t_in, t_out, paused = driver.execute_script(times)
    assert paused and abs(t_in - t_out) < 0.1, (t_in, t_out)

    whole_page(driver, 1280, tmp_path / "playground.png")
    whole_page(driver, 390, tmp_path / "playground-phone.png")  # a phone's width
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
    driver.set_window_size(1280, 1000)

    # History: this browser's requests, with their status, reopenable.
    entry = driver.find_element(By.CSS_SELECTOR, f"#history button[data-id='{request_id}']")
    assert "OK" in entry.find_element(By.XPATH, "..").text
    stored = json.loads(driver.execute_script("return localStorage.getItem('rife-video.history')"))
    assert stored[0]["id"] == request_id and stored[0]["sent"] == {"num_frames": NUM_FRAMES}  # only what was changed
    assert driver.execute_script("return sessionStorage.getItem('rife-video.key')") == page_stack.key

    # A second, longer job; while it runs, a third waits in the queue. The waiting one is cancelled,
    # then the running one, reopened from the history.
    driver.find_element(By.ID, "file-input").send_keys(str(clips["long"]))
    num.clear()
    num.send_keys("4")
    driver.find_element(By.ID, "submit").click()
    wait(driver, lambda: text(driver, "run-id") not in ("", request_id), "the second request")
    second = text(driver, "run-id")
    wait(driver, lambda: status(driver) == "IN_PROGRESS", "the second job to start", 120)
    driver.find_element(By.ID, "submit").click()
    wait(driver, lambda: text(driver, "run-id") not in ("", request_id, second), "the third request")
    third = text(driver, "run-id")
    wait(driver, lambda: status(driver) == "IN_QUEUE" and text(driver, "run-queue") == "next in the queue", "the queue position")
    driver.find_element(By.ID, "cancel").click()
    wait(driver, lambda: status(driver) == "CANCELLED", "the queued job's cancellation", 60)

    driver.find_element(By.CSS_SELECTOR, f"#history button[data-id='{second}']").click()
    wait(driver, lambda: text(driver, "run-id") == second and status(driver) == "IN_PROGRESS" and "Interpolated" in text(driver, "logs"), "the running job, reopened")
    driver.find_element(By.ID, "cancel").click()
    wait(driver, lambda: status(driver) == "CANCELLED", "the running job's cancellation", 120)
    assert text(driver, "run-status") == "Cancelled"
    assert not driver.find_element(By.ID, "result").is_displayed()
    assert not driver.find_element(By.ID, "cancel").is_enabled()
    with page_stack.client() as c:
        for cancelled in (second, third):
            final = c.get(f"/fal-ai/rife/requests/{cancelled}/status").json()
            assert final["status"] == "COMPLETED" and final["error_type"] == "cancelled", final

    # Reopening the first request from the history shows its result again.
    driver.find_element(By.CSS_SELECTOR, f"#history button[data-id='{request_id}']").click()
    wait(driver, lambda: driver.find_element(By.ID, "result").is_displayed() and text(driver, "out-frames") == str(expected), "the reopened result")
    assert [s.text for s in driver.find_elements(By.CSS_SELECTOR, "#history .badge")] == ["CANCELLED", "CANCELLED", "OK"]
    # No script errors; the only failed loads are the 401 and 422 this test provoked.
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert [e for e in errors if not re.search(r"status of (401|422)", e)] == [], errors


class Output(msgspec.Struct, kw_only=True):
    """The shape of the nested extension fields the request is gaining (codec, container, quality, bit depth)."""

    codec: Annotated[Literal["h264", "hevc", "prores"], Meta(description="Video codec.")] = "h264"
    container: Literal["mp4", "mov", "mkv"] = "mp4"
    quality: Annotated[int, Meta(ge=0, le=51, description="crf.")] = 18
    bit_depth: Literal["auto", 8, 10] = "auto"


class FutureInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    video_url: str
    num_frames: Annotated[int, Meta(ge=1, le=4)] = 1
    target_fps: Annotated[float | str | None, Meta(description='A number or a rational string like "60000/1001".')] = None
    dedup: bool = False
    output: Output | None = None
    scale: Annotated[float, Meta(gt=0, le=4)] = 1.0
    model: str | None = None


def test_form_renders_any_request_schema(page_stack: Any, browser: Any) -> None:
    """The form generator on the request as it is growing: unions, a nested object, nullable fields.

    Rendered from msgspec's own schema of a struct shaped like the coming fields, in the page's
    origin, then filled in by typing and clicking as a person would.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    (schema,), components = msgspec.json.schema_components([FutureInput], ref_template="#/components/schemas/{name}")
    document = {
        "paths": {"/fal-ai/rife/video": {"post": {"operationId": "submit", "requestBody": {"content": {"application/json": {"schema": schema}}}}}},
        "components": {"schemas": components},
    }
    driver.get(page_stack.url + "/health")  # any page of this origin: the module is imported from it
    driver.execute_async_script(
        """
        const [doc, done] = arguments;
        const { buildForm, requestSchema } = await import('/playground/form.js');
        const box = document.createElement('form');
        document.body.replaceChildren(box);
        window.__form = buildForm(box, doc, requestSchema(doc), { skip: ['video_url'] });
        done();
        """,
        document,
    )

    def collect() -> dict[str, Any]:
        return dict(driver.execute_script("return window.__form.collect()"))

    assert collect() == {"body": {}, "problems": []}  # nothing changed: nothing sent
    kinds = {
        name: driver.execute_script(f"const e = document.getElementById('f-{name}'); return [e.tagName, e.type]")
        for name in ("num_frames", "target_fps", "dedup", "output", "output-codec", "output-quality", "output-bit_depth", "scale", "model")
    }
    assert kinds == {
        "num_frames": ["INPUT", "number"],
        "target_fps": ["INPUT", "text"],
        "dedup": ["INPUT", "checkbox"],
        "output": ["FIELDSET", "fieldset"],
        "output-codec": ["SELECT", "select-one"],
        "output-quality": ["INPUT", "number"],
        "output-bit_depth": ["SELECT", "select-one"],
        "scale": ["INPUT", "number"],
        "model": ["INPUT", "text"],
    }
    quality = driver.find_element(By.ID, "f-output-quality")
    assert (quality.get_attribute("min"), quality.get_attribute("max"), quality.get_attribute("value")) == ("0", "51", "18")
    assert driver.find_element(By.ID, "f-scale").get_attribute("step") == "any"
    assert "60000/1001" in driver.find_element(By.ID, "f-target_fps-desc").text

    target = driver.find_element(By.ID, "f-target_fps")
    target.send_keys("60000/1001")
    driver.find_element(By.ID, "f-dedup").click()
    Select(driver.find_element(By.ID, "f-output-codec")).select_by_visible_text("hevc")
    Select(driver.find_element(By.ID, "f-output-bit_depth")).select_by_visible_text("10")
    assert collect() == {"body": {"target_fps": "60000/1001", "dedup": True, "output": {"codec": "hevc", "bit_depth": 10}}, "problems": []}

    target.clear()
    target.send_keys("59.94")  # a number where the schema takes a number or a string
    Select(driver.find_element(By.ID, "f-output-codec")).select_by_visible_text("h264")  # back to the default
    quality.clear()
    quality.send_keys("20")
    num = driver.find_element(By.ID, "f-num_frames")
    num.clear()
    num.send_keys("1")  # typed, but the default: not sent
    assert collect()["body"] == {"target_fps": 59.94, "dedup": True, "output": {"quality": 20, "bit_depth": 10}}

    num.clear()
    num.send_keys("2.5")
    assert collect()["problems"] == ["num_frames: enter a whole number"]
    assert num.get_attribute("aria-invalid") == "true"
    # A 422's `loc` marks the nested field it names.
    assert driver.execute_script("return window.__form.markError(['body', 'output', 'quality'], 'too high')")
    assert quality.get_attribute("aria-invalid") == "true" and driver.find_element(By.ID, "f-output-quality-err").text == "too high"
    driver.execute_script("window.__form.reset()")
    assert collect() == {"body": {}, "problems": []}
    assert quality.get_attribute("aria-invalid") is None
