"""The two hottest OpenAI calls, retrieve a file and list a page, answered without FastAPI's
routing, dependency solving and exception middleware, which cost more than the query itself.

Only a plain success is answered here. Anything else (no or a wrong key, an unknown id, a bad
parameter, a failing database) falls through to the regular routes in `files_router.py`, which decide
and render the error; the rules themselves stay in the service, called the same way by both.
"""

import re
from urllib.parse import parse_qsl

from pydantic_core import to_json
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import FileDockError
from app.core.files import FileService
from app.dialects.openai.files_router import list_page, parse_limit, parse_order
from app.dialects.openai.wire import file_json
from app.http.access_log import ROUTE
from app.http.credentials import bearer_key, identify

# /v1/files or /openai/v1/files, optionally followed by one id segment (never `/content`).
_ROUTE = re.compile(r"(?:/openai)?/v1/files(?:/([^/]+))?")
_JSON_HEADERS = [(b"content-type", b"application/json")]


class OpenAIFastReads:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _ROUTE.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        body = await self._answer(scope, route[1])
        if body is None:
            await self.app(scope, receive, send)
            return
        prefix = "/openai/v1" if scope["path"].startswith("/openai/") else "/v1"
        scope[ROUTE] = prefix + ("/files" if route[1] is None else "/files/{file_id}")
        headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope, file_id: str | None) -> bytes | None:
        """The JSON body of the answer, or None to let the regular route answer."""
        state = scope["app"].state
        try:
            caller = await identify(scope, bearer_key(Headers(scope=scope)))
            if caller is None:
                return None
            service: FileService = state.service.for_project(caller.project)
            if file_id is not None:
                return to_json(file_json(await service.get_file(file_id)))
            query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
            return to_json(
                await list_page(
                    service,
                    after=query.get("after"),
                    limit=parse_limit(query.get("limit")),
                    order=parse_order(query.get("order")),
                    purpose=query.get("purpose"),
                )
            )
        except FileDockError:
            return None
