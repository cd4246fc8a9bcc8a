"""fal-style log entries of a request, kept as a Redis list beside the request record.

Clients poll the whole log (`?logs=1`) or stream only new lines, so entries are appended once,
never rewritten, and read by index range. The entry shape is what the fal clients print.

Logs stay in Redis for RESULT_TTL_S with every finished request, so an entry is stored compactly
(`<unix time>|<level>|<message>`, about half the size of the JSON entry) and expanded on read;
entries stored as JSON by earlier versions are read too.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from redis import Redis

# fal's levels; Python logging names are mapped onto them.
LEVELS = ("INFO", "WARN", "ERROR", "DEBUG", "STDOUT", "STDERR")
_ALIASES = {"WARNING": "WARN", "CRITICAL": "ERROR", "FATAL": "ERROR", "EXCEPTION": "ERROR"}


def fal_level(level: str | int) -> str:
    """Map a Python logging level (name or number) or a fal level onto one of fal's `LEVELS`."""
    if isinstance(level, int):
        if level >= 40:
            return "ERROR"
        if level >= 30:
            return "WARN"
        return "INFO" if level >= 20 else "DEBUG"
    name = level.upper()
    name = _ALIASES.get(name, name)
    return name if name in LEVELS else "INFO"


def make_entry(message: str, level: str | int = "INFO", at: datetime | None = None) -> dict[str, Any]:
    return {
        "message": message,
        "level": fal_level(level),
        "source": "USER",
        "timestamp": (at or datetime.now(UTC)).isoformat(),
    }


class LevelShorthands:
    """`info` / `warn` / `error` over a log's `append(message, level)`."""

    def append(self, message: str, level: str | int = "INFO") -> None:
        raise NotImplementedError

    def info(self, message: str) -> None:
        self.append(message, "INFO")

    def warn(self, message: str) -> None:
        self.append(message, "WARN")

    def error(self, message: str) -> None:
        self.append(message, "ERROR")


class RequestLog(LevelShorthands):
    """Append-only log of one request. `ttl_s` keeps it from outliving a request that never finishes."""

    def __init__(self, redis: Redis, key: str, ttl_s: int, tag: str = "") -> None:
        self._redis = redis
        self._key = key
        self._ttl_s = ttl_s
        self._tag = f"{tag} " if tag else ""  # e.g. "[segment 2/3]": the part of a fanned-out request that writes

    def append(self, message: str, level: str | int = "INFO") -> None:
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(self._key, encode_entry(self._tag + message, level))
            pipe.expire(self._key, self._ttl_s, nx=True)
            pipe.execute()


def encode_entry(message: str, level: str | int = "INFO", at: float | None = None) -> str:
    """The stored form of a log entry: `<unix time, ms>|<level>|<message>`."""
    return f"{time.time() if at is None else at:.3f}|{fal_level(level)}|{message}"


def decode_entry(item: bytes | str) -> dict[str, Any]:
    text = item.decode() if isinstance(item, bytes) else item
    if text.startswith("{"):  # stored as JSON by an earlier version
        return dict(json.loads(text))
    stamp, level, message = text.split("|", 2)
    return make_entry(message, level, datetime.fromtimestamp(float(stamp), UTC))


def decode_entries(raw: list[bytes]) -> list[dict[str, Any]]:
    return [decode_entry(item) for item in raw]
