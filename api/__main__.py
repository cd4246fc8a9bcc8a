"""`python -m api`: serve the API with uvicorn on API_HOST:API_PORT (TLS with API_TLS_CERT/API_TLS_KEY)."""

from __future__ import annotations

import sys

import uvicorn

from api.app import create_app
from worker.shared import process_log
from worker.shared.settings import Settings


def main() -> int:
    settings = Settings.from_env()
    process_log.configure(settings.log_format, settings.log_level)
    tls = {"ssl_certfile": settings.api_tls_cert, "ssl_keyfile": settings.api_tls_key} if settings.api_tls_cert else {}
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers propagate to process_log's root handler
        proxy_headers=True,
        timeout_graceful_shutdown=5,
        **tls,  # type: ignore[arg-type]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
