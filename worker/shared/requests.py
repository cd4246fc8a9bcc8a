"""The Redis data model of one request: its record (a hash) and its log (a list).

The API polls a request up to ten times a second per client, so everything a status call needs is
in one hash plus the RQ queue list, read in a single pipelined round trip (`snapshot`). State
changes that race (a worker starting a job while a client cancels it, two parties finishing it)
go through WATCH transactions, so a request is finished exactly once and fires one webhook.

Keys (`P` is the RQ queue name): `P:request:{id}` hash, `P:request:{id}:logs` list. Both expire
`pending_ttl_s` after creation (a request that is never run does not live forever) and
`result_ttl_s` after the request completes. Beside them, for reliability:
- `P:queued` sorted set, request id -> the time its queue wait runs out (QUEUE_TTL_S), for every
  IN_QUEUE request, and `P:inflight` hash, request id -> worker name, for every IN_PROGRESS request:
  every unfinished request is in exactly one of them, moved from one to the other in the same
  transaction as its status, so the reaper (see `worker.process.reaper`) watches every request whatever
  happened between RQ's dequeue and our records (a Redis crash, a worker killed in between);
- `P:alive:{worker}` string, the request a worker is running (or `-`), expiring unless refreshed:
  the worker's heartbeat (see `worker.process.liveness`);
- `P:active:{owner}` sorted set of the owner's unfinished requests (score: when the entry stops
  counting even if never finished), for the per-key limit on queued requests.

Each run of a request is an *attempt* (a counter in the record). A worker finishes a request only
while the record still names it and its attempt (`Claim`), so a worker that was presumed dead and
whose request was requeued cannot overwrite the result of the run that replaced it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError

from worker.shared.request_log import RequestLog, decode_entries


class Status(StrEnum):
    """The only three statuses the fal clients accept; failure and cancellation end COMPLETED."""

    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


class StartOutcome(StrEnum):
    STARTED = "started"
    CANCELLED = "cancelled"  # cancel was requested before the worker picked the job up
    GONE = "gone"  # expired, unknown, or already finished: nothing to do


@dataclass(frozen=True)
class Claim:
    """Which run of a request a worker holds: the worker's name and the attempt number it started."""

    worker: str
    attempt: int


IDLE = "-"  # the value of a live worker's heartbeat while it runs no request

PART_SEP = "__"  # request id + PART_SEP + part name: the id of one job of a fanned-out request


@dataclass(frozen=True)
class PartRef:
    """One job of a fanned-out request (see `worker.shared.splits`): a segment, or the merge.

    Parts are named by id alone (`{request}__seg{i}of{K}`, `{request}__merge`; RQ allows only
    letters, digits, `_` and `-` in job ids), so a part's log lines, tags and parent are known
    without a read.
    """

    request_id: str
    index: int | None  # 0-based segment index; None for the merge
    count: int

    @property
    def id(self) -> str:
        if self.index is None:
            return f"{self.request_id}{PART_SEP}merge"
        return f"{self.request_id}{PART_SEP}seg{self.index + 1}of{self.count}"

    @property
    def tag(self) -> str:
        """How the request's log names this part."""
        return "[merge]" if self.index is None else f"[segment {self.index + 1}/{self.count}]"


def part_of(job_id: str) -> PartRef | None:
    """The part a job id names, or None for a request's own id."""
    request_id, sep, name = job_id.rpartition(PART_SEP)
    if not sep or not request_id:
        return None
    if name == "merge":
        return PartRef(request_id, None, 0)
    if name.startswith("seg") and "of" in name:
        index, _, count = name[3:].partition("of")
        if index.isdigit() and count.isdigit():
            return PartRef(request_id, int(index) - 1, int(count))
    return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Failure:
    """How a request failed: the message and stable type clients see, and the HTTP status of its result."""

    message: str
    error_type: str
    http_status: int = 500
    field: str | None = None  # input field to blame, for 422 `loc`


