"""Gemini Files routes (under `/gemini`, or the bare root when sniffed as Gemini), for `v1beta`
(google-genai 2.x) and `v1` (3.x).

Uploads use Google's resumable protocol: a `start` request opens a session and answers with an
`X-Goog-Upload-URL` built from the address the client reached us at; chunk requests to that URL
carry no API key, the session id in the URL is their capability. Every reply is status 200.
"""

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from app.core.errors import FileDockError, FileNotFound, InvalidRequest, NotFound, RouteNotFound
from app.core.files import FileService
from app.core.policy import FilePolicy, check_filename, check_mime_type
from app.core.records import FileRecord
from app.dialects.gemini import errors as gemini_errors
from app.dialects.gemini.ids import from_gemini_id, to_gemini_id
from app.dialects.gemini.sessions import SESSION_PURPOSE, ResumableUploads, Session, check_offset
from app.dialects.gemini.wire import file_resource
from app.http.apps import create_dialect_app
from app.http.bodies import discard_body, parse_client_json, read_capped
from app.http.credentials import authenticate, gemini_key
from app.http.downloads import download_response

VERSIONS = ("v1beta", "v1")
MAX_START_BODY_BYTES = 64 * 1024
MAX_DISPLAY_NAME = 512
CHUNK_GRANULARITY = 8 * 1024 * 1024  # the SDK's chunk size; any size is accepted
MAX_DISCARDED_BYTES = 4 * CHUNK_GRANULARITY  # a refused chunk is read to its end up to this size
INVALID_KEY_MESSAGE = "API key not valid. Please pass a valid API key."
# The end of a File's `uri` or `downloadUri` however it is prefixed: `…/files/<id>[:download]`.
_FILE_AT_END = re.compile(r"(?:^|/)files/([^/:?]+)(?::download)?$")


def get_service(request: Request) -> FileService:
    """The store across projects: only for chunk requests, whose session names its project."""
    service: FileService = request.app.state.service
    return service


async def authorized_service(request: Request) -> FileService:
    """The files of the project whose key is in `x-goog-api-key` (the SDK) or `?key=` (REST)."""
    key = gemini_key(request)
    caller = await authenticate(
        request, key, missing=gemini_errors.MISSING_KEY_MESSAGE, invalid=INVALID_KEY_MESSAGE
    )
    return get_service(request).for_project(caller.project)


def get_resumable(request: Request) -> ResumableUploads:
    return ResumableUploads(request.app.state.uploads)


ServiceDep = Annotated[FileService, Depends(authorized_service)]
ResumableDep = Annotated[ResumableUploads, Depends(get_resumable)]


def check_version(version: str) -> str:
    if version not in VERSIONS:
        raise RouteNotFound(f"Invalid API version {version!r}: use one of {', '.join(VERSIONS)}.")
    return version


VersionDep = Annotated[str, Depends(check_version)]
router = APIRouter()


@router.post("/upload/{version}/files")
async def upload_file(request: Request, version: VersionDep, resumable: ResumableDep) -> Response:
    upload_id = request.query_params.get("upload_id")
    if upload_id is not None:  # a chunk: authorised by the session id the start reply handed out
        return await _chunk(request, upload_id, version, get_service(request), resumable)
    service = await authorized_service(request)
    return await _start(request, version, service, resumable.for_project(service.project))


@router.get("/{version}/files", dependencies=[Depends(authorized_service)])
async def list_files(
    request: Request,
    version: VersionDep,
    service: ServiceDep,
    pageSize: str | None = None,
    pageToken: str | None = None,
) -> JSONResponse:
    after = _page_token(pageToken) if pageToken else None
    try:
        records, has_more = await service.list_files(
            purpose=None, after=after, limit=_page_size(pageSize, service), order="desc"
        )
    except NotFound:
        raise InvalidRequest(f"Invalid page token: {pageToken}.") from None
    body: dict[str, Any] = {}
    if records:
        body["files"] = [_resource(r, request, version, service) for r in records]
    if has_more:
        body["nextPageToken"] = to_gemini_id(records[-1].id)
    return JSONResponse(body)


@router.api_route(
    "/{version}/files/{file_id}:download", methods=["GET", "HEAD"], dependencies=[Depends(authorized_service)]
)
async def download_file(file_id: str, request: Request, version: VersionDep, service: ServiceDep) -> Response:
    record = await _get(file_id, service)
    service.check_downloadable(record, _vendor_allows_download, file_id)
    return await download_response(request, record, service)


@router.api_route(
    "/{version}/files/{reference:path}:download",
    methods=["GET", "HEAD"],
    dependencies=[Depends(authorized_service)],
    include_in_schema=False,
)
async def download_file_by_uri(
    reference: str, request: Request, version: VersionDep, service: ServiceDep
) -> Response:
    """`files/<a File's uri>:download`: the SDKs strip a File's `uri` down to its id only when
    it starts with `https://`, so `files.download` of @google/genai for Node (given a File) and
    of google-genai (given a uri) ask for `files/http://HOST/v1beta/files/<id>:download` (or,
    after URL normalisation, `http:/HOST/…`). A path ending in `files/<id>` names that file of
    the caller's project, as the plain route does; the key is checked as usual."""
    match = _FILE_AT_END.search(reference)
    if match is None:
        raise FileNotFound(reference)
    return await download_file(match[1], request, version, service)


@router.get("/{version}/files/{file_id}", dependencies=[Depends(authorized_service)])
async def get_file(file_id: str, request: Request, version: VersionDep, service: ServiceDep) -> JSONResponse:
    return JSONResponse(_resource(await _get(file_id, service), request, version, service))


@router.delete("/{version}/files/{file_id}", dependencies=[Depends(authorized_service)])
async def delete_file(file_id: str, version: VersionDep, service: ServiceDep) -> JSONResponse:
    try:
        await service.delete_file(from_gemini_id(file_id) or "")
    except FileNotFound:
        raise FileNotFound(file_id) from None
    return JSONResponse({})


def create_gemini_app() -> FastAPI:
    return create_dialect_app("FileDock (Gemini)", router, gemini_errors.RENDERER)


async def _start(
    request: Request, version: str, service: FileService, resumable: ResumableUploads
) -> Response:
    if request.headers.get("x-goog-upload-protocol", "").lower() != "resumable":
        raise InvalidRequest(
            "Only the resumable upload protocol (X-Goog-Upload-Protocol: resumable) is supported."
        )
    if request.headers.get("x-goog-upload-command", "").strip().lower() != "start":
        raise InvalidRequest("A resumable upload starts with X-Goog-Upload-Command: start.")
    file = await _start_body(request)
    display_name = _field(file, "display_name", "displayName") or request.headers.get(
        "x-goog-upload-file-name"
    )
    if display_name is not None and len(str(display_name)) > MAX_DISPLAY_NAME:
        raise InvalidRequest(f"displayName is longer than {MAX_DISPLAY_NAME} characters.")
    limit = service.settings.max_filename_bytes
    check_filename(str(display_name or ""), limit, param="displayName", label="displayName")
    mime_type = request.headers.get("x-goog-upload-header-content-type") or _field(
        file, "mime_type", "mimeType"
    )
    lifetime = service.settings.gemini_file_lifetime_seconds
    upload = await resumable.start(
        filename=str(display_name or ""),
        mime_type=check_mime_type(str(mime_type or "application/octet-stream"), param="mimeType"),
        size=_declared_size(request, file),
        limit=service.settings.gemini_max_file_bytes,
        lifetime=lifetime or None,
    )
    query = f"upload_id={upload.id}&upload_protocol=resumable"
    url = f"{_public_base(request, service)}/upload/{version}/files?{query}"
    headers = {
        "x-goog-upload-url": url,
        "x-goog-upload-status": "active",
        "x-goog-upload-chunk-granularity": str(CHUNK_GRANULARITY),
        "x-goog-upload-control-url": url,
    }
    return JSONResponse({}, headers=headers)


async def _chunk(
    request: Request, upload_id: str, version: str, service: FileService, resumable: ResumableUploads
) -> Response:
    command = {c.strip().lower() for c in request.headers.get("x-goog-upload-command", "").split(",")}
    try:
        session, resumable = await resumable.get(upload_id)
        _check_chunk(session, command, request)
    except FileDockError:
        await _discard_body(request)  # so the client reads our error rather than a reset connection
        raise
    if "query" in command:
        return _status_reply(session)
    if "cancel" in command:
        await resumable.uploads.cancel(upload_id)
        return Response(headers={"x-goog-upload-status": "cancelled"})
    if session.file is not None:  # a retried finalize after a lost reply gets the same File
        return _final_reply(session.file, request, version, service)
    upload = session.upload
    if "upload" in command:
        offset = _offset(request.headers.get("x-goog-upload-offset"), upload.received_bytes)
        upload = await resumable.add_chunk(upload, offset, request.stream())
    if "finalize" in command:
        file = await resumable.finalize(upload, _session_policy(service))
        return _final_reply(file, request, version, service)
    return _status_reply(Session(upload))


