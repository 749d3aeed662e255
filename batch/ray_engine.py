"""`heichan batch --engine ray`: the same job on Ray Data, for archives that outgrow one machine.

The tagger is applied with `map_batches` by a pool of actors (each loads the model once) running
the local engine's own `tag_chunk`, and the records are written by the local engine's writer: for
every output format a record read back from the Ray output equals the local engine's, field by
field and type by type. The output format is chosen as the local engine chooses it (`--output-format`,
else OUT's suffix: `.parquet`, `.csv`, otherwise JSONL). Output is a directory of files, one per
Ray write task (`*.jsonl`, `*.csv` with a header line, or `*.parquet`); errors (bad rows and
articles the tagger failed on) go to `OUT.errors/` as JSON lines {"where", "id", "error"}. Resume
is Ray's business here (task retries); for `kill -9`-safe resume on one machine use the local
engine.

Differences from the local engine: output order across Ray's files is not guaranteed (ids carry
identity); Ray decodes JSONL input a block at a time, so invalid UTF-8 fails that file instead of
one row; bad rows are otherwise reported exactly as the local engine reports them.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from ray.data.block import Block, BlockAccessor
from ray.data.datasource import BlockBasedFileDatasink, Datasink
from ray.data.datasource.datasink import WriteResult

from .parts import CSV_COLUMNS, _write_records, output_format
from .readers import DIRECTORY_FORMATS, Item, check_input, input_kind, record
from .run import BatchConfig, BatchError

# The rows between the tagging actors and the writer: the record travels as its JSON text,
# because Arrow cannot hold `paragraphs` natively (each paragraph's `evidence` has its own keys).
_TAGGED_COLUMNS = ("id", "where", "record", "error")


class _Tagger:
    """Ray actor: loads the model once and tags batches with the local engine's `tag_chunk`;
    rows that are already bad pass through with their error."""

    def __init__(self, model_dir: str | None, paragraphs: bool, workers: int):
        from . import run

        run._init_worker(model_dir, workers)  # this actor's process is a local-engine worker
        self.paragraphs = paragraphs

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from .run import tag_chunk

        ids, texts, fmts, wheres, errors = (
            batch.column(name).to_pylist() for name in ("id", "text", "fmt", "where", "error")
        )
        good = [i for i, error in enumerate(errors) if error is None]
        records: list[str | None] = [None] * len(ids)
        for i, result in zip(good, tag_chunk([(ids[i], texts[i], fmts[i]) for i in good], self.paragraphs)):
            if isinstance(result, str):
                errors[i] = result
            else:
                records[i] = json.dumps(result, ensure_ascii=False)
        return pa.table(
            [ids, wheres, records, errors], schema=pa.schema([(name, pa.string()) for name in _TAGGED_COLUMNS])
        )


class _RecordSink(Datasink[dict]):
    """Writes each task's records with the local engine's writer (`parts._write_records`) into
    one file of OUT, and its errors as JSON lines into one file of the errors directory. Works
    for any path or URI Ray Data can write to; each task returns its counts for the summary."""

    def __init__(self, out_uri: str, errors_uri: str, fmt: str):
        self.fmt, self.run_id = fmt, uuid.uuid4().hex[:12]
        self.out = BlockBasedFileDatasink(out_uri, file_format=fmt)  # resolves the filesystem
        self.errors = BlockBasedFileDatasink(errors_uri, file_format="jsonl")
        self.totals: dict = {"tagged": 0, "errors": 0, "labels": {}}

    def on_write_start(self, schema: Any = None) -> None:
        self.out.on_write_start()  # creates the directories; idempotent
        self.errors.on_write_start()

    def write(self, blocks: Iterable[Block], ctx: Any) -> dict:
        records, errors = [], []
        for block in blocks:
            for row in BlockAccessor.for_block(block).to_arrow().to_pylist():
                if row["error"] is None:
                    records.append(json.loads(row["record"]))
                else:
                    errors.append({"where": row["where"], "id": row["id"] or None, "error": row["error"]})
        name = f"{self.run_id}_{ctx.task_idx:06d}"  # a retried task rewrites its own files
        if records:
            with self.out.open_output_stream(posixpath.join(self.out.path, f"{name}.{self.fmt}")) as fh:
                if self.fmt == "csv":
                    fh.write((",".join(CSV_COLUMNS) + "\r\n").encode())  # as the local CSV starts
                _write_records(fh, records, self.fmt)
        if errors:
            with self.errors.open_output_stream(posixpath.join(self.errors.path, f"{name}.jsonl")) as fh:
                fh.write("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in errors).encode("utf-8"))
        labels = Counter(label for r in records for label in r["labels"])
        # the scores' keys are the model's labels in order: the summary lists counts in that order
        order = list(records[0]["scores"]) if records else []
        return {"tagged": len(records), "errors": len(errors), "labels": dict(labels), "order": order}

    def on_write_complete(self, write_result: WriteResult[dict]) -> None:
        labels: Counter = Counter()
        order: list[str] = []
        for result in write_result.write_returns:
            self.totals["tagged"] += result["tagged"]
            self.totals["errors"] += result["errors"]
            labels.update(result["labels"])
            order = order or result["order"]
        rank = {label: i for i, label in enumerate(order)}
        self.totals["labels"] = dict(sorted(labels.items(), key=lambda kv: rank.get(kv[0], len(rank))))
        if self.totals["errors"] == 0 and self.errors.has_created_dir:
            self.errors.filesystem.delete_dir(self.errors.path)

    @property
    def supports_distributed_writes(self) -> bool:
        return self.out.supports_distributed_writes and self.errors.supports_distributed_writes


def _items(batch: dict, cfg: BatchConfig, kind: str) -> dict:
    """Raw rows → id, text, fmt, where, error (the same checks as the local readers)."""
    out: dict[str, list] = {"id": [], "text": [], "fmt": [], "where": [], "error": []}

    def add(rid, text, fmt, where, error):
        for key, value in zip(out, (rid, text, fmt, where, error)):
            out[key].append(value)

    if kind == "directory":
        for path, data in zip(batch["path"], batch["bytes"]):
            fmt = DIRECTORY_FORMATS.get(Path(path).suffix.lower(), "auto")
            fmt = cfg.format if fmt == "auto" else fmt  # as the local engine: --format for .txt files
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                add(path, "", fmt, path, f"not valid UTF-8 (byte {exc.start})")
                continue
            add(path, text, fmt, path, None if text.strip() else "empty text")
        return out
    for n, raw in enumerate(batch["row"]):
        item = Item(n, "")
        try:
            row = json.loads(raw) if kind == "jsonl" else raw
        except json.JSONDecodeError as exc:
            row, item.error = None, f"invalid JSON ({exc.msg} at character {exc.pos})"
        if item.error is None:
            record(item, row, cfg.text_field, cfg.id_field)  # the local engine's checks
        where = item.id or (raw[:80] if isinstance(raw, str) else "")
        add(item.id or "", item.text or "", cfg.format, where, item.error)
    return out


def run_ray(cfg: BatchConfig, address: str | None = None) -> dict:
    import ray
    import ray.data

    started = time.monotonic()
    try:
        check_input(cfg.input, cfg.text_field, cfg.id_field, remote_ok=True)
    except (ValueError, OSError) as exc:
        raise BatchError(str(exc)) from exc
    remote = "://" in cfg.out
    out_uri = cfg.out.rstrip("/")
    errors_uri = (cfg.errors or out_uri + ".errors").rstrip("/")
    if not remote and Path(out_uri).exists():
        raise BatchError(f"{out_uri} already exists; choose another --out or delete it")
    fmt = output_format(out_uri, cfg.output_format)
    if not ray.is_initialized():
        # locally: one logical CPU per tagging actor plus one for reading and preparing rows;
        # with only `workers` CPUs the actors hold them all and the read task waits forever
        ray.init(
            address=address,
            num_cpus=None if address else cfg.workers + 1,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    kind = (
        input_kind(cfg.input) if "://" not in cfg.input else input_kind(cfg.input.rstrip("/").rsplit("/", 1)[-1] or "x")
    )
    if kind == "directory":
        ds = ray.data.read_binary_files(
            cfg.input, include_paths=True, file_extensions=[s.lstrip(".") for s in DIRECTORY_FORMATS]
        )
        ds = ds.map(
            lambda r: {
                **r,
                "path": str(Path(r["path"]).relative_to(Path(cfg.input).resolve()))
                if Path(r["path"]).is_absolute()
                else r["path"],
            }
        )
    elif kind == "jsonl":
        ds = ray.data.read_text(cfg.input, drop_empty_lines=True).rename_columns({"text": "row"})
    elif kind == "csv":
        ds = ray.data.read_csv(cfg.input).map(lambda r: {"row": r})
    else:
        ds = ray.data.read_parquet(cfg.input, columns=[cfg.id_field, cfg.text_field]).map(lambda r: {"row": r})
    # one pass over the input: bad rows ride along with the good ones to the writer
    tagged = ds.map_batches(partial(_items, cfg=cfg, kind=kind), batch_format="default").map_batches(
        _Tagger,
        fn_constructor_kwargs={"model_dir": cfg.model, "paragraphs": cfg.paragraphs, "workers": cfg.workers},
        compute=ray.data.ActorPoolStrategy(size=max(cfg.workers, 1)),
        batch_size=cfg.chunk_size,
        batch_format="pyarrow",
    )
    local = os.path.abspath  # Ray's workers need not share the driver's working directory
    sink = _RecordSink(
        out_uri if remote else local(out_uri), errors_uri if "://" in errors_uri else local(errors_uri), fmt
    )
    sink.on_write_start()  # an archive without a single good row still gets its (empty) output directory
    tagged.write_datasink(sink)
    return {
        "status": "complete",
        "engine": "ray",
        "output": out_uri,
        "output_format": fmt,
        "errors_dir": errors_uri,
        "tagged": sink.totals["tagged"],
        "errors": sink.totals["errors"],
        "elapsed_s": round(time.monotonic() - started, 2),
        "label_counts": sink.totals["labels"],
    }
