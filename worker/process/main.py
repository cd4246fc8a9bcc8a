"""The worker process: `python -m worker`.

One process serves one device. It loads the engine (the model) before taking any job and then
runs RQ's non-forking `SimpleWorker`, so every job reuses the warm model instead of paying the
load (and CUDA initialisation) again in a forked child. Webhook deliveries share the process and
are listened to first: they are short, and a finished request's receiver should not wait behind
a long interpolation.
"""

from __future__ import annotations

import argparse
import logging

from worker.process.runtime import Runtime, default_worker_name, install
from worker.process.serve import serve
from worker.shared import process_log
from worker.shared.settings import Settings

log = logging.getLogger("worker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description="Run a rife-video worker (settings from the environment).")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--name", default=None, help="worker name (default rife-<host>-<pid>-<random>)")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    process_log.configure(settings.log_format, settings.log_level)
    name = args.name or default_worker_name()
    runtime = Runtime.from_settings(settings, name=name)
    runtime.storage.ensure_ready()
    runtime.engine  # noqa: B018 (load the model now, once, before the first job)
    install(runtime)
    log.info("worker %s ready on queue %s (engine %s)", name, settings.rq_queue, settings.rife_engine)
    return serve(runtime, burst=args.burst)  # heartbeat, reaper, temp folder, graceful stop: worker.process.serve
