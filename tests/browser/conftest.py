"""The playground page in a real headless browser against a real stack.

Debian's `chromium`, driven through Debian's `chromium-driver` by Selenium (both paths given
explicitly: nothing is downloaded). The stack is what `make run` starts, over plain http on
loopback: redis-server, SeaweedFS, the API with an API key configured, and one worker with the
real RIFE model on the CPU. Every process is stopped by the process group started here.
Without chromium (or chromedriver, or selenium) the tests skip, saying which is missing.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

SERVICE = Path(__file__).resolve().parent.parent / "service"
sys.path.insert(0, str(SERVICE))

from servicekit import stop_group, wait_for  # noqa: E402

from worker.dev import localstack  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
API_KEY = "browser-key"
# Flags that work in a container without a display, a GPU or the network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: install Debian's {package} (`make browser` as root)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@dataclass(frozen=True)
class PageStack:
    url: str  # http://127.0.0.1:PORT
    env: dict[str, str]
    key: str = API_KEY

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Key {API_KEY}"}, timeout=30)


@pytest.fixture(scope="session")
def page_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageStack]:
    reason = missing_browser()
    if reason:
        pytest.skip(reason)  # before starting anything
    data = tmp_path_factory.mktemp("page-stack")
    started: list[localstack.Server] = []
    try:
        redis = localstack.start_redis(data / "redis")
        started.append(redis)
        s3 = localstack.start_seaweedfs(data / "s3", bucket="page-tests")
        started.append(s3)
        port = localstack.free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **redis.env,
            **s3.env,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(port),
            "PUBLIC_BASE_URL": url,
            "API_KEYS": API_KEY,
            "RQ_QUEUE": "page",
            "S3_PREFIX": "page/",
            "FETCH_ALLOW": "127.0.0.0/8,localhost",
            "LOCAL_STORAGE_DIR": str(data / "storage"),
            "RIFE_DEVICE": "cpu",
            "SSE_KEEPALIVE_S": "1",
            "LOG_FORMAT": "text",
        }
        started.append(
            localstack.start_python("page-api", "api", env, data / "api.log", url, ready=lambda: httpx.get(f"{url}/health", timeout=1).status_code == 200)
        )
        worker = localstack.start_python("page-worker", "worker", env, data / "worker.log")
        started.append(worker)
        wait_for(lambda: httpx.get(f"{url}/health", timeout=2).json()["workers"] >= 1, "the page worker to register", 300, worker)
        yield PageStack(url, env)
    finally:
        for server in reversed(started):
            stop_group(server)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """A fresh headless chromium (its own profile: empty localStorage), closed after the test."""
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.add_argument("--window-size=1280,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)
