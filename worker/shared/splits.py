"""One request across many workers: the Redis side of a fanned-out request.

A request whose input is longer than SPLIT_MIN_S is *fanned out* by the worker that took it (the
coordinator, `worker.process.fanout`): its segments become jobs on the same RQ queue, and a merge
job waits on them with RQ's own `depends_on`. To the client it stays one request: one record, one
status (IN_PROGRESS until the merge or the first failure finishes it), one log, one result, one
webhook. Each job of it is a *part* (`PartRef`: `{request}__seg{i}of{K}`, `{request}__merge`)
with a small record of its own (`P:request:{part}`: status, attempt, worker, claim, result) that
goes through the same machinery as a request: `mark_started`, the queued and in-flight indexes, the
reaper's requeue and reconcile, claims. So the reaper's rules hold per part: a part whose worker
dies is requeued alone (MAX_JOB_ATTEMPTS per part), a part RQ lost between its pop and its start is
put back.

Invariants (every step one MULTI/EXEC under WATCH):
- fanning out moves the request from the in-flight index to the split index (`P:splits`, request
  id -> K) and puts every segment in the queued index, in one transaction with their RQ jobs;
- the merge part is in no index until the last segment finishes: that segment's finish puts it in
  the queued index (`finish_segment`), so from then on the reaper watches it like any queued job
  even if RQ never enqueues it (the worker died between our finish and RQ's dependents step);
- the first part that fails, or a cancel, finishes the request with that error and deletes every
  part record and index entry in the same transaction (`finish_request`); a part still running
  notices at its next cancel check that its claim is gone and drops its run;
- the split index entry stays until the request's temporary objects and leftover RQ jobs are
  deleted (`worker.process.fanout.clean_up`), which the party that finished it does at once and
  the reaper does for anything a crash left.

Progress: each segment writes `done|total|fps` into `P:request:{id}:progress`; a progress line sums
them (segments not started yet count as the average of those that are), so the request's log says
"Interpolated d/t frames" of the whole request, as an unsplit run does.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.exceptions import WatchError

from worker.shared.requests import Claim, Failure, PartRef, RequestStore, Status, _text


class SegmentFinish(StrEnum):
    DONE = "done"  # recorded; other segments are still running
    LAST = "last"  # recorded, and it was the last one: the merge is due
    GONE = "gone"  # this run no longer holds the segment, or the request is finished: nothing recorded


@dataclass(frozen=True)
class SplitProgress:
    """The whole request's progress, summed over its segments."""

    frames_done: int
    frames_total: int  # segments not started yet are estimated as the mean of the started ones
    fps: float  # summed over the segments reporting
    reported: int  # segments that reported so far
    count: int


def parts_of(request_id: str, count: int) -> list[PartRef]:
    """The request's segments in order, then its merge."""
    return [PartRef(request_id, i, count) for i in range(count)] + [PartRef(request_id, None, count)]


