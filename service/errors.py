"""Stable JSON errors, the request guard (ids, body size, UTF-8) and exception handlers."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("heichan.service")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SHOWN = 60  # characters of a client-supplied name (a field, a label) repeated in an error message
# an absolute path in a message ("/srv/models/v2/manifest.json"), not part of a URL or a relative path
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])(?:~|/)(?:[^\s'\"/:,;()\[\]{}]+/)*[^\s'\"/:,;()\[\]{}]*")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after
        self.headers = dict(headers or {})
        if retry_after:
            self.headers["Retry-After"] = str(retry_after)


class SafeJSONResponse(JSONResponse):
    """JSON that can always be sent: a lone surrogate that reached a message or a model's
    manifest becomes "?" instead of failing to encode (and turning the answer into a 500)."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", errors="replace")


def error_body(code: str, message: str, request_id: str) -> dict:
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def shown(value: object, limit: int = _SHOWN) -> str:
    """A client-supplied value as quoted in an error message: repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact_paths(message: str, names: dict[str, str] | None = None) -> str:
    """`message` without absolute server paths: known ones become the given names (a model
    directory → its name), any other becomes its last component."""
    for path, name in sorted((names or {}).items(), key=lambda item: -len(item[0])):
        if path:
            message = message.replace(path, name)
    return _ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or "/", message)


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "-")


def _error(request: Request, status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    log.warning("request %s: %s %s", _request_id(request), code, message[:500])
    return SafeJSONResponse(error_body(code, message, _request_id(request)), status, headers=headers)


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def validation_message(errors: list[dict], content_type: str | None) -> tuple[str, str]:
    """(code, message) for pydantic/FastAPI validation errors, without echoing large input."""
    invalid = [e for e in errors if e.get("type") == "json_invalid"]
    if invalid:
        error = invalid[0]
        reason = str(error.get("ctx", {}).get("error", error.get("msg")))
        positions = [p for p in error.get("loc", ()) if isinstance(p, int)]
        if positions:  # "Unterminated string starting at" + " character 9"; "Expecting value" + " at character 0"
            reason += f"{'' if reason.endswith(' at') else ' at'} character {positions[0]}"
        return "invalid_json", f"body is not valid JSON: {reason}"
    if not is_json(content_type) and any(tuple(e.get("loc", ())) == ("body",) for e in errors):
        got = f"got {shown(content_type)}" if content_type else "there was none"
        return "validation_error", f"body: send a JSON object with the header Content-Type: application/json ({got})"
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p)[:_SHOWN] for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {e.get('msg')}")
    more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
    return "validation_error", "; ".join(parts) + more


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return _error(request, exc.status, exc.code, exc.message, exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        code, message = validation_message(list(exc.errors()), request.headers.get("content-type"))
        return _error(request, 422, code, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        headers = dict(exc.headers or {})  # 405 carries Allow
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI could not parse the body for a reason other than a JSON syntax error:
            # JSON nested deeper than the parser's recursion limit, mostly
            nested = isinstance(exc.__cause__, RecursionError)
            reason = "nested too deeply" if nested else "cannot be parsed"
            return _error(request, 422, "invalid_json", f"body is not valid JSON: {reason}")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 405 and "Allow" in headers:
            message = f"{request.method[:20]} is not allowed here; allowed: {headers['Allow']}"
        return SafeJSONResponse(error_body(code, message, _request_id(request)), exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        # this handler runs outside RequestGuard (Starlette's outermost layer), so it sets the id header itself
        log.exception("request %s: unhandled error", _request_id(request))
        return SafeJSONResponse(
            error_body(
                "internal_error", "internal error; see the server log for this request id", _request_id(request)
            ),
            500,
            headers={"X-Request-ID": _request_id(request)},
        )


class RequestGuard:
    """ASGI middleware: request ids, body-size limit, UTF-8 check and metrics, before FastAPI
    parses anything. Bodies are read once, checked, and replayed to the application.

    A body over the limit is read and thrown away (up to `drain_bytes`) before the 413 is sent:
    clients that upload the whole body before reading the answer (urllib, curl) then get the
    413 instead of a connection reset."""

    def __init__(self, app, max_body_bytes: int, metrics, drain_bytes: int | None = None):
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics
        self.drain_bytes = drain_bytes if drain_bytes is not None else max(8 << 20, 4 * max_body_bytes)

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
                if isinstance(body, tuple):  # (status, code, message, close): refuse before parsing
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
        too_large = f"body exceeds the limit of {self.max_body_bytes} bytes"
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            message = f"body of {declared} bytes exceeds the limit of {self.max_body_bytes} bytes"
            drained = int(declared) <= self.drain_bytes and await self._drain(receive, self.drain_bytes)
            return 413, "body_too_large", message, not drained
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                drained = not message.get("more_body") or await self._drain(receive, self.drain_bytes - size)
                return 413, "body_too_large", too_large, not drained
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return 400, "invalid_utf8", f"body is not valid UTF-8 (byte {exc.start}); send UTF-8 encoded JSON", False
        return body

    @staticmethod
    async def _drain(receive, budget: int) -> bool:
        """Read and discard the rest of the body, at most `budget` bytes; True if it all came."""
        while budget >= 0:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            budget -= len(message.get("body", b""))
            if not message.get("more_body"):
                return budget >= 0
        return False

    async def _refuse(self, send, request_id: str, status: int, code: str, message: str, close: bool) -> None:
        log.warning("request %s: %s %s", request_id, code, message)
        payload = json.dumps(error_body(code, message, request_id), ensure_ascii=False).encode("utf-8")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        if close:  # the rest of the body was not read: the connection cannot carry another request
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
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
