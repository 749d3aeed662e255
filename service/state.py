"""The model being served (swapped atomically) and the bounded inference pool."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from heichan.labels import Taxonomy
from heichan.model import Tagger, load_tagger

from .errors import ApiError

log = logging.getLogger("heichan.service")


class ModelHolder:
    """Requests read `tagger` once and keep that reference, so a reload never changes the model
    under a request in flight; the swap itself is a single assignment."""

    def __init__(self, on_swap=None, taxonomy: Taxonomy | None = None):
        self.taxonomy = taxonomy  # when set, every model must agree with it
        self.tagger: Tagger | None = None
        self.error: str | None = None
        self._reload_lock = threading.Lock()
        self._on_swap = on_swap

    def load(self, model_dir: str | Path | None) -> Tagger:
        """Load and validate a model directory, then swap it in. Raises ModelLoadError; the
        current model keeps serving when it does."""
        with self._reload_lock:
            tagger = load_tagger(model_dir, self.taxonomy)
            tagger.predict_proba(["预热"])  # fail here, not on the first request
            self.tagger, self.error = tagger, None
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
    `max_pending` jobs are admitted; beyond that callers get 503 + Retry-After instead of a
    queue that grows without bound."""

    def __init__(self, workers: int, max_pending: int):
        self.workers, self.max_pending = workers, max_pending
        self.executor: ThreadPoolExecutor | None = None
        self.pending = 0  # touched only from the event loop thread

    def start(self) -> None:
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="heichan-infer")

    async def run(self, fn, *args):
        if self.executor is None:
            raise ApiError(503, "not_ready", "the service is starting or stopping; retry shortly", retry_after=1)
        if self.pending >= self.max_pending:
            raise ApiError(
                503, "overloaded", f"{self.pending} requests are already being processed; retry shortly", retry_after=1
            )
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        finally:
            self.pending -= 1

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None
