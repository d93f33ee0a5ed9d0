"""``/docs``: Swagger UI, served from this process with a strict Content-Security-Policy.

FastAPI's default page loads Swagger UI from a CDN and starts it with an inline script,
so no policy short of ``'unsafe-inline'`` fits it, and it can be framed by any site
(clickjacking a signed-in "Try it out"). Here the assets come from the
``swagger-ui-bundle-v2`` package and the start-up script is a file of ours, so the page
works offline and the policy allows scripts from this origin only. Swagger UI sets
``style`` attributes as it renders, hence ``'unsafe-inline'`` for styles (not scripts).
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.staticfiles import PathLike
from starlette.types import Scope
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"

SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; object-src 'none'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}

_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Interlock API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/docs/start.js"></script>
</body>
</html>
"""

_START = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
});
"""


class _Assets(StaticFiles):
    """The Swagger UI files, with the same headers as the page."""

    def file_response(self, full_path: PathLike, stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(SECURITY_HEADERS)
        return response


def install(app: FastAPI) -> None:
    """Serve the page on an app created with ``docs_url=None``."""
    app.mount(ASSETS, _Assets(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(_PAGE, headers=SECURITY_HEADERS)

    @app.get("/docs/start.js", include_in_schema=False)
    async def start() -> Response:
        return Response(_START, media_type="text/javascript", headers=SECURITY_HEADERS)
