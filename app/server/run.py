"""Serving the app with uvicorn: the one call into it, with FileDock's HTTP protocol."""

import uvicorn

from app.settings import Settings

# uvicorn's httptools protocol with header limits and zero-copy downloads. A string: each worker
# process imports it anew.
HTTP_PROTOCOL = "app.server.protocol:FileDockHttpProtocol"


def serve(settings: Settings, app_factory: str) -> None:
    """Serve the app `app_factory` ("module:function") names until interrupted."""
    uvicorn.run(
        app_factory,
        factory=True,
        http=HTTP_PROTOCOL,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        proxy_headers=False,
    )
