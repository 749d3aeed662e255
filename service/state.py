"""The model being served (validated, warmed up, swapped atomically), the bounded inference
pool with its per-request time budget, and the admin worker that loads models for reloads."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from heichan.labels import Taxonomy
from heichan.model import ModelLoadError, Tagger, load_tagger, resolve_model, tag_article
from heichan.model.artifacts import MANIFEST
from heichan.model.encoder import default_threads

from .errors import ApiError, redact_paths

log = logging.getLogger("heichan.service")
WARM_UP_TEXT = (
    "<p>警方提醒：不要出借手机卡。</p><p>民警在出租屋内查获猫池设备6台、手机卡900余张，验证码被上传到接码平台出售。</p>"
)
PREDICT_CHUNK_CHARS = 8_000  # the budget is checked between chunks of this many characters
_SHA256 = frozenset("0123456789abcdef")


class BudgetExceeded(Exception):
    """The request used up its time budget; raised between steps of its work."""


class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise BudgetExceeded(f"{self.seconds:g} s")


class BudgetedTagger(Tagger):
    """A tagger that checks a deadline between its steps: predictions run in chunks of about
    `PREDICT_CHUNK_CHARS` characters, and every evidence call checks first. Work past the
    deadline stops at the next check, so a worker thread is never held for long by a request
    that has already been answered with 503 timeout."""

    def __init__(self, inner: Tagger, deadline: Deadline):
        super().__init__(inner.labels, inner.thresholds, inner.manifest)
        self.inner, self.deadline, self.taxonomy, self.backend = inner, deadline, inner.taxonomy, inner.backend

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        parts, start = [], 0
        while start < len(texts):
            self.deadline.check()
            end, size = start, 0
            while end < len(texts) and (end == start or size + len(texts[end]) <= PREDICT_CHUNK_CHARS):
                size += len(texts[end])
                end += 1
            parts.append(np.asarray(self.inner.predict_proba(texts[start:end])))
            start = end
        return np.concatenate(parts) if parts else np.zeros((0, len(self.labels)))

    def explain(self, text: str, label_index: int) -> list[tuple[int, int, float]]:
        self.deadline.check()
        return self.inner.explain(text, label_index)


def check_manifest(model_dir: Path) -> dict:
    """Validate a model directory's manifest before anything is loaded from it: field types,
    one threshold in [0, 1] per label, and `files` entries that stay inside the directory.
    Raises ModelLoadError with a message that names the problem."""
    path = model_dir / MANIFEST
    if not path.is_file():
        raise ModelLoadError(f"{model_dir.name} has no {MANIFEST}: it is not a heichan model directory")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelLoadError(f"{MANIFEST} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ModelLoadError(f"{MANIFEST} must hold a JSON object")

    def bad(field: str, expected: str) -> ModelLoadError:
        value = manifest.get(field)
        return ModelLoadError(f"{MANIFEST}: {field!r} must be {expected}, not {type(value).__name__}")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    for field in ("format_version", "taxonomy_version"):
        if not is_int(manifest.get(field)):
            raise bad(field, "an integer")
    for field in ("backend", "name"):
        if not isinstance(manifest.get(field), str) or not manifest[field]:
            raise bad(field, "a non-empty string")
    if not (isinstance(manifest.get("version"), str) or is_int(manifest.get("version"))):
        raise bad("version", "a string")
    labels = manifest.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(l, str) and l for l in labels):
        raise bad("labels", "a non-empty list of label ids")
    if len(set(labels)) != len(labels):
        raise ModelLoadError(f"{MANIFEST}: 'labels' lists a label twice")
    thresholds = manifest.get("thresholds")
    if not isinstance(thresholds, list) or not all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and 0 <= t <= 1 for t in thresholds
    ):
        raise bad("thresholds", "a list of numbers between 0 and 1")
    if len(thresholds) != len(labels):
        raise ModelLoadError(f"{MANIFEST}: {len(thresholds)} thresholds for {len(labels)} labels; need one per label")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, str) and len(v) == 64 and set(v) <= _SHA256 for v in files.values()
    ):
        raise bad("files", "an object mapping file names to SHA-256 checksums")
    root = model_dir.resolve()
    for name in files:
        relative = PurePosixPath(name)
        inside = (
            name
            and "\\" not in name
            and "\0" not in name
            and not relative.is_absolute()
            and ".." not in relative.parts
            and (root / relative).resolve().is_relative_to(root)
        )
        if not inside:
            raise ModelLoadError(f"{MANIFEST} lists a file outside the model directory: {name[:100]!r}")
    return manifest


def warm_up(tagger: Tagger) -> None:
    """Tag a short article the way a request does (the model's own thresholds, evidence on);
    a model that cannot serve fails here, before it is swapped in."""
    result = tag_article(tagger, WARM_UP_TEXT, evidence=True)
    scores = [s for p in result.paragraphs for s in p.scores.values()]
    if not result.paragraphs or any(len(p.scores) != len(tagger.labels) for p in result.paragraphs):
        raise ModelLoadError("warm-up: the model does not return one score per label")
    if not all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores):
        raise ModelLoadError("warm-up: the model returns scores outside [0, 1]")


def public_manifest(manifest: dict) -> dict:
    """The manifest as /v1/model shows it: absolute paths (training data, taxonomy files) cut
    to their last component, non-finite numbers as null."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str):
            return redact_paths(value)
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    return clean(manifest)


class ModelHolder:
    """Requests read `tagger` once and keep that reference, so a reload never changes the model
    under a request in flight; the swap itself is a single assignment."""

    def __init__(self, on_swap=None, taxonomy: Taxonomy | None = None, workers: int = 1):
        self.workers = workers  # inference threads that share the cores
        self.taxonomy = taxonomy  # when set, every model must agree with it
        self.tagger: Tagger | None = None
        self.manifest: dict = {}  # the served model's manifest, without server paths
        self.error: str | None = None
        self._reload_lock = threading.Lock()
        self._on_swap = on_swap

    def load(self, model_dir: str | Path | None) -> Tagger:
        """Validate, load and warm up a model directory, then swap it in. Raises ModelLoadError
        (whatever went wrong); the current model keeps serving when it does."""
        with self._reload_lock:
            directory = resolve_model(model_dir)
            try:
                check_manifest(directory)
                tagger = load_tagger(directory, self.taxonomy, threads=default_threads(sharing=self.workers))
                warm_up(tagger)
            except ModelLoadError:
                raise
            except Exception as exc:  # a model directory must never take the service down
                log.exception("cannot load the model in %s", directory)
                raise ModelLoadError(f"cannot load the model: {type(exc).__name__}: {exc}") from exc
            self.manifest = public_manifest(tagger.manifest)
            self.tagger, self.error = tagger, None  # the swap
            # the model's many long-lived objects (vocabularies) leave the garbage collector's
            # view: a full collection during a request then scans only the request's objects
            gc.collect()
            gc.freeze()
            if self._on_swap:
                self._on_swap(tagger)
            log.info("serving model %s v%s (taxonomy v%s)", tagger.name, tagger.version, tagger.taxonomy_version)
            return tagger

    def current(self) -> Tagger:
        tagger = self.tagger
        if tagger is None:
            raise ApiError(503, "not_ready", self.error or "the model is still loading; retry shortly", retry_after=1)
        return tagger


class InferencePool:
    """Runs blocking inference on worker threads so the event loop stays free. At most
    `max_pending` jobs are admitted (a job counts until its thread is done with it); beyond that
    callers get 503 + Retry-After instead of a queue that grows without bound. A job that does
    not finish within its time budget is answered 503 timeout; it stops at its next deadline
    check (see BudgetedTagger), or never starts if it was still queued."""

    def __init__(self, workers: int, max_pending: int):
        self.workers, self.max_pending = workers, max_pending
        self.executor: ThreadPoolExecutor | None = None
        self.pending = 0  # touched only from the event loop thread

    def start(self) -> None:
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="heichan-infer")

    async def run(self, fn, *args, timeout: float):
        if self.executor is None:
            raise ApiError(503, "not_ready", "the service is starting or stopping; retry shortly", retry_after=1)
        if self.pending >= self.max_pending:
            raise ApiError(
                503, "overloaded", f"{self.pending} requests are already being processed; retry shortly", retry_after=1
            )
        loop = asyncio.get_running_loop()
        self.pending += 1
        future: Future = self.executor.submit(fn, *args)

        def release(_: Future) -> None:
            try:
                loop.call_soon_threadsafe(self._release)
            except RuntimeError:  # the loop is closed: the service is stopping
                pass

        future.add_done_callback(release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except (TimeoutError, BudgetExceeded):
            future.cancel()  # still queued: it never runs
            raise ApiError(
                503,
                "timeout",
                f"the request did not finish within its time budget of {timeout:g} s (HEICHAN_REQUEST_TIMEOUT); "
                "retry later, or send a shorter article",
                retry_after=5,
            ) from None

    def _release(self) -> None:
        self.pending -= 1

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None


class AdminWorker:
    """One thread of its own for model loading (reloads): a reload never waits for, nor counts
    against, the public admission limit, so a rollback works exactly when the service is busy."""

    def __init__(self) -> None:
        self.executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heichan-admin")

    async def run(self, fn, *args):
        if self.executor is None:
            raise ApiError(503, "not_ready", "the service is starting or stopping; retry shortly", retry_after=1)
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None
