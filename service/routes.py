"""The HTTP routes: thin, they validate, run the tagger on the pool and shape the response."""

from __future__ import annotations

import dataclasses
import hmac
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from heichan.labels import load_taxonomy
from heichan.model import ArticleResult, ModelLoadError, Tagger, tag_article
from heichan.model.article import ParagraphResult

from .errors import ApiError, SafeJSONResponse, error_body, is_json, redact_paths, shown
from .schemas import (
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    ModelInfo,
    ReloadRequest,
    ReloadResponse,
    TagRequest,
    TagResponse,
)
from .state import BudgetedTagger, Deadline

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "Body is not valid UTF-8 (invalid_utf8).",
        413: "Body over the size limit (body_too_large) or too many articles (batch_too_large).",
        422: "Invalid JSON, including JSON nested too deeply (invalid_json), wrong fields or types "
        "(validation_error), empty text (empty_text), unknown label in a threshold map (unknown_label).",
        503: "Model not loaded yet (not_ready), too many requests in progress (overloaded), or the request "
        "did not finish within its time budget (timeout); see Retry-After.",
    }.items()
}
router = APIRouter()
_PARAGRAPH_FIELDS = [f.name for f in dataclasses.fields(ParagraphResult)]


def model_info(tagger: Tagger) -> ModelInfo:
    return ModelInfo(name=tagger.name, version=tagger.version, taxonomy_version=tagger.taxonomy_version)


def _check(tagger: Tagger, req: TagRequest, where: str = "text") -> None:
    if not req.text.strip():
        raise ApiError(422, "empty_text", f"{where} is empty or only whitespace")
    if isinstance(req.threshold, dict):
        known = set(tagger.labels)
        unknown = [label for label in req.threshold if label not in known]
        if unknown:
            listed = ", ".join(shown(label) for label in unknown[:3])
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            raise ApiError(
                422,
                "unknown_label",
                f"unknown label(s) {listed}{more} in the threshold map; known labels: {', '.join(tagger.labels)}",
            )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _article_json(result: ArticleResult) -> str:
    """`result.to_record()` as JSON, one paragraph at a time: no deep copy of the result, and no
    single call that holds the interpreter for the whole of a large result."""
    head = _dumps({"text": result.text, "labels": result.labels, "scores": result.scores})
    paragraphs = ",".join(_dumps({f: getattr(p, f) for f in _PARAGRAPH_FIELDS}) for p in result.paragraphs)
    return f'{head[:-1]},"paragraphs":[{paragraphs}]}}'


def _tag_all(tagger: Tagger, requests: list[TagRequest], metrics, deadline: Deadline, batch: bool) -> bytes:
    """The whole response body, built on a worker thread (serialising a large result is work
    too), with the request's deadline checked between steps."""
    budgeted = BudgetedTagger(tagger, deadline)
    results = []
    for req in requests:
        deadline.check()
        result = tag_article(budgeted, req.text, evidence=req.evidence, thresholds=req.threshold, fmt=req.format)
        metrics.paragraphs.inc(len(result.paragraphs))
        results.append(_article_json(result))
    # The tagger's output already has the documented shape; re-validating it through pydantic
    # cost more than the tagging itself (bench/service_load.py).
    model = _dumps(model_info(tagger).model_dump())
    body = f'{{"model":{model},"results":[{",".join(results)}]}}' if batch else f'{{"model":{model},{results[0][1:]}'
    return body.encode("utf-8", errors="replace")


async def _run(request: Request, requests: list[TagRequest], batch: bool) -> Response:
    state = request.app.state
    tagger = state.holder.current()
    for i, req in enumerate(requests):
        _check(tagger, req, f"articles[{i}].text" if batch else "text")
    budget = state.settings.request_timeout
    body = await state.pool.run(_tag_all, tagger, requests, state.metrics, Deadline(budget), batch, timeout=budget)
    return Response(body, media_type="application/json")


@router.post("/v1/tag", response_model=TagResponse, responses=ERRORS, tags=["tagging"])
async def tag(req: TagRequest, request: Request):
    """Tag one article: paragraphs with labels, scores and evidence, plus article-level labels."""
    return await _run(request, [req], batch=False)


@router.post("/v1/tag/batch", response_model=BatchResponse, responses=ERRORS, tags=["tagging"])
async def tag_batch(req: BatchRequest, request: Request):
    """Tag up to HEICHAN_MAX_BATCH articles (default 32) in one request, results in request order."""
    max_batch = request.app.state.settings.max_batch
    if len(req.articles) > max_batch:
        raise ApiError(413, "batch_too_large", f"{len(req.articles)} articles; at most {max_batch} per request")
    return await _run(request, req.articles, batch=True)


