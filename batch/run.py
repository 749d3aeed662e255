"""`heichan batch`: stream an archive through the tagger in chunks, in order, with resume."""

from __future__ import annotations

import errno
import hashlib
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from heichan.options import option

from .parts import PartStore, output_format
from .readers import check_input, count_rows, input_kind, read_items

log = logging.getLogger("heichan.batch")
_tagger = None  # one per worker process
_parent: int | None = None  # a pool worker's parent process


class BatchError(RuntimeError):
    """A problem the user must fix (bad arguments, mismatched resume, --fail-fast stop)."""


@dataclass
class BatchConfig:
    """The options of `heichan batch`; the command line is generated from these fields."""

    input: str = field(metadata={"help": "JSONL (plain, .gz, .zst; - for stdin), CSV, Parquet or a directory"})
    out: str = option("", "output file: .jsonl, .csv or .parquet (a directory with --engine ray)")
    resume: bool = option(False, "finish an interrupted run")
    workers: int = option(1, "worker processes")
    paragraphs: bool = option(False, "include per-paragraph results with evidence, as the service returns them")
    errors: str | None = option(None, "errors file (default: OUT.errors.jsonl)")
    text_field: str = option("text", "the text column")
    id_field: str = option("id", "the id column")
    format: str = option(
        "auto", "format of the text column (directories: from the file suffix)", ("auto", "text", "html", "markdown")
    )
    output_format: str | None = option(None, "default: from OUT's suffix", ("jsonl", "csv", "parquet"))
    model: str | None = option(None, "model directory, or a shipped model: default, fast (default: default)")
    taxonomy: str | None = option(None, "taxonomy YAML the model must agree with (default: the model's own)")
    chunk_size: int = option(256, "articles per committed chunk")
    fail_fast: bool = option(False, "stop at the first bad row")
    progress: bool | None = None  # None: a bar on a terminal, log lines otherwise

    def __post_init__(self) -> None:
        if self.workers < 1 or self.chunk_size < 1:
            raise BatchError("--workers and --chunk-size must be at least 1")
        if self.output_format not in (None, "jsonl", "csv", "parquet"):
            raise BatchError(f"unknown output format {self.output_format!r}; expected jsonl, csv or parquet")


def _watch_parent(parent: int) -> None:
    """Exit quietly once the parent is gone (kill -9), instead of dying on a broken pipe with a
    traceback when the next result cannot be sent."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _init_worker(model_dir: str | None, workers: int) -> None:
    global _tagger, _parent
    _parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    from heichan.model import load_tagger
    from heichan.model.encoder import default_threads

    _tagger = load_tagger(model_dir, threads=default_threads(sharing=workers))


def tag_chunk(items: list[tuple[str, str, str]], paragraphs: bool) -> list[dict | str]:
    """Tag (id, text, format) items: a record per item, or an error message string."""
    from heichan.model import tag_article

    out: list[dict | str] = []
    for rid, text, fmt in items:
        try:
            result = tag_article(_tagger, text, evidence=paragraphs, fmt=fmt)
        except Exception as exc:  # one bad article must not stop the archive
            out.append(f"tagging failed: {type(exc).__name__}: {exc}")
            continue
        record: dict = {"id": rid, "labels": result.labels, "scores": result.scores}
        if paragraphs:
            record.update(text=result.text, paragraphs=result.to_record()["paragraphs"])
        out.append(record)
    if _parent is not None and os.getppid() != _parent:
        os._exit(0)  # the parent was killed: sending the result would only print a BrokenPipeError
    return out


def _identity(path: str) -> dict:
    if path == "-":
        return {"input": "-"}
    p = Path(path)
    if p.is_dir():
        return {"input": str(p.resolve())}
    with open(p, "rb") as fh:
        head = hashlib.sha256(fh.read(1 << 20)).hexdigest()
    return {"input": str(p.resolve()), "size": p.stat().st_size, "head_sha256": head}


def _run_info(cfg: BatchConfig, tagger) -> dict:
    keep = ("paragraphs", "text_field", "id_field", "format", "chunk_size")
    return {
        **_identity(cfg.input),
        **{k: getattr(cfg, k) for k in keep},
        "model": {"name": tagger.name, "version": tagger.version},
    }


class _Progress:
    def __init__(self, total: int | None, done: int, enabled: bool | None):
        self.bar = None
        self.rows, self.errors, self.started, self.last_log = 0, 0, time.monotonic(), time.monotonic()
        self.total = total
        if enabled or (enabled is None and sys.stderr.isatty()):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="rows", dynamic_ncols=True, file=sys.stderr)

    def update(self, rows: int, errors: int) -> None:
        self.rows += rows
        self.errors += errors
        if self.bar is not None:
            self.bar.update(rows)
            self.bar.set_postfix(errors=self.errors)
        elif time.monotonic() - self.last_log >= 10:
            self.last_log = time.monotonic()
            rate = self.rows / max(time.monotonic() - self.started, 1e-9)
            of = f"/{self.total}" if self.total else ""
            print(f"batch: {self.rows}{of} rows, {rate:.0f} rows/s, {self.errors} errors", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def _writing(out: Path):
    """Turn a failure to write the output (disk full, permissions…) into one clear line."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None:  # our own message
            raise BatchError(str(exc)) from None
        where = f" ({exc.filename})" if exc.filename else ""
        hint = "; free some space and rerun with --resume" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise BatchError(f"cannot write {out}: {exc.strerror or exc}{where}{hint}") from None


def _check_out_dir(path: Path, what: str) -> None:
    parent = path.parent
    if not parent.is_dir():
        raise BatchError(f"the directory of {what} {path}, {parent}, does not exist; create it first")