@dataclass(frozen=True)
class RequestRecord:
    id: str
    status: Status
    owner: str = ""
    input: dict[str, Any] = field(default_factory=dict)
    base_url: str = ""
    webhook_url: str | None = None
    gateway_request_id: str | None = None
    input_key: str | None = None  # storage key of an inlined (data: URI) input, stored by the API
    created_at: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    worker: str | None = None
    cancel_requested: bool = False
    attempt: int = 0  # runs started so far
    lost: int = 0  # runs that died with their worker
    handed_back: bool = False  # the running worker is stopping and gives the request back
    split: int = 0  # fanned out into this many segments (`worker.shared.splits`); 0: runs as one job
    split_input: str | None = None  # storage key the segments and the merge read the input from
    split_stem: str = ""  # the input's file name stem, for the merged result's name
    result: dict[str, Any] | None = None
    failure: Failure | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_hash(self) -> dict[str, str]:
        h: dict[str, str] = {
            "status": self.status.value,
            "owner": self.owner,
            "input": json.dumps(self.input),
            "base_url": self.base_url,
            "created_at": repr(self.created_at),
        }
        optional = {
            "webhook_url": self.webhook_url,
            # Stored only when it differs from the request id (the usual value, rebuilt on read).
            "gateway_request_id": self.gateway_request_id if self.gateway_request_id != self.id else None,
            "input_key": self.input_key,
        }
        h.update({k: v for k, v in optional.items() if v})
        return h

    @classmethod
    def from_hash(cls, request_id: str, raw: dict[Any, Any]) -> RequestRecord:
        h = {k.decode(): v.decode() for k, v in raw.items()}

        def num(name: str) -> float | None:
            return float(h[name]) if h.get(name) else None

        failure = None
        if h.get("error_type"):
            failure = Failure(
                message=h.get("error", ""),
                error_type=h["error_type"],
                http_status=int(h.get("error_status") or 500),
                field=h.get("error_field") or None,
            )
        return cls(
            id=request_id,
            status=Status(h["status"]),
            owner=h.get("owner", ""),
            input=json.loads(h.get("input") or "{}"),
            base_url=h.get("base_url", ""),
            webhook_url=h.get("webhook_url") or None,
            gateway_request_id=h.get("gateway_request_id") or (request_id if h.get("webhook_url") else None),
            input_key=h.get("input_key") or None,
            created_at=num("created_at") or 0.0,
            started_at=num("started_at"),
            completed_at=num("completed_at"),
            worker=h.get("worker") or None,
            cancel_requested=h.get("cancel") == "1",
            attempt=int(h.get("attempt") or 0),
            lost=int(h.get("lost") or 0),
            handed_back=h.get("handback") == "1",
            split=int(h.get("split") or 0),
            split_input=h.get("split_input") or None,
            split_stem=h.get("split_stem", ""),
            result=json.loads(h["result"]) if h.get("result") else None,
            failure=failure,
            metrics=json.loads(h.get("metrics") or "{}"),
        )


@dataclass(frozen=True)
class Snapshot:
    """What one status poll needs: the status, the queue position, and (optionally) log lines."""

    id: str
    status: Status
    owner: str
    queue_position: int | None
    logs: list[dict[str, Any]] | None
    failure: Failure | None
    metrics: dict[str, Any]


# The hash fields a status poll reads (never `input` or `result`, which may be large).
_SNAPSHOT_FIELDS = ("status", "owner", "error", "error_type", "error_status", "error_field", "metrics")


# Queues more commands on a finishing request's MULTI (request id, pipeline): its webhook job.
FinishHook = Callable[[str, Pipeline], None]


