"""Fanning a long request out across workers (the coordinator's step), and cleaning up after one.

The worker that takes a request whose input is longer than SPLIT_MIN_S becomes its coordinator:
it asks the engine for segments (`plan_segments`, a cheap probe), makes the input readable by every
worker without fetching its URL again (a temporary object in storage, unless it is already stored),
and hands the request to its parts (`RequestQueue.fan_out`): one RQ job per segment on the same
queue, and a merge job that RQ enqueues when they are all done (`depends_on`). Then its own job
ends; the parts run as `worker.process.parts.run_part` on whichever workers are free. See
`worker.shared.splits` for how the request stays one request and what the reaper watches.

`clean_up` removes what a fanned-out request leaves once it is finished, whatever the outcome:
its temporary objects (input copy, segment outputs), its parts' RQ jobs that will never run, its
progress hash and its split index entry. The party that finished the request calls it at once; the
reaper calls it for any request it finds finished but not cleaned (a crash in between).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from worker.process.runtime import Runtime
from worker.shared.queue import RequestQueue
from worker.shared.request_log import LevelShorthands, fal_level
from worker.shared.requests import Claim, RequestRecord
from worker.shared.splits import SplitStore
from worker.shared.storage import Storage, StorageError, temp_key, temp_prefix
from worker.shared.video_input import VideoInput

log = logging.getLogger(__name__)

T = TypeVar("T")
StorageCall = Callable[[str, Callable[[], T]], T]  # (what, transfer): a storage transfer with the job's retries


class FanOut(StrEnum):
    SPLIT = "split"  # handed to its parts: the coordinator's job is done
    WHOLE = "whole"  # short, or the engine cannot split it: run it as one job
    CANCELLED = "cancelled"  # its client asked to cancel it meanwhile
    LOST = "lost"  # this run no longer holds the request


def can_fan_out(engine: Any, split_min_s: float) -> bool:
    """Fan-out is on (SPLIT_MIN_S > 0) and the engine can run segments; other engines never split."""
    return split_min_s > 0 and all(hasattr(engine, m) for m in ("plan_segments", "run_segment", "merge_segments"))


def fan_out(
    runtime: Runtime,
    record: RequestRecord,
    request: VideoInput,
    source: Path,
    stem: str,
    claim: Claim,
    request_log: LevelShorthands,
    storage_call: StorageCall[Any],
) -> FanOut:
    """Split the request into segment jobs if its input is long enough; see the module docstring."""
    settings = runtime.settings
    engine: Any = runtime.engine
    if not can_fan_out(engine, settings.split_min_s):
        return FanOut.WHOLE
    segments = engine.plan_segments(
        source, request, segment_s=settings.split_segment_s, min_s=settings.split_min_s,
        log=lambda level, message: request_log.append(message, fal_level(level)),
    )
    if len(segments) < 2:
        return FanOut.WHOLE
    storage = runtime.storage
    uploaded = None
    input_key = record.input_key
    if not input_key:  # fetched from its URL: the parts read this copy, never the URL again
        uploaded = input_key = temp_key(storage, record.id, "input")
        storage_call("storing the input for the segments", lambda: storage.put_file(
            source, input_key, content_type="application/octet-stream", file_name="input",
            base_url=record.base_url or settings.public_base_url or "http://localhost"))
    queue = RequestQueue(runtime.redis, settings)
    if not queue.fan_out(record.id, claim, segments, input_key=input_key, stem=stem):
        if uploaded:
            _delete(storage, uploaded)
        cancel, _current = runtime.store.run_state(record.id)
        return FanOut.CANCELLED if cancel else FanOut.LOST
    request_log.info(
        f"Split into {len(segments)} segments of about {settings.split_segment_s:g} s; each runs as its own job "
        "on any free worker, then they are joined"
    )
    return FanOut.SPLIT


def clean_up(queue: RequestQueue, storage: Storage | None, request_id: str, count: int) -> bool:
    """Remove a finished fanned-out request's leftovers (see the module docstring). False when storage
    could not be reached: the split index entry stays and the reaper tries again."""
    queue.drop_part_jobs(request_id, count)
    if storage is None:
        return False
    try:
        deleted = storage.delete_prefix(temp_prefix(storage, request_id))
    except StorageError as e:
        log.warning("request %s: temporary objects not deleted yet (%s); the reaper retries", request_id, e)
        return False
    SplitStore(queue.store).forget(request_id)
    if deleted:
        log.info("request %s: deleted %d temporary object(s) of its segments", request_id, deleted)
    return True


def _delete(storage: Storage, key: str) -> None:
    try:
        storage.delete_prefix(key)
    except StorageError as e:
        log.warning("temporary object %s not deleted (%s); the storage sweep removes it later", key, e)