def _first_error(errors_path: Path) -> str:
    import json

    with open(errors_path, encoding="utf-8", errors="replace") as fh:
        first = json.loads(fh.readline() or "{}")
    return f"{first.get('where', '?')}: {first.get('reason', '?')}"


def run_batch(cfg: BatchConfig) -> dict:
    """Run (or resume) a batch job; returns the summary."""
    from heichan.labels import TaxonomyError, load_taxonomy
    from heichan.model import ModelLoadError, load_tagger

    started = time.monotonic()
    try:
        check_input(cfg.input, cfg.text_field, cfg.id_field)
    except (ValueError, OSError) as exc:
        raise BatchError(str(exc)) from exc
    out = Path(cfg.out)
    fmt = output_format(cfg.out, cfg.output_format)
    errors_path = Path(cfg.errors) if cfg.errors else out.with_name(out.name + ".errors.jsonl")
    _check_out_dir(out, "--out")
    _check_out_dir(errors_path, "--errors")
    store = PartStore(out, fmt)
    if store.exists() and not cfg.resume:
        raise BatchError(
            f"an unfinished run left {store.dir}; rerun with --resume to finish it, or delete it to start over"
        )
    if out.exists() and not store.exists():
        if cfg.resume:
            return {"status": "already complete", "output": str(out)}
        raise BatchError(f"{out} already exists; choose another --out or delete it")
    try:
        taxonomy = load_taxonomy(cfg.taxonomy) if cfg.taxonomy else None
        tagger = load_tagger(cfg.model, taxonomy)
    except (ModelLoadError, TaxonomyError, OSError) as exc:
        raise BatchError(str(exc)) from exc
    info = _run_info(cfg, tagger)
    if store.exists():
        previous = store.run_info()
        if previous != info:
            changed = sorted(k for k in set(previous) | set(info) if previous.get(k) != info.get(k))
            raise BatchError(f"cannot resume: {', '.join(changed)} differ from the unfinished run in {store.dir}")
        done = store.committed()
        resume_from = done[-1][1] if done else 0
    else:
        with _writing(out):
            store.start(info)
        resume_from = 0
    items = read_items(cfg.input, cfg.text_field, cfg.id_field)
    total = count_rows(cfg.input, input_kind(cfg.input))
    progress = _Progress(total, resume_from, cfg.progress)
    pool = None
    if cfg.workers > 1:
        pool = multiprocessing.get_context("spawn").Pool(
            cfg.workers, initializer=_init_worker, initargs=(cfg.model, cfg.workers)
        )
    else:
        global _tagger
        _tagger = tagger
    try:
        _process(cfg, store, items, resume_from, pool, progress)
    finally:
        progress.close()
        if pool is not None:
            pool.terminate()
    with _writing(out):
        totals = store.assemble(errors_path)
    if totals["errors"] and not totals["ok"]:
        out.unlink(missing_ok=True)  # nothing tagged: leave no output to trip the corrected rerun
        raise BatchError(
            f"every row failed ({totals['errors']} rows): is --text-field (or --id-field) right? "
            f"(first error: {_first_error(errors_path)}; all errors in {errors_path})"
        )
    elapsed = time.monotonic() - started
    return {
        "status": "complete",
        "output": str(out),
        "errors_file": str(errors_path),
        "rows": totals["ok"] + totals["errors"],
        "tagged": totals["ok"],
        "errors": totals["errors"],
        "resumed_from_position": resume_from,
        "elapsed_s": round(elapsed, 2),
        "rows_per_s": round(progress.rows / max(elapsed, 1e-9), 1),
        "label_counts": dict(sorted(totals["labels"].items(), key=lambda kv: tagger.labels.index(kv[0]))),
    }


def _process(cfg: BatchConfig, store: PartStore, items, resume_from: int, pool, progress) -> None:
    """Chunks flow through the workers in order; at most 2 × workers chunks are in flight, so
    memory does not grow with the archive."""
    pending: deque = deque()
    in_flight = 2 * cfg.workers if pool else 0
    position = resume_from
    items = (item for item in items if item.position >= resume_from)
    while True:
        chunk = list(islice(items, cfg.chunk_size))
        if chunk:
            good = [i for i in chunk if i.error is None]
            work = [(i.id, i.text, cfg.format if i.fmt == "auto" else i.fmt) for i in good]
            if cfg.fail_fast:
                bad = next((i for i in chunk if i.error), None)
                if bad:
                    raise BatchError(f"{bad.where}: {bad.error} (--fail-fast)")
            job = pool.apply_async(tag_chunk, (work, cfg.paragraphs)) if pool else tag_chunk(work, cfg.paragraphs)
            end = chunk[-1].position + 1
            pending.append((position, end, chunk, good, job))
            position = end
        while pending and (not chunk or len(pending) > in_flight):
            start, end, items_in_chunk, good, job = pending.popleft()
            results = job.get() if pool else job
            records, errors = (
                [],
                [
                    {"position": i.position, "where": i.where, "id": i.id, "reason": i.error}
                    for i in items_in_chunk
                    if i.error
                ],
            )
            for item, result in zip(good, results):
                if isinstance(result, str):
                    if cfg.fail_fast:
                        raise BatchError(f"{item.where}: {result} (--fail-fast)")
                    errors.append({"position": item.position, "where": item.where, "id": item.id, "reason": result})
                else:
                    records.append(result)
            errors.sort(key=lambda e: e["position"])
            with _writing(store.output):
                store.commit(start, end, records, errors)
            progress.update(len(items_in_chunk), len(errors))
        if not chunk:
            return
