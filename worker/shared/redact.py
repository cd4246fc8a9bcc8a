"""Keeping secrets out of every log line a process writes, whoever formats or ships it.

The API and the workers hold secrets (API keys, the S3 secret key, the local URL-signing key) and
handle URLs that are secrets in themselves (presigned S3 URLs, signed local file URLs: whoever has
one can download the file). Libraries log some of these at some level (uvicorn's access log prints
query strings, botocore's debug log prints signed headers), and an exception message may quote a
URL. Rather than audit every logger and handler, `install` wraps the process's LogRecord factory:
each record's message, arguments and traceback text are rendered and scrubbed once, when the
record is created, before any handler or formatter (text or JSON) sees it.

What is scrubbed: the configured secret values themselves, and by pattern the signature-bearing
parts of URLs and headers (`X-Amz-Signature=`, `X-Amz-Credential=`, `signature=`, `Authorization:
Key|Bearer|AWS4-HMAC-SHA256 ...`), so secrets we were never told about (a client's own presigned
`video_url`) do not leak either.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable
from typing import Any

from worker.shared.settings import Settings

MASK = "[redacted]"

_PATTERNS = [
    # query parameters that carry a signature or a credential (S3 presigned, our local file URLs)
    re.compile(r"(?i)((?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|credential|sig|token|key)=)[^&\s\"'<>]+"),
    # "Signature: <hex>" and the like, as botocore's debug log prints what it signs
    re.compile(r"(?i)((?:signature|credential)\s*:\s*)[0-9A-Za-z/+=_%-]{16,}"),
    # Authorization headers as they may appear in debug logs or exception texts
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:key|bearer|aws4-hmac-sha256)\s+)[^\s'\"]+[^'\"\n]*"),
]

_secrets: set[str] = set()
_installed = False


def secrets_of(settings: Settings) -> set[str]:
    """The configured secret values (the fields marked secret in `worker.shared.settings`), non-empty only."""
    values: set[str] = set()
    values.update(k for k in settings.api_keys if k)
    for value in (settings.aws_secret_access_key, settings.local_storage_secret):
        if value:
            values.add(value)
    return values


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with known secrets and signature-bearing URL parts masked."""
    for secret in sorted({*_secrets, *extra}, key=len, reverse=True):
        if len(secret) >= 4:  # masking 1-3 characters would shred ordinary text
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def install(settings: Settings) -> None:
    """Scrub every log record this process creates from now on (idempotent; secrets accumulate)."""
    global _installed
    _secrets.update(secrets_of(settings))
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def scrubbed(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return record
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            # Rendered now and the exception dropped, so no formatter renders it again unscrubbed.
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    logging.setLogRecordFactory(scrubbed)

    # `extra=` fields are set on a record after the factory made it, and JSON formatters print them
    # (RQ passes a failed job's arguments that way), so they are scrubbed where they are attached.
    make_with_extra = logging.Logger.makeRecord

    def make_record_scrubbed(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_with_extra(self, *args, **kwargs)
        extra = kwargs.get("extra") if "extra" in kwargs else (args[8] if len(args) > 8 else None)
        for key in extra or ():
            text = str(record.__dict__.get(key))
            cleaned = redact(text)
            if cleaned != text:
                record.__dict__[key] = cleaned
        return record

    logging.Logger.makeRecord = make_record_scrubbed  # type: ignore[method-assign]
