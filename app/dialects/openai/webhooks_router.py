"""OpenAI webhook endpoints (`client.webhooks` of the openai SDK), scoped to the caller's project.

create, retrieve, update, list, delete, rotate_secret and test as the SDK calls them, and
`GET /webhook_event_types`. FileDock's extension: `GET /webhook_endpoints/{id}/deliveries`,
each delivery's attempts and their outcome, newest first.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.core.webhooks import EVENT_TYPES, EndpointChanges, WebhookService
from app.dialects.openai.files_router import ServiceDep, authorized_service
from app.dialects.openai.json_body import (
    invalid_type,
    json_object,
    optional_str,
    query_limit,
    required,
    string_list,
)
from app.dialects.openai.wire import (
    ErrorBody,
    WebhookDeliveryList,
    WebhookEndpointDeleted,
    WebhookEndpointList,
    WebhookEndpointObject,
    WebhookEndpointTestResult,
    WebhookEventTypeList,
    delivery_json,
    json_response,
    webhook_endpoint_json,
)

DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100


async def get_webhooks(request: Request, files: ServiceDep) -> WebhookService:
    webhooks: WebhookService = request.app.state.webhooks
    return webhooks.for_project(files.project)


WebhooksDep = Annotated[WebhookService, Depends(get_webhooks)]

router = APIRouter(
    dependencies=[Depends(authorized_service)],
    responses={code: {"model": ErrorBody} for code in (400, 401, 404, 413, 503)},
)


@router.post("/webhook_endpoints", response_model=WebhookEndpointObject)
async def create_webhook_endpoint(request: Request, webhooks: WebhooksDep) -> Response:
    body = await json_object(request)
    record = await webhooks.create(
        name=required(body, "name", str),
        url=required(body, "url", str),
        event_types=string_list("event_types", required(body, "event_types", list)),
    )
    return json_response(webhook_endpoint_json(record, with_secret=True))


@router.get("/webhook_endpoints", response_model=WebhookEndpointList)
async def list_webhook_endpoints(
    webhooks: WebhooksDep, after: str | None = None, limit: str | None = None
) -> Response:
    records, has_more = await webhooks.list_endpoints(
        after=after or None, limit=query_limit(limit, default=DEFAULT_LIST_LIMIT, most=MAX_LIST_LIMIT)
    )
    first_id, last_id = (records[0].id, records[-1].id) if records else (None, None)
    data = [webhook_endpoint_json(r) for r in records]
    page = {"object": "list", "data": data, "first_id": first_id, "last_id": last_id, "has_more": has_more}
    return json_response(page)


@router.get("/webhook_endpoints/{endpoint_id}", response_model=WebhookEndpointObject)
async def retrieve_webhook_endpoint(endpoint_id: str, webhooks: WebhooksDep) -> Response:
    return json_response(webhook_endpoint_json(await webhooks.get(endpoint_id)))


@router.post("/webhook_endpoints/{endpoint_id}", response_model=WebhookEndpointObject)
async def update_webhook_endpoint(endpoint_id: str, request: Request, webhooks: WebhooksDep) -> Response:
    body = await json_object(request)
    event_types = body.get("event_types")
    if event_types is not None and not isinstance(event_types, list):
        raise invalid_type("event_types", "an array of strings", event_types)
    changes = EndpointChanges(
        name=optional_str(body, "name"),
        url=optional_str(body, "url"),
        event_types=string_list("event_types", event_types) if event_types is not None else None,
    )
    return json_response(webhook_endpoint_json(await webhooks.update(endpoint_id, changes)))


@router.delete("/webhook_endpoints/{endpoint_id}", response_model=WebhookEndpointDeleted)
async def delete_webhook_endpoint(endpoint_id: str, webhooks: WebhooksDep) -> Response:
    await webhooks.delete(endpoint_id)
    return json_response({"id": endpoint_id, "object": "webhook_endpoint.deleted", "deleted": True})


@router.post("/webhook_endpoints/{endpoint_id}/rotate_secret", response_model=WebhookEndpointObject)
async def rotate_webhook_secret(endpoint_id: str, request: Request, webhooks: WebhooksDep) -> Response:
    body = await json_object(request, empty_ok=True)
    keep = body.get("keep_old_secret_active_for_24_hours", False)
    if not isinstance(keep, bool):
        raise invalid_type("keep_old_secret_active_for_24_hours", "a boolean", keep)
    record = await webhooks.rotate_secret(endpoint_id, keep_old_for_a_day=keep)
    return json_response(webhook_endpoint_json(record, with_secret=True))


@router.post("/webhook_endpoints/{endpoint_id}/test", response_model=WebhookEndpointTestResult)
async def test_webhook_endpoint(endpoint_id: str, request: Request, webhooks: WebhooksDep) -> Response:
    event_type = required(await json_object(request), "event_type", str)
    outcome = await webhooks.test(endpoint_id, event_type)
    result = {
        "object": "webhook_endpoint.test",
        "webhook_endpoint_id": endpoint_id,
        "event_type": event_type,
        "status_code": outcome.status_code,
        "success": True,
    }
    return json_response(result)


@router.get("/webhook_endpoints/{endpoint_id}/deliveries", response_model=WebhookDeliveryList)
async def list_webhook_deliveries(
    endpoint_id: str, webhooks: WebhooksDep, limit: str | None = None
) -> Response:
    deliveries = await webhooks.deliveries(
        endpoint_id, limit=query_limit(limit, default=DEFAULT_LIST_LIMIT, most=MAX_LIST_LIMIT)
    )
    return json_response({"object": "list", "data": [delivery_json(d) for d in deliveries]})


@router.get("/webhook_event_types", response_model=WebhookEventTypeList)
async def list_webhook_event_types() -> Response:
    return json_response({"object": "list", "data": list(EVENT_TYPES)})