class RequestStore:
    def __init__(
        self,
        redis: Redis,
        namespace: str,
        *,
        pending_ttl_s: int,
        result_ttl_s: int,
        on_finish_with_webhook: FinishHook | None = None,
    ) -> None:
        self.redis = redis
        self.namespace = namespace
        self.pending_ttl_s = pending_ttl_s
        self.result_ttl_s = result_ttl_s
        # Enqueues the webhook delivery inside the transaction that finishes the request, so a
        # finished request with a webhook always has its delivery queued (no crash in between).
        self.on_finish_with_webhook = on_finish_with_webhook

    def key(self, request_id: str) -> str:
        return f"{self.namespace}:request:{request_id}"

    def logs_key(self, request_id: str) -> str:
        return f"{self.key(request_id)}:logs"

    @property
    def inflight_key(self) -> str:
        return f"{self.namespace}:inflight"

    @property
    def queued_key(self) -> str:
        return f"{self.namespace}:queued"

    @property
    def webhooks_key(self) -> str:
        """Sorted set: request id -> when its webhook job was (re)queued, for webhooks not yet sent (claimed)."""
        return f"{self.namespace}:webhooks"

    @property
    def orphans_key(self) -> str:
        """Hash: queued request id -> when the reaper first saw it neither in RQ's queue nor with a worker."""
        return f"{self.namespace}:orphans"

    def alive_key(self, worker: str) -> str:
        return f"{self.namespace}:alive:{worker}"

    def active_key(self, owner: str) -> str:
        return f"{self.namespace}:active:{owner}"

    def log(self, request_id: str) -> RequestLog:
        """The request's log; a part of a fanned-out request writes into its request's log, tagged."""
        part = part_of(request_id)
        if part is not None:
            return RequestLog(self.redis, self.logs_key(part.request_id), self.pending_ttl_s, tag=part.tag)
        return RequestLog(self.redis, self.logs_key(request_id), self.pending_ttl_s)

    # --- writes ----------------------------------------------------------------------------

    def create(self, record: RequestRecord, pipe: Pipeline) -> None:
        """Queue the record's creation on `pipe`, so it lands atomically with the RQ enqueue."""
        pipe.hset(self.key(record.id), mapping=record.to_hash())  # type: ignore[arg-type]
        pipe.expire(self.key(record.id), self.pending_ttl_s)
        # Counted against the owner's limit until finished, or until the record would have expired.
        pipe.zadd(self.active_key(record.owner), {record.id: record.created_at + self.pending_ttl_s})
        pipe.expire(self.active_key(record.owner), self.pending_ttl_s)

    def count_active(self, owner: str) -> int:
        """The owner's unfinished requests (queued or running), dropping entries whose records expired."""
        key = self.active_key(owner)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(key, "-inf", time.time())
            pipe.zcard(key)
            return int(pipe.execute()[1])

    def mark_queued(self, pipe: Pipeline, request_id: str, deadline: float) -> None:
        """Queue (on `pipe`, inside the caller's MULTI) the request's entry in the queued index."""
        pipe.zadd(self.queued_key, {request_id: deadline})
        pipe.hdel(self.orphans_key, request_id)

    def mark_started(self, request_id: str, worker: str, run: str = "") -> StartOutcome:
        """IN_QUEUE → IN_PROGRESS as a new attempt by `worker`, unless cancelled (or vanished) meanwhile.

        The request moves from the queued index to the in-flight index in the same transaction, so
        it is watched by the reaper at every instant. `run` names this start (any unique token):
        retried after a lost reply (Redis died after committing), it answers STARTED again.
        """
        key = self.key(request_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    status, cancel, attempt, started_run = pipe.hmget(key, "status", "cancel", "attempt", "run")
                    if run and status == Status.IN_PROGRESS.value.encode() and started_run == run.encode():
                        pipe.unwatch()
                        return StartOutcome.STARTED
                    if status != Status.IN_QUEUE.value.encode():
                        return StartOutcome.GONE
                    if cancel == b"1":
                        return StartOutcome.CANCELLED
                    pipe.multi()
                    pipe.hset(
                        key,
                        mapping={  # type: ignore[arg-type]
                            "status": Status.IN_PROGRESS.value,
                            "started_at": repr(time.time()),
                            "worker": worker,
                            "attempt": str(int(attempt or 0) + 1),
                            "run": run,
                        },
                    )
                    pipe.hdel(key, "handback")
                    pipe.hset(self.inflight_key, request_id, worker)
                    pipe.zrem(self.queued_key, request_id)
                    pipe.hdel(self.orphans_key, request_id)
                    pipe.execute()
                    return StartOutcome.STARTED
                except WatchError:
                    continue

    def claim_of(self, request_id: str) -> Claim | None:
        """The current run of an IN_PROGRESS request, or None."""
        status, worker, attempt = self.redis.hmget(self.key(request_id), "status", "worker", "attempt")
        if status != Status.IN_PROGRESS.value.encode() or worker is None:
            return None
        return Claim(_text(worker), int(attempt or 0))

    def run_state(self, request_id: str) -> tuple[bool, Claim | None]:
        """(cancel requested, current run) in one read: what a running job checks between batches."""
        status, worker, attempt, cancel = self.redis.hmget(self.key(request_id), "status", "worker", "attempt", "cancel")
        claim = Claim(_text(worker), int(attempt or 0)) if status == Status.IN_PROGRESS.value.encode() and worker else None
        return cancel == b"1", claim

    def mark_handed_back(self, request_id: str, claim: Claim) -> bool:
        """Flag a run its stopping worker gives back: requeued without counting as a lost run."""
        key = self.key(request_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    if self._claim_in(pipe, key) != claim:
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.hset(key, "handback", "1")
                    pipe.execute()
                    return True
                except WatchError:
                    continue

    @staticmethod
    def _claim_in(pipe: Pipeline, key: str) -> Claim | None:
        status, worker, attempt = pipe.hmget(key, "status", "worker", "attempt")
        if status != Status.IN_PROGRESS.value.encode() or worker is None:
            return None
        return Claim(_text(worker), int(attempt or 0))

    def drop_stale_inflight(self, request_id: str, worker: str) -> None:
        """Remove the in-flight entry of a request `worker` no longer holds (e.g. its record expired).

        Every write of a request's entry also writes its record, so watching the record makes this
        conditional delete safe against a worker starting the request meanwhile.
        """
        key = self.key(request_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    held = self._claim_in(pipe, key)
                    entry = pipe.hget(self.inflight_key, request_id)
                    if (held is not None and held.worker == worker) or entry != worker.encode():
                        pipe.unwatch()
                        return
                    pipe.multi()
                    pipe.hdel(self.inflight_key, request_id)
                    pipe.execute()
                    return
                except WatchError:
                    continue

    def inflight(self) -> dict[str, str]:
        """Every request some worker has marked started and nobody has finished or requeued: id -> worker."""
        return {_text(k): _text(v) for k, v in self.redis.hgetall(self.inflight_key).items()}

    def request_cancel(self, request_id: str) -> None:
        self.redis.hset(self.key(request_id), "cancel", "1")

    def finish(
        self,
        request_id: str,
        *,
        result: dict[str, Any] | None = None,
        failure: Failure | None = None,
        metrics: dict[str, Any] | None = None,
        claim: Claim | None = None,
    ) -> bool:
        """Mark the request COMPLETED with a result or a failure. True only for the call that did it.

        With a `claim`, only while that run still holds the request: a worker that lost its request
        to the reaper (presumed dead, requeued) cannot finish it any more.
        """
        fields = self.finish_fields(result=result, failure=failure, metrics=metrics)
        key = self.key(request_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    status = pipe.hget(key, "status")
                    if status is None or status == Status.COMPLETED.value.encode():
                        pipe.unwatch()
                        return False
                    if claim is not None and self._claim_in(pipe, key) != claim:
                        pipe.unwatch()
                        return False
                    self.queue_finish(pipe, request_id, fields)
                    pipe.execute()
                    return True
                except WatchError:
                    continue

    @staticmethod
    def finish_fields(
        *, result: dict[str, Any] | None = None, failure: Failure | None = None, metrics: dict[str, Any] | None = None
    ) -> dict[str, str]:
        """The record fields of a finished request (exactly one of `result` and `failure`)."""
        if (result is None) == (failure is None):
            raise ValueError("finish needs exactly one of result and failure")
        fields: dict[str, str] = {
            "status": Status.COMPLETED.value,
            "completed_at": repr(time.time()),
            "metrics": json.dumps(metrics or {}),
        }
        if result is not None:
            fields["result"] = json.dumps(result)
        if failure is not None:
            fields |= {
                "error": failure.message,
                "error_type": failure.error_type,
                "error_status": str(failure.http_status),
                "error_field": failure.field or "",
            }
        return fields

    def queue_finish(self, pipe: Pipeline, request_id: str, fields: dict[str, str]) -> None:
        """Read (under the caller's WATCH of the record) what finishing needs, then start the MULTI and
        queue the finish on it: the record's outcome, its TTLs, its index entries and its webhook job."""
        key = self.key(request_id)
        owner, webhook_url = pipe.hmget(key, "owner", "webhook_url")
        pipe.multi()
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
        # Kept for RESULT_TTL_S, so only what clients and webhooks still read: the input
        # (the worker's alone) and run bookkeeping go.
        pipe.hdel(key, "handback", "input", "run", "split_input", "split_stem", "split_done")
        pipe.expire(key, self.result_ttl_s)
        pipe.expire(self.logs_key(request_id), self.result_ttl_s)
        pipe.hdel(self.inflight_key, request_id)
        pipe.zrem(self.queued_key, request_id)
        pipe.hdel(self.orphans_key, request_id)
        pipe.zrem(self.active_key(_text(owner or b"")), request_id)
        if webhook_url and self.on_finish_with_webhook is not None:
            pipe.zadd(self.webhooks_key, {request_id: time.time()})
            self.on_finish_with_webhook(request_id, pipe)

    def claim_webhook(self, request_id: str, delivery: str) -> bool | None:
        """Mark the request's webhook as sent by `delivery`, before it is sent: True for the one caller
        that may send it, False when one already did (or is doing it), None when the record is gone."""
        key = self.key(request_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    status, sent = pipe.hmget(key, "status", "webhook_sent")
                    if status is None:
                        return None
                    if sent is not None:
                        return False
                    pipe.multi()
                    pipe.hset(key, "webhook_sent", delivery)
                    pipe.zrem(self.webhooks_key, request_id)
                    pipe.execute()
                    return True
                except WatchError:
                    continue

    def release_webhook(self, request_id: str, delivery: str, *, retried: bool) -> None:
        """Undo `claim_webhook` after a failed POST, so that the next retry may send; `retried`: RQ will
        retry it (the webhook is pending again, watched by the reaper), else it is given up."""
        key = self.key(request_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    if pipe.hget(key, "webhook_sent") != delivery.encode():
                        return
                    pipe.multi()
                    pipe.hdel(key, "webhook_sent")
                    if retried:
                        pipe.zadd(self.webhooks_key, {request_id: time.time()})
                    pipe.execute()
                    return
                except WatchError:
                    continue

    def queued(self) -> dict[str, float]:
        """Every IN_QUEUE request: id -> the time its queue wait runs out."""
        entries: list[tuple[bytes, float]] = self.redis.zrange(self.queued_key, 0, -1, withscores=True)  # type: ignore[assignment]
        return {_text(k): float(v) for k, v in entries}

    # --- reads -----------------------------------------------------------------------------

    def get(self, request_id: str) -> RequestRecord | None:
        raw = self.redis.hgetall(self.key(request_id))
        return RequestRecord.from_hash(request_id, raw) if raw else None

    def snapshot(self, request_id: str, queue_key: str, *, logs_from: int | None) -> Snapshot | None:
        """Status, queue position and logs (from index `logs_from`; None: no logs) in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self.key(request_id), *_SNAPSHOT_FIELDS)
            pipe.lpos(queue_key, request_id)
            if logs_from is not None:
                pipe.lrange(self.logs_key(request_id), logs_from, -1)
            replies = pipe.execute()
        values = dict(zip(_SNAPSHOT_FIELDS, (v.decode() if v is not None else None for v in replies[0]), strict=True))
        if values["status"] is None:
            return None
        failure = None
        if values["error_type"]:
            failure = Failure(
                message=values["error"] or "",
                error_type=values["error_type"],
                http_status=int(values["error_status"] or 500),
                field=values["error_field"] or None,
            )
        return Snapshot(
            id=request_id,
            status=Status(values["status"]),
            owner=values["owner"] or "",
            queue_position=replies[1],
            logs=decode_entries(replies[2]) if logs_from is not None else None,
            failure=failure,
            metrics=json.loads(values["metrics"] or "{}"),
        )

    def logs(self, request_id: str, start: int = 0) -> list[dict[str, Any]]:
        return decode_entries(self.redis.lrange(self.logs_key(request_id), start, -1))  # type: ignore[arg-type]

