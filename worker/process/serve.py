"""The worker's life around RQ's loop: start clean, keep going through Redis outages, leave nothing behind.

- Start: the worker's temporary folder is created (dead workers' folders swept, see
  `worker.process.scratch`), the heartbeat thread starts and runs the reaper (`worker.process.reaper`).
- Run: RQ's non-forking `SimpleWorker` loop. RQ quits its loop on some Redis errors (a timeout, an
  error while recording a job's end); a worker whose loop ends without having been asked to stop
  waits until Redis answers and starts the loop again, instead of exiting and relying on a
  supervisor.
- Stop (SIGTERM / SIGINT): RQ's warm shutdown lets the running job finish; with
  WORKER_STOP_GRACE_S > 0 the job is handed back after that long instead (the job sees
  `Runtime.must_hand_back` at its next cancel check). A second signal is RQ's cold shutdown: the job
  is interrupted and handed back at once. Either way, on the way out the worker requeues what it
  still holds (`Reaper.release`), removes its heartbeat and its temporary folder.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from rq import Queue, SimpleWorker

from worker.process.faults import fault_point
from worker.process.janitor import StorageJanitor
from worker.process.reaper import Reaper
from worker.process.runtime import Runtime
from worker.process.scratch import Scratch, default_root
from worker.shared import redact
from worker.shared.model_offers import installed_offers

log = logging.getLogger("worker")

RECONNECT_MAX_WAIT_S = 5.0
MAINTENANCE_INTERVAL_S = 60  # RQ restarts its scheduler (dead after a Redis outage) only at maintenance: 10 min by default


class RifeWorker(SimpleWorker):
    """RQ's SimpleWorker, telling the runtime when a stop is requested and reconnecting sooner."""

    max_connection_wait_time = RECONNECT_MAX_WAIT_S  # RQ's default backs off up to 60 s

    def __init__(self, *args: Any, runtime: Runtime, **kwargs: Any) -> None:
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL_S)
        super().__init__(*args, **kwargs)
        self.runtime = runtime
        self.stop_requested = False

    def prepare_job_execution(self, job: Any, remove_from_intermediate_queue: bool = False) -> None:
        fault_point("before_prepare")  # RQ has popped the job; nothing but its hash says so yet
        super().prepare_job_execution(job, remove_from_intermediate_queue)

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        self.stop_requested = True
        self.runtime.drain(self.runtime.settings.worker_stop_grace_s)


def serve(runtime: Runtime, *, burst: bool = False) -> int:
    """Run jobs until asked to stop (or, with `burst`, until the queues are empty)."""
    settings = runtime.settings
    redact.install(settings)
    root = Path(settings.worker_tmp_dir) if settings.worker_tmp_dir else default_root()
    runtime.scratch = Scratch.open(root, runtime.name)
    runtime.scratch.use_for_tempfile()
    reaper = Reaper(runtime.redis, settings, runtime.name, runtime.storage)
    janitor = StorageJanitor(runtime.redis, settings, runtime.storage, runtime.name)

    def housekeeping() -> None:
        reaper.tick()
        janitor.tick()

    runtime.heartbeat.offer(installed_offers())
    runtime.heartbeat.start(on_tick=housekeeping)
    queues = [Queue(q, connection=runtime.redis) for q in (settings.webhook_queue, settings.rq_queue)]
    try:
        while True:
            worker = RifeWorker(queues, connection=runtime.redis, name=runtime.name, runtime=runtime)
            try:
                worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
            except SystemExit:
                log.warning("worker %s: cold shutdown", runtime.name)
                break
            except Exception:
                log.exception("worker %s: RQ's loop failed", runtime.name)
            if worker.stop_requested or burst:
                break
            log.warning("worker %s: RQ's loop ended without a stop request (Redis unreachable?); restarting it", runtime.name)
            if not _wait_for_redis(runtime):
                break
            _forget_registration(worker)
    finally:
        _leave(runtime, reaper)
    return 0


def _wait_for_redis(runtime: Runtime) -> bool:
    """Block until Redis answers (True) or the process is asked to stop (False)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        wait_s = 0.5
        while not stop.is_set():
            try:
                runtime.redis.ping()
                return True
            except RedisError:
                stop.wait(wait_s)
                wait_s = min(wait_s * 2, RECONNECT_MAX_WAIT_S)
        return False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _forget_registration(worker: SimpleWorker) -> None:
    """Mark the previous loop's RQ registration dead, or RQ refuses to register the same name again."""
    try:
        worker.register_death()
    except RedisError:
        pass


def _leave(runtime: Runtime, reaper: Reaper) -> None:
    runtime.heartbeat.stop()
    try:
        for item in reaper.release(runtime.name):
            log.info("request %s handed back on shutdown: %s", item.request_id, item.outcome.value)
    except RedisError as e:
        log.warning("could not hand requests back (%s); the reaper of another worker will", e)
    if runtime.scratch is not None:
        runtime.scratch.close()