def _check_chunk(session: Session, command: set[str], request: Request) -> None:
    """Every refusal that needs no byte of the chunk, made before any byte is read."""
    if command & {"query", "cancel"}:
        return
    if not command & {"upload", "finalize"}:
        raise InvalidRequest("X-Goog-Upload-Command must be upload, finalize, query or cancel.")
    if session.file is not None:
        if "finalize" not in command:
            raise InvalidRequest("The upload is already finalized.")
        return
    if "upload" in command:
        offset = _offset(request.headers.get("x-goog-upload-offset"), session.upload.received_bytes)
        check_offset(session.upload, offset)


async def _discard_body(request: Request) -> None:
    """Read and drop an unread request body, up to `MAX_DISCARDED_BYTES`; stored nowhere."""
    await discard_body(request.stream(), MAX_DISCARDED_BYTES)


def _session_policy(service: FileService) -> FilePolicy:
    return FilePolicy(SESSION_PURPOSE, service.settings.gemini_max_file_bytes)


def _status_reply(session: Session) -> Response:
    headers = {
        "x-goog-upload-status": "final" if session.file is not None else "active",
        "x-goog-upload-size-received": str(session.received),
    }
    return Response(headers=headers)


def _final_reply(record: FileRecord, request: Request, version: str, service: FileService) -> Response:
    body = {"file": _resource(record, request, version, service)}
    return JSONResponse(body, headers={"x-goog-upload-status": "final"})


async def _start_body(request: Request) -> dict[str, Any]:
    too_large = InvalidRequest("The upload start request's JSON body is too large.")
    raw = await read_capped(request.stream(), MAX_START_BODY_BYTES, too_large)
    if not raw.strip():
        return {}
    body = parse_client_json(raw, "The upload start request's JSON payload")
    file = body.get("file", {}) if isinstance(body, dict) else None
    if not isinstance(file, dict):
        raise InvalidRequest('Invalid JSON payload: expected {"file": {...}}.')
    return file


def _field(file: dict[str, Any], snake: str, camel: str) -> Any:
    """The SDK sends snake_case, REST callers camelCase: accept both."""
    return file.get(snake, file.get(camel))


def _declared_size(request: Request, file: dict[str, Any]) -> int:
    raw = request.headers.get("x-goog-upload-header-content-length")
    if raw is None:
        raw = _field(file, "size_bytes", "sizeBytes")
    if raw is None:
        raise InvalidRequest("The upload size is required: send X-Goog-Upload-Header-Content-Length.")
    text = str(raw).strip()
    if not re.fullmatch(r"[0-9]{1,19}", text):
        raise InvalidRequest(f"Invalid upload size: {raw!r}.")
    return int(text)


def _offset(raw: str | None, received: int) -> int:
    if raw is None:
        return received
    if not re.fullmatch(r"[0-9]{1,19}", raw.strip()):
        raise InvalidRequest(f"Invalid X-Goog-Upload-Offset: {raw!r}.")
    return int(raw.strip())


def _public_base(request: Request, service: FileService) -> str:
    """The URL the client reached this face of the store at: `/gemini`, or the bare root when sniffed."""
    root = str(request.scope.get("root_path", ""))
    if request.scope.get("filedock.sniffed"):
        root = root.removesuffix("/gemini")
    configured = service.settings.public_url.rstrip("/")
    if configured:
        return configured + root
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}{root}"


def _resource(record: FileRecord, request: Request, version: str, service: FileService) -> dict[str, Any]:
    downloadable = service.may_download(record, _vendor_allows_download)
    return file_resource(
        record, base=_public_base(request, service), version=version, downloadable=downloadable
    )


def _vendor_allows_download(record: FileRecord) -> bool:
    """Only generated files can be downloaded from the real API; every file here is an upload."""
    return False


async def _get(file_id: str, service: FileService) -> FileRecord:
    """The file a Gemini id names; not found in the id the client sent."""
    try:
        return await service.get_file(from_gemini_id(file_id) or "")
    except FileNotFound:
        raise FileNotFound(file_id) from None


def _page_size(raw: str | None, service: FileService) -> int:
    default, high = service.settings.gemini_default_page_size, service.settings.gemini_max_page_size
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"-?[0-9]{1,9}", raw):
        raise InvalidRequest(f"Invalid value at 'page_size' (TYPE_INT32), {raw!r}")
    value = int(raw)
    if value < 0:
        raise InvalidRequest("page_size must not be negative.")
    return min(value, high) if value else default


def _page_token(raw: str) -> str:
    core = from_gemini_id(raw)
    if core is None:
        raise InvalidRequest(f"Invalid page token: {raw}.")
    return core
