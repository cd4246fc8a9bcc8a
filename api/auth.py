"""`Authorization: Key <key>` as the fal clients send it, and who owns a request.

Each key is its own tenant: a request is stored with a fingerprint of the key that submitted it
(never the key itself), and any other key gets 404 for it, as if it did not exist. Keys are
compared in constant time against every configured key, so timing reveals neither a key nor
which one matched.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass

from litestar import Request
from litestar.exceptions import NotAuthorizedException

from worker.settings import Settings

log = logging.getLogger("api")

ANONYMOUS_OWNER = ""


@dataclass(frozen=True)
class Caller:
    """The authenticated client; `owner` is what requests are filed under."""

    owner: str


def key_fingerprint(key: str) -> str:
    return hashlib.sha256(b"rife-video owner\n" + key.encode()).hexdigest()[:32]


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
    matched = False
    for candidate in settings.api_keys:
        matched |= hmac.compare_digest(candidate.encode(), key.encode())
    if not matched:
        raise NotAuthorizedException(detail="Invalid API key.")
    return Caller(key_fingerprint(key))


async def provide_caller(request: Request, settings: Settings) -> Caller:
    """Litestar dependency: the caller of this request, or 401."""
    return authenticate(request.headers.get("authorization"), settings)


def warn_if_open(settings: Settings) -> None:
    if not settings.auth_enabled:
        banner = "!" * 78
        log.warning(
            "\n%s\n!! API_KEYS is empty: authentication is DISABLED. Anyone who can reach this API\n"
            "!! can submit jobs and read every result. Set API_KEYS=key1,key2 in production.\n%s",
            banner,
            banner,
        )
