"""Each worker's temporary files in one folder of its own, so none outlive the worker for long.

A job's files (the downloaded input, the partial and final output) live in a per-job folder that
is removed when the job ends, whatever the outcome. A worker killed mid-job (SIGKILL, OOM) cannot
remove anything, so every worker gets its own folder `w-<name>` under WORKER_TMP_DIR holding a
`.lock` file locked (POSIX `lockf`) for the worker's lifetime; the kernel drops the lock when the
process dies, however it dies. A starting worker removes every sibling folder whose lock it can
take: those belong to dead workers, while live workers' folders stay locked. A POSIX lock is not
inherited by forked children (RQ's scheduler), so an orphaned child never keeps a dead worker's
folder alive.

The process's `tempfile.tempdir` points into the folder too, so temporary files made by libraries
(boto3's transfer manager, the video pipeline) are swept with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
PREFIX = "w-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_root() -> Path:
    return Path(tempfile.gettempdir()) / "rife-video-worker"


class Scratch:
    """The folder of one live worker; `job_dir` gives each job a folder inside it."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, root: Path, worker_name: str) -> Scratch:
        """Sweep dead workers' folders under `root`, then create and lock this worker's own."""
        root.mkdir(parents=True, exist_ok=True)
        swept = sweep(root)
        if swept:
            log.info("removed %d temporary folder(s) left by dead workers: %s", len(swept), ", ".join(p.name for p in swept))
        # Made under a name the sweep ignores, locked, then renamed: a sibling starting at the same
        # moment never sees this folder unlocked.
        staging = Path(tempfile.mkdtemp(prefix=f".new-{_UNSAFE.sub('_', worker_name)[:80]}-", dir=root))
        fd = os.open(staging / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = root / (PREFIX + staging.name.removeprefix(".new-"))
        staging.rename(path)
        return cls(path, fd)

    @contextlib.contextmanager
    def job_dir(self, request_id: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix=f"job-{request_id[:8]}-", dir=self.path) as tmp:
            yield Path(tmp)

    def use_for_tempfile(self) -> None:
        """Make this folder the process's default temporary folder (for libraries' temp files)."""
        tempfile.tempdir = str(self.path)

    def close(self) -> None:
        """Remove the folder (the worker is stopping cleanly) and release its lock."""
        if tempfile.tempdir == str(self.path):
            tempfile.tempdir = None
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._lock_fd)


def sweep(root: Path) -> list[Path]:
    """Remove the worker folders under `root` whose lock is free: their workers are dead."""
    removed = []
    for folder in sorted(root.glob(f"{PREFIX}*")):
        lock = folder / LOCK_NAME
        if not folder.is_dir() or not lock.is_file():
            continue  # not ours, or a worker in the instant between mkdtemp and its lock
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # locked: a live worker
        finally:
            os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed
