"""The web dashboard: the front end in ``web/``, built into ``api/static/``, served at ``/``.

The dashboard is static files over the REST API (the browser sends the API key itself), so the
server only hands out files. When they have not been built, ``/`` says how to build them and the
API works as before.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response

STATIC_DIR = Path(__file__).with_name("static")

MISSING = """Evo's dashboard has not been built, so there is nothing to show here.
The REST API works: see /api/v1/docs.

To build the dashboard (Node.js 18 or newer), from a checkout of Evo:

    cd web && npm ci && npm run build

which writes api/static/; then restart `evo serve`. Installing Evo from a checkout
(`pip install .`) builds it too when npm is available.
"""

# The page only ever talks to this server; refusing inline scripts and foreign origins keeps
# a stored prompt that looks like HTML from running, and the key in sessionStorage with it.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # the page names its assets by content hash: it must be revalidated, they never change
    "Cache-Control": "no-cache",
}
ASSET_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=31536000, immutable",
}
ASSET_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
# one plain file name: no folders, so no request can reach outside the assets folder
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def dashboard_built(static_dir: Path = STATIC_DIR) -> bool:
    return (static_dir / "index.html").is_file()


def mount_dashboard(app: FastAPI, static_dir: Path | None = None) -> None:
    """Serve the dashboard at ``/`` and its files under ``/assets/``; neither is part of the
    API's schema."""
    root = static_dir or STATIC_DIR

    @app.get("/", include_in_schema=False)
    def dashboard_page() -> Response:
        page = root / "index.html"
        if not page.is_file():
            # not cached: once built, the next load shows the dashboard
            return PlainTextResponse(MISSING, 503, headers={"Cache-Control": "no-store"})
        return FileResponse(page, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    @app.get("/assets/{name}", include_in_schema=False)
    def dashboard_asset(name: str, request: Request) -> Response:
        kind = ASSET_TYPES.get(Path(name).suffix)
        path = root / "assets" / name
        if kind is None or not _ASSET_NAME.fullmatch(name) or not path.is_file():
            raise HTTPException(404, "no such file")
        headers = {**ASSET_HEADERS, "Vary": "Accept-Encoding"}
        packed = path.with_name(name + ".gz")  # written by the build next to the file
        if "gzip" in request.headers.get("accept-encoding", "") and packed.is_file():
            headers["Content-Encoding"] = "gzip"
            return FileResponse(packed, media_type=kind, headers=headers)
        return FileResponse(path, media_type=kind, headers=headers)
