"""Wire the FastAPI application together."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from heichan.labels import load_taxonomy
from heichan.model import ModelLoadError

from .errors import RequestGuard, SafeJSONResponse, install_handlers, redact_paths
from .metrics import Metrics
from .routes import router
from .settings import Settings
from .state import AdminWorker, InferencePool, ModelHolder

log = logging.getLogger("heichan.service")
DESCRIPTION = """Tag Chinese police bulletins and news reports about the online-account black market.

POST an article as it was scraped (text, HTML or Markdown, WeChat boilerplate included): the
service splits it into case paragraphs and returns labels, probabilities and evidence spans.
Errors are JSON `{"error": {"code", "message", "request_id"}}` with stable codes."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()
    taxonomy = load_taxonomy(settings.taxonomy) if settings.taxonomy else None
    holder = ModelHolder(
        on_swap=lambda t: metrics.set_model(t.name, t.version, t.taxonomy_version),
        taxonomy=taxonomy,
        workers=settings.workers,
    )
    pool = InferencePool(settings.workers, settings.max_pending)
    admin = AdminWorker()

    def load_initial() -> None:
        try:
            holder.load(settings.model_dir)
        except ModelLoadError as exc:
            log.error("cannot load the model: %s", exc)
            holder.error = redact_paths(f"cannot load the model: {exc}")  # /readyz shows it

    loading = threading.Lock()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # The lifespan may run more than once (some ASGI test transports restart it per call):
        # the pool restarts each time, the model loads only once.
        pool.start()
        admin.start()
        if holder.tagger is None and loading.acquire(blocking=False):
            # load in the background: /healthz answers at once, /readyz turns 200 when the model is in
            threading.Thread(target=load_initial, name="heichan-load", daemon=True).start()
        yield
        pool.shutdown()
        admin.shutdown()

    app = FastAPI(
        title="heichan",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
    )
    app.state.settings, app.state.metrics, app.state.holder = settings, metrics, holder
    app.state.pool, app.state.admin = pool, admin
    install_handlers(app)
    app.include_router(router)
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        # the batch cap is a setting: the schema states the one this server enforces
        if app.openapi_schema is None:
            schema = generate_openapi()  # also kept as app.openapi_schema
            articles = schema["components"]["schemas"]["BatchRequest"]["properties"]["articles"]
            articles["maxItems"] = settings.max_batch
            return schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes, metrics=metrics)
    return app
