"""The playground: `GET /` serves a single page to try the service in a browser.

The page (HTML, CSS and one JavaScript module in `api/static/`, no build step, nothing fetched
from elsewhere) talks only to this API's own public routes: `/openapi.json` for the form,
`/storage/upload`, the submit, status stream, result and cancel routes. The only thing rendered
server-side is whether API keys are on, so the page shows its key field only when it is needed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from litestar import MediaType, Response, get

from api.errors import ApiError
from worker.shared.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
_JS = "text/javascript"
ASSETS = {"app.js": _JS, "form.js": _JS, "compare.js": _JS, "style.css": "text/css"}
AUTH_MARKER = 'data-auth=""'

# The page loads only its own files; media may come from wherever results and inputs live
# (S3 presigned URLs, pasted URLs, local blobs of a chosen file).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src * blob: data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _read(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


@get("/", include_in_schema=False)
async def page(settings: Settings) -> Response[str]:
    """The playground page, told whether this server wants an `Authorization: Key` header."""
    html = _read("index.html").replace(AUTH_MARKER, f'data-auth="{int(settings.auth_enabled)}"', 1)
    return Response(html, media_type=MediaType.HTML, headers=SECURITY_HEADERS)


@get("/playground/{name:str}", include_in_schema=False)
async def asset(name: str) -> Response[str]:
    """The page's script and stylesheet (a fixed list: nothing else on disk is reachable)."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise ApiError(404, "Not found.")
    return Response(_read(name), media_type=media_type, headers=SECURITY_HEADERS)


ROUTES = [page, asset]