class SplitStore:
    def __init__(self, store: RequestStore) -> None:
        self.store = store
        self.redis = store.redis

    @property
    def splits_key(self) -> str:
        """Hash: request id -> K, for every fanned-out request whose leftovers are not cleaned up yet."""
        return f"{self.store.namespace}:splits"

    def progress_key(self, request_id: str) -> str:
        return f"{self.store.key(request_id)}:progress"

    # --- fanning out ---------------------------------------------------------------------------

    def queue_fan_out(
        self, pipe: Any, request_id: str, segments: list[dict[str, Any]], *, input_key: str, stem: str, queue_deadline: float
    ) -> list[PartRef]:
        """Queue on `pipe` (inside the caller's MULTI, after it checked the coordinator's claim) the
        request's move to the split index and every part's record; the caller enqueues their jobs."""
        count = len(segments)
        key = self.store.key(request_id)
        pipe.hset(key, mapping={"split": str(count), "split_done": "0", "split_input": input_key, "split_stem": stem})
        pipe.hdel(key, "worker", "run")  # no run holds the request itself any more: its parts do
        pipe.hdel(self.store.inflight_key, request_id)
        pipe.hset(self.splits_key, request_id, str(count))
        now = time.time()
        parts = parts_of(request_id, count)
        for part in parts:
            fields = {"status": Status.IN_QUEUE.value, "parent": request_id, "created_at": repr(now)}
            if part.index is not None:
                fields["segment"] = json.dumps(segments[part.index])
            pipe.hset(self.store.key(part.id), mapping=fields)
            pipe.expire(self.store.key(part.id), self.store.pending_ttl_s)
        for part in parts[:-1]:
            self.store.mark_queued(pipe, part.id, queue_deadline)
        return parts[:-1]

    # --- a part's end ---------------------------------------------------------------------------

    def finish_segment(
        self, part: PartRef, claim: Claim, result: dict[str, Any], output_key: str, *, queue_deadline: float
    ) -> SegmentFinish:
        """Record a segment's output (its storage key and result), once, while `claim` holds it; the
        last segment to finish also puts the merge in the queued index (see the module's invariants)."""
        key, parent_key = self.store.key(part.id), self.store.key(part.request_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key, parent_key)
                    if self.store._claim_in(pipe, key) != claim:
                        pipe.unwatch()
                        return SegmentFinish.GONE
                    status, split, done = pipe.hmget(parent_key, "status", "split", "split_done")
                    if status != Status.IN_PROGRESS.value.encode() or not split:
                        pipe.unwatch()
                        return SegmentFinish.GONE
                    last = int(done or 0) + 1 >= int(split)
                    pipe.multi()
                    pipe.hset(key, mapping={"status": Status.COMPLETED.value, "result": json.dumps(result),
                                            "output_key": output_key, "completed_at": repr(time.time())})
                    pipe.hdel(key, "run", "handback")
                    pipe.hdel(self.store.inflight_key, part.id)
                    pipe.zrem(self.store.queued_key, part.id)
                    pipe.hdel(self.store.orphans_key, part.id)
                    pipe.hincrby(parent_key, "split_done", 1)
                    if last:
                        self.store.mark_queued(pipe, PartRef(part.request_id, None, part.count).id, queue_deadline)
                    pipe.execute()
                    return SegmentFinish.LAST if last else SegmentFinish.DONE
                except WatchError:
                    continue

    def finish_request(
        self,
        request_id: str,
        *,
        part: PartRef | None = None,
        claim: Claim | None = None,
        result: dict[str, Any] | None = None,
        failure: Failure | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> bool:
        """Finish the fanned-out request (the merge's result, or the first failure, or a cancel) and
        delete every part record and index entry, in one transaction. True only for the call that did it.

        With a `part`, only while that part still exists, and with a `claim` only while that run holds
        it: a part whose run was taken back (presumed dead) cannot decide the request any more.
        """
        fields = self.store.finish_fields(result=result, failure=failure, metrics=metrics)
        parent_key = self.store.key(request_id)
        part_key = self.store.key(part.id) if part is not None else None
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(parent_key, *([part_key] if part_key else []))
                    if part_key is not None:
                        if claim is not None and self.store._claim_in(pipe, part_key) != claim:
                            pipe.unwatch()
                            return False
                        if claim is None and not pipe.exists(part_key):
                            pipe.unwatch()
                            return False
                    status, split = pipe.hmget(parent_key, "status", "split")
                    if status is None or status == Status.COMPLETED.value.encode() or not split:
                        pipe.unwatch()
                        return False
                    self.store.queue_finish(pipe, request_id, fields)  # starts the MULTI
                    for each in parts_of(request_id, int(split)):
                        pipe.delete(self.store.key(each.id))
                        pipe.hdel(self.store.inflight_key, each.id)
                        pipe.zrem(self.store.queued_key, each.id)
                        pipe.hdel(self.store.orphans_key, each.id)
                    pipe.delete(self.progress_key(request_id))
                    pipe.execute()
                    return True
                except WatchError:
                    continue

    # --- reads ---------------------------------------------------------------------------------

    def parent_state(self, request_id: str) -> tuple[bytes | None, bool]:
        """(the request's status, cancel requested): what a running part checks besides its own claim."""
        status, cancel = self.redis.hmget(self.store.key(request_id), "status", "cancel")
        return (status.encode() if isinstance(status, str) else status), cancel == b"1"

    def segments_done(self, request_id: str) -> tuple[int, int]:
        """(segments finished, K) of a fanned-out request still running; (0, 0) otherwise."""
        status, split, done = self.redis.hmget(self.store.key(request_id), "status", "split", "split_done")
        if status != Status.IN_PROGRESS.value.encode() or not split:
            return 0, 0
        return int(done or 0), int(split)

    def segment_outputs(self, request_id: str, count: int) -> list[tuple[str, dict[str, Any]]] | None:
        """Every segment's (output key, result JSON) in order, or None if one is not finished."""
        with self.redis.pipeline(transaction=False) as pipe:
            for part in parts_of(request_id, count)[:-1]:
                pipe.hmget(self.store.key(part.id), "status", "output_key", "result")
            rows = pipe.execute()
        out = []
        for status, output_key, result in rows:
            if status != Status.COMPLETED.value.encode() or not output_key or not result:
                return None
            out.append((output_key.decode(), json.loads(result)))
        return out

    def split_requests(self) -> dict[str, int]:
        """Fanned-out requests not cleaned up yet: id -> K."""
        return {_text(k): int(v) for k, v in self.redis.hgetall(self.splits_key).items()}

    def any_part_exists(self, request_id: str, count: int) -> bool:
        return bool(self.redis.exists(*[self.store.key(p.id) for p in parts_of(request_id, count)]))

    def drop_part(self, part_id: str) -> None:
        """Remove a part whose request is gone (its record expired): record and index entries."""
        with self.redis.pipeline() as pipe:
            pipe.delete(self.store.key(part_id))
            pipe.hdel(self.store.inflight_key, part_id)
            pipe.zrem(self.store.queued_key, part_id)
            pipe.hdel(self.store.orphans_key, part_id)
            pipe.execute()

    def forget(self, request_id: str) -> None:
        """The request's leftovers are gone: stop watching it."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.progress_key(request_id))
            pipe.hdel(self.splits_key, request_id)
            pipe.execute()

    # --- progress ------------------------------------------------------------------------------

    def report_progress(self, part: PartRef, done: int, total: int, fps: float) -> SplitProgress:
        """Record one segment's progress and return the whole request's."""
        key = self.progress_key(part.request_id)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, str(part.index), f"{done}|{total}|{fps:.3f}")
            pipe.expire(key, self.store.pending_ttl_s)
            pipe.hgetall(key)
            rows = pipe.execute()[2]
        return sum_progress(rows, part.count)


def sum_progress(rows: dict[bytes, bytes], count: int) -> SplitProgress:
    """The request's progress from its segments' `done|total|fps` entries."""
    done = total = 0
    fps = 0.0
    for raw in rows.values():
        d, t, f = raw.decode().split("|")
        done, total = done + int(d), total + int(t)
        if int(d) < int(t):  # a finished segment makes no frames any more
            fps += float(f)
    reported = len(rows)
    if reported and reported < count:
        total += round(total / reported * (count - reported))
    return SplitProgress(done, total, fps, reported, count)
