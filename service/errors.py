"""Stable JSON errors, the request guard (ids, body size, UTF-8) and exception handlers."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("heichan.service")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def error_body(code: str, message: str, request_id: str) -> dict:
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "-")


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        log.warning("request %s: %s %s", _request_id(request), exc.code, exc.message)
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return JSONResponse(error_body(exc.code, exc.message, _request_id(request)), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            code = "invalid_json"
            message = "body is not valid JSON: " + "; ".join(
                str(e.get("ctx", {}).get("error", e.get("msg"))) for e in errors[:1]
            )
        else:
            code = "validation_error"
            message = "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
                for e in errors[:5]
            )
        log.warning("request %s: %s %s", _request_id(request), code, message)
        return JSONResponse(error_body(code, message, _request_id(request)), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail), _request_id(request)), exc.status_code)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        # this handler runs outside RequestGuard (Starlette's outermost layer), so it sets the id header itself
        log.exception("request %s: unhandled error", _request_id(request))
        return JSONResponse(
            error_body(
                "internal_error", "internal error; see the server log for this request id", _request_id(request)
            ),
            500,
            headers={"X-Request-ID": _request_id(request)},
        )


class RequestGuard:
    """ASGI middleware: request ids, body-size limit, UTF-8 check and metrics, before FastAPI
    parses anything. Bodies are read once, checked, and replayed to the application."""

    def __init__(self, app, max_body_bytes: int, metrics):
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        started, status = time.perf_counter(), [500]

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = list(message.get("headers", [])) + [(b"x-request-id", request_id.encode())]
            await send(message)

        try:
            if scope["method"] in ("POST", "PUT", "PATCH"):
                body = await self._read_body(headers, receive)
                if isinstance(body, tuple):  # (status, code, message): refuse before parsing
                    await self._refuse(send_with_id, request_id, *body)
                    return
                receive = _replay(body)
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            self.metrics.observe(
                scope["method"], getattr(route, "path", "unmatched"), status[0], time.perf_counter() - started
            )

    async def _read_body(self, headers: dict, receive):
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return 413, "body_too_large", f"body of {declared} bytes exceeds the limit of {self.max_body_bytes} bytes"
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return 413, "body_too_large", f"body exceeds the limit of {self.max_body_bytes} bytes"
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return 400, "invalid_utf8", f"body is not valid UTF-8 (byte {exc.start}); send UTF-8 encoded JSON"
        return body

    async def _refuse(self, send, request_id: str, status: int, code: str, message: str) -> None:
        log.warning("request %s: %s %s", request_id, code, message)
        payload = json.dumps(error_body(code, message, request_id), ensure_ascii=False).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _replay(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive
