"""The API reference page: `/docs`, Swagger UI over the app's own `/openapi.json`.

Swagger UI's script, stylesheet and icon come from the installed `fastapi-offline` package (it
repackages swagger-ui-dist 5, which renders OpenAPI 3.1 as FastAPI writes it) and are served
under `/docs/assets/`; nothing is loaded from the network. FastAPI's own page cannot be used:
it loads the assets from a CDN and starts Swagger UI with an inline script, both of which the
policy every response carries (`app.http.headers`) forbids. This page starts it from a script
of its own instead, so its policy allows exactly: scripts and styles from this origin, images
from this origin and `data:` (Swagger UI's stylesheet draws its icons as data URIs), and
fetches to this origin (the spec, and "Try it out").

Every URL in the page is relative to `/docs`, so the page also works behind a proxy that serves
FileDock under a path prefix. Neither the page, its assets nor `/openapi.json` need a key: a
browser cannot send one when it opens a page, and the spec is the same for every FileDock of
this version, with no data of any project.
"""

import importlib.resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from app.http.headers import CONTENT_SECURITY_POLICY

DOCS_PATH = "/docs"
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>FileDock API reference</title>
<link rel="icon" type="image/png" href="docs/assets/favicon.png">
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-spec-url="openapi.json"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/start.js"></script>
</body>
</html>
"""
# Relative URLs resolve against the page's address, so a path prefix added by a proxy is kept.
_START = """"use strict";
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: new URL(root.dataset.specUrl, document.baseURI).href,
  domNode: root,
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""


def swagger_ui_assets() -> Path:
    """Where the installed package keeps Swagger UI's files; a missing file stops start-up."""
    directory = Path(str(importlib.resources.files("fastapi_offline") / "static"))
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        if not (directory / name).is_file():
            raise RuntimeError(f"Swagger UI's {name} is missing from {directory}; reinstall fastapi-offline")
    return directory


def install_docs(app: FastAPI) -> None:
    """Serve the page and its assets on `app`, whose `/openapi.json` the page shows."""
    app.add_api_route(DOCS_PATH, read_docs_page, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route(
        f"{DOCS_PATH}/start.js", read_start_script, methods=["GET", "HEAD"], include_in_schema=False
    )
    app.mount(f"{DOCS_PATH}/assets", StaticFiles(directory=swagger_ui_assets()), name="docs-assets")


async def read_docs_page() -> Response:
    return HTMLResponse(_PAGE, headers={CONTENT_SECURITY_POLICY: DOCS_POLICY})


async def read_start_script() -> Response:
    return Response(_START, media_type="text/javascript")
