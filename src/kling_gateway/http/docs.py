"""``/docs`` and ``/openapi.json``, served with no CDN: Swagger UI's files come from the
``fastapi-offline`` package (its ``static`` directory, Swagger UI 5, which reads OpenAPI 3.1),
answered by the gateway itself.

Registered as ``APIRoute``s rather than FastAPI's own ``docs_url``/``openapi_url`` routes: the
router sets ``scope["route"]`` only for those, and the metrics and access log label a request by it,
so each of these paths is counted under its own template instead of ``unmatched``.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from ..errors import NotFound

DOCS_PATH = "/docs"
OPENAPI_PATH = "/openapi.json"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
ASSETS_PATH = "/docs/assets"
STATIC_DIR = Path(fastapi_offline.__file__).parent / "static"
# The only files served: a fixed set, so no request names a path on the disk.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
ASSET_CACHE = "public, max-age=86400"


def install(app: FastAPI) -> None:
    """Add the three routes to ``app``, made with ``openapi_url=None`` and ``docs_url=None``."""

    async def openapi(request: Request) -> Response:
        """FastAPI's own handler, ``root_path`` and all."""
        root_path = request.scope.get("root_path", "").rstrip("/")
        schema = app.openapi()
        if root_path and app.root_path_in_servers:
            servers = schema.get("servers", [])
            if root_path not in {s.get("url") for s in servers}:
                schema = {**schema, "servers": [{"url": root_path}, *servers]}
        return JSONResponse(schema)

    async def swagger_ui(request: Request) -> Response:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + OPENAPI_PATH,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_PATH,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def asset(request: Request, name: str) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise NotFound(f"no such file: {ASSETS_PATH}/{name[:80]}")
        headers = {"Cache-Control": ASSET_CACHE}
        return FileResponse(STATIC_DIR / name, media_type=media_type, headers=headers)

    for path, endpoint in (
        (OPENAPI_PATH, openapi),
        (DOCS_PATH, swagger_ui),
        (OAUTH2_REDIRECT_PATH, oauth2_redirect),
        (ASSETS_PATH + "/{name}", asset),
    ):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)
