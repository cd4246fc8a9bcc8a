"""A bounded, closable queue between pipeline threads.

The bound is what keeps memory flat for any video length: a fast decoder blocks once a few
batches are waiting. Any stage can stop the whole pipeline (error or cancel) through a shared
event; blocked producers and consumers then wake within a tenth of a second and raise `Stopped`
instead of waiting forever on a partner thread that has gone.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_S = 0.1


class Stopped(Exception):
    """The pipeline was stopped while this thread waited on a channel."""


class _End:
    pass


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Channel(Generic[T]):
    def __init__(self, maxsize: int, stop: threading.Event) -> None:
        self._queue: queue.Queue[T | _End | _Failure] = queue.Queue(maxsize=max(1, maxsize))
        self._stop = stop

    def _put(self, item: T | _End | _Failure) -> None:
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def put(self, item: T) -> None:
        self._put(item)

    def close(self) -> None:
        """No more items: the consumer's iteration ends after the last one."""
        self._put(_End())

    def fail(self, error: BaseException) -> None:
        """Hand the producer's error to the consumer, which raises it where it iterates."""
        try:
            self._put(_Failure(error))
        except Stopped:
            pass

    def __iter__(self) -> Iterator[T]:
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                item = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if isinstance(item, _End):
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