@router.get("/v1/labels", tags=["metadata"], responses={503: ERRORS[503]})
async def get_labels(request: Request) -> dict:
    """The served model's taxonomy: label ids, names, chain stages, definitions and cue phrases."""
    tagger = request.app.state.holder.current()
    return (tagger.taxonomy or load_taxonomy()).to_dict()


@router.get("/v1/model", tags=["metadata"], responses={503: ERRORS[503]})
async def get_model(request: Request) -> dict:
    """The served model's manifest: labels, taxonomy version, thresholds, metrics, versions, checksums."""
    holder = request.app.state.holder
    holder.current()  # 503 until a model is loaded
    return holder.manifest  # absolute server paths removed


@router.get("/healthz", tags=["operations"])
async def healthz() -> dict:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"], responses={503: ERRORS[503]})
async def readyz(request: Request):
    """Readiness: 200 only once a model is loaded."""
    tagger = request.app.state.holder.tagger
    if tagger is None:
        error = request.app.state.holder.error or "the model is still loading"
        return SafeJSONResponse(
            error_body("not_ready", error, request.state.request_id), 503, headers={"Retry-After": "1"}
        )
    return {"status": "ready", "model": model_info(tagger).model_dump()}


@router.get("/metrics", tags=["operations"])
async def get_metrics(request: Request) -> Response:
    """Prometheus metrics: requests by status, latency histogram, paragraphs tagged, model version."""
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)


def _require_admin(request: Request, authorization: str | None) -> None:
    token = request.app.state.settings.admin_token
    if not token:
        raise ApiError(403, "admin_disabled", "admin endpoints are disabled; set HEICHAN_ADMIN_TOKEN to enable them")
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8")):
        raise ApiError(401, "unauthorized", "missing or wrong admin token (Authorization: Bearer <token>)")


async def _reload_request(request: Request) -> ReloadRequest:
    """The reload body, parsed only after the caller is authenticated."""
    content_type = request.headers.get("content-type")
    if not is_json(content_type):
        raise RequestValidationError([{"type": "model_attributes_type", "loc": ("body",), "msg": "not JSON"}])
    try:
        data = json.loads(await request.body())
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "ctx": {"error": exc.msg}}]
        ) from None
    except RecursionError:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body",),
                    "msg": "JSON decode error",
                    "ctx": {"error": "nested too deeply"},
                }
            ]
        ) from None
    try:
        return ReloadRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


@router.post(
    "/v1/admin/reload",
    response_model=ReloadResponse,
    tags=["admin"],
    responses={
        401: {"model": ErrorResponse, "description": "Missing or wrong admin token (unauthorized)."},
        403: {"model": ErrorResponse, "description": "HEICHAN_ADMIN_TOKEN is not set (admin_disabled)."},
        404: {"model": ErrorResponse, "description": "No such model in the models directory (model_not_found)."},
        422: {
            "model": ErrorResponse,
            "description": "Bad body (invalid_json, validation_error), a name that leaves the models directory "
            "(invalid_model_name), or a model that fails validation, checksums or warm-up (invalid_model).",
        },
    },
    # the body is parsed in the handler, after authentication; it is documented here
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ReloadRequest.model_json_schema()}},
        }
    },
)
async def reload(request: Request, authorization: str | None = Header(None)) -> ReloadResponse:
    """Load a model by name from the models directory and swap it in atomically. The model is
    validated (manifest schema, checksums, labels) and warmed up with its own thresholds first.
    Requests in flight finish on the old model; a bad model is refused and the old one keeps
    serving. Reloads run on a thread of their own, outside the admission limit of /v1/tag."""
    _require_admin(request, authorization)
    req = await _reload_request(request)
    state = request.app.state
    root = Path(state.settings.models_dir).resolve()
    candidate = (root / req.model).resolve()
    if candidate.parent != root:
        raise ApiError(422, "invalid_model_name", "a model is named by its directory name under the models directory")
    if not candidate.is_dir():
        raise ApiError(404, "model_not_found", f"no model named {req.model!r} in the models directory")
    previous = state.holder.tagger
    try:
        tagger = await state.admin.run(state.holder.load, candidate)
    except ModelLoadError as exc:
        names = {str(candidate): req.model, str(root / req.model): req.model, str(root): "models"}
        raise ApiError(422, "invalid_model", redact_paths(str(exc), names)) from exc
    return ReloadResponse(model=model_info(tagger), previous=model_info(previous) if previous else None)
