"""`Authorization: Key <key>` as the fal clients send it, and who owns a request.

Each key is its own tenant: a request is stored with a fingerprint of the key that submitted it
(never the key itself), and any other key gets 404 for it, as if it did not exist. Keys are
compared in constant time against every configured key, so timing reveals neither a key nor
which one matched: what is compared are SHA-256 digests (equal lengths, so not even the key's
length shows), with `hmac.compare_digest`, and every configured key is compared every time.

The caller dependency also applies the per-key rate limit (`api.limits`), so every keyed route
counts against it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass

import anyio
from litestar import Request
from litestar.exceptions import NotAuthorizedException

from api.limits import check_rate
from api.services import Services
from worker.shared.settings import Settings

log = logging.getLogger("api")

ANONYMOUS_OWNER = ""


@dataclass(frozen=True)
class Caller:
    """The authenticated client; `owner` is what requests are filed under."""

    owner: str


def key_fingerprint(key: str) -> str:
    return hashlib.sha256(b"rife-video owner\n" + key.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def parse_authorization(header: str | None) -> str | None:
    """The key of `Key <key>` (fal's scheme); `Bearer <key>` is accepted too."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() not in ("key", "bearer") or not value.strip():
        return None
    return value.strip()


def authenticate(header: str | None, settings: Settings) -> Caller:
    if not settings.auth_enabled:
        return Caller(ANONYMOUS_OWNER)
    key = parse_authorization(header)
    if key is None:
        raise NotAuthorizedException(detail="Missing Authorization header: use `Authorization: Key <your key>`.")
    offered = _digest(key)
    matched = False
    for candidate in settings.api_keys:
        matched |= hmac.compare_digest(_digest(candidate), offered)
    if not matched:
        raise NotAuthorizedException(detail="Invalid API key.")
    return Caller(key_fingerprint(key))


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


async def provide_caller(request: Request, settings: Settings, services: Services) -> Caller:
    """Litestar dependency: the caller of this request (401 without a valid key, 429 over its rate)."""
    caller = authenticate(request.headers.get("authorization"), settings)
    if settings.rate_limit_requests:
        await anyio.to_thread.run_sync(check_rate, services.redis, settings, caller.owner)
    return caller


def warn_if_open(settings: Settings) -> None:
    if not settings.auth_enabled:
        banner = "!" * 78
        log.warning(
            "\n%s\n!! API_KEYS is empty: authentication is DISABLED. Anyone who can reach this API\n"
            "!! can submit jobs and read every result. Set API_KEYS=key1,key2 in production.\n%s",
            banner,
            banner,
        )
