"""The HTTP routes: thin, they validate, run the tagger on the pool and shape the response."""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from heichan.labels import load_taxonomy
from heichan.model import ModelLoadError, Tagger, tag_article

from .errors import ApiError, error_body
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

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "Body is not valid UTF-8 (invalid_utf8).",
        413: "Body over the size limit (body_too_large) or too many articles (batch_too_large).",
        422: "Invalid JSON (invalid_json), wrong fields or types (validation_error), empty text (empty_text), "
        "unknown label in a threshold map (unknown_label).",
        503: "Model not loaded yet (not_ready) or too many requests in progress (overloaded); see Retry-After.",
    }.items()
}
router = APIRouter()


def model_info(tagger: Tagger) -> ModelInfo:
    return ModelInfo(name=tagger.name, version=tagger.version, taxonomy_version=tagger.taxonomy_version)


def _check(tagger: Tagger, req: TagRequest, where: str = "text") -> None:
    if not req.text.strip():
        raise ApiError(422, "empty_text", f"{where} is empty or only whitespace")
    try:
        tagger.resolve_thresholds(req.threshold)
    except KeyError as exc:
        raise ApiError(422, "unknown_label", str(exc.args[0])) from exc


def _tag_all(tagger: Tagger, requests: list[TagRequest], metrics) -> list[dict]:
    out = []
    for req in requests:
        result = tag_article(tagger, req.text, evidence=req.evidence, thresholds=req.threshold, fmt=req.format)
        metrics.paragraphs.inc(len(result.paragraphs))
        out.append(result.to_record())
    return out


def _json(content: dict) -> Response:
    # The tagger's output already has the documented shape; re-validating it through pydantic
    # cost more than the tagging itself (bench/service_load.py).
    return Response(json.dumps(content, ensure_ascii=False), media_type="application/json")


@router.post("/v1/tag", response_model=TagResponse, responses=ERRORS, tags=["tagging"])
async def tag(req: TagRequest, request: Request):
    """Tag one article: paragraphs with labels, scores and evidence, plus article-level labels."""
    state = request.app.state
    tagger = state.holder.current()
    _check(tagger, req)
    (result,) = await state.pool.run(_tag_all, tagger, [req], state.metrics)
    return _json({"model": model_info(tagger).model_dump(), **result})


@router.post("/v1/tag/batch", response_model=BatchResponse, responses=ERRORS, tags=["tagging"])
async def tag_batch(req: BatchRequest, request: Request):
    """Tag up to HEICHAN_MAX_BATCH articles (default 32) in one request, results in request order."""
    state = request.app.state
    if len(req.articles) > state.settings.max_batch:
        raise ApiError(
            413, "batch_too_large", f"{len(req.articles)} articles; at most {state.settings.max_batch} per request"
        )
    tagger = state.holder.current()
    for i, article in enumerate(req.articles):
        _check(tagger, article, f"articles[{i}].text")
    results = await state.pool.run(_tag_all, tagger, req.articles, state.metrics)
    return _json({"model": model_info(tagger).model_dump(), "results": results})


@router.get("/v1/labels", tags=["metadata"], responses={503: ERRORS[503]})
async def get_labels(request: Request) -> dict:
    """The served model's taxonomy: label ids, names, chain stages, definitions and cue phrases."""
    tagger = request.app.state.holder.current()
    return (tagger.taxonomy or load_taxonomy()).to_dict()


@router.get("/v1/model", tags=["metadata"], responses={503: ERRORS[503]})
async def get_model(request: Request) -> dict:
    """The served model's manifest: labels, taxonomy version, thresholds, metrics, versions, checksums."""
    return request.app.state.holder.current().manifest


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
        return JSONResponse(error_body("not_ready", error, request.state.request_id), 503, headers={"Retry-After": "1"})
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


@router.post(
    "/v1/admin/reload",
    response_model=ReloadResponse,
    tags=["admin"],
    responses={
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)
async def reload(req: ReloadRequest, request: Request, authorization: str | None = Header(None)) -> ReloadResponse:
    """Load a model by name from the models directory and swap it in atomically. Requests in
    flight finish on the old model; a bad model is refused and the old one keeps serving."""
    _require_admin(request, authorization)
    state = request.app.state
    root = Path(state.settings.models_dir).resolve()
    candidate = (root / req.model).resolve()
    if candidate.parent != root:
        raise ApiError(422, "invalid_model_name", "a model is named by its directory name under the models directory")
    if not candidate.is_dir():
        raise ApiError(404, "model_not_found", f"no model named {req.model!r} in the models directory")
    previous = state.holder.tagger
    try:
        tagger = await state.pool.run(state.holder.load, candidate)
    except ModelLoadError as exc:
        raise ApiError(422, "invalid_model", str(exc).replace(str(candidate), req.model)) from exc
    return ReloadResponse(model=model_info(tagger), previous=model_info(previous) if previous else None)
