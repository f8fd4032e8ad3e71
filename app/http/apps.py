"""Each non-OpenAI dialect is a sub-application mounted at its prefix, rendering its own errors.

The sub-apps share the root app's `state` (the services opened in its lifespan). Errors raised
in a sub-app's routes, and its unknown routes, are rendered in that dialect's error JSON.
"""

from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig

from app.http.errors import Renderer, install_error_handlers

# FastAPI's own OpenTelemetry middleware, off on the root app and every dialect's: FileDock's
# access log and metrics record what it would, and with it on, every request of every app first
# asks OpenTelemetry whether a provider is configured (through os.environ, three times).
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_dialect_app(title: str, router: APIRouter, render: Renderer) -> FastAPI:
    sub = FastAPI(title=title, openapi_url=None, docs_url=None, redoc_url=None, telemetry=TELEMETRY_OFF)
    sub.include_router(router)
    install_error_handlers(sub, render)
    return sub
