"""`/docs`: Swagger UI on `/openapi.json`, from assets that ship in the package.

The page loads nothing from another origin, so it works offline and behind a firewall. The
assets are swagger-ui-dist as published on npm (`static/swagger-ui/VENDORED.md`), served under
`/docs/assets/`, one route per file (a static-files mount would be a route without methods,
and the only thing serving arbitrary paths). There is no ReDoc page: Swagger UI alone documents
and tries the API.
"""

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
ASSETS_DIR = Path(__file__).parent / "static" / "swagger-ui"
SCRIPT, STYLESHEET, ICON = "swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"


def _asset(name: str) -> Callable[[], Awaitable[FileResponse]]:
    path = ASSETS_DIR / name
    assert path.is_file(), path  # shipped as package data

    async def asset() -> FileResponse:
        return FileResponse(path)

    return asset


def install(app: FastAPI) -> None:
    """Serve Swagger UI at `/docs` (the app is built with `docs_url=None, redoc_url=None`)."""
    assert app.docs_url is None and app.redoc_url is None, "FastAPI's CDN pages stay off"
    for name in (SCRIPT, STYLESHEET, ICON):
        app.add_api_route(
            f"{ASSETS_PATH}/{name}", _asset(name), methods=["GET"], include_in_schema=False
        )

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS_PATH}/{SCRIPT}",
            swagger_css_url=f"{ASSETS_PATH}/{STYLESHEET}",
            swagger_favicon_url=f"{ASSETS_PATH}/{ICON}",
            # Swagger UI's default validator is a public web service.
            swagger_ui_parameters={"validatorUrl": None},
        )
