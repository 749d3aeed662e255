"""`heichan batch --engine ray`: the same job on Ray Data, for archives that outgrow one machine.

The tagger is applied with `map_batches` by a pool of actors (each loads the model once); output
records have the same shape as the local engine's. Output is a directory of files (Ray writes
one per block); errors go to `OUT.errors/`. Resume is Ray's business here (task retries); for
`kill -9`-safe resume on one machine use the local engine.

Differences from the local engine: output order across Ray's files is not guaranteed (ids carry
identity); Ray decodes JSONL input a block at a time, so invalid UTF-8 fails that file instead of
one row; bad rows are otherwise reported exactly as the local engine reports them.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from .readers import DIRECTORY_FORMATS, Item, check_input, input_kind, record
from .run import BatchConfig, BatchError


class _Tagger:
    """Ray actor: loads the model once, tags batches of valid items."""

    def __init__(self, model_dir: str | None, paragraphs: bool):
        from heichan.model import load_tagger

        self.tagger, self.paragraphs = load_tagger(model_dir), paragraphs

    def __call__(self, batch: dict) -> dict:
        from heichan.model import tag_article

        out = {"id": [], "labels": [], "scores": []}
        if self.paragraphs:
            out.update(text=[], paragraphs=[])
        for rid, text, fmt in zip(batch["id"], batch["text"], batch["fmt"]):
            result = tag_article(self.tagger, text, evidence=self.paragraphs, fmt=fmt)
            out["id"].append(rid)
            out["labels"].append(result.labels)
            out["scores"].append(result.scores)  # every row has the same keys: one Arrow struct type
            if self.paragraphs:
                out["text"].append(result.text)
                out["paragraphs"].append(json.dumps(result.to_record()["paragraphs"], ensure_ascii=False))
        return out


def _items(batch: dict, cfg: BatchConfig, kind: str) -> dict:
    """Raw rows → id, text, fmt, where, error (the same checks as the local readers)."""
    out = {"id": [], "text": [], "fmt": [], "where": [], "error": []}

    def add(rid, text, fmt, where, error):
        for key, value in zip(out, (rid, text, fmt, where, error)):
            out[key].append(value)

    if kind == "directory":
        for path, data in zip(batch["path"], batch["bytes"]):
            fmt = DIRECTORY_FORMATS.get(Path(path).suffix.lower(), "auto")
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
    errors_uri = cfg.errors or out_uri + ".errors"
    out, errors_dir = Path(out_uri), Path(errors_uri)  # only used for local paths
    if not remote and out.exists():
        raise BatchError(f"{out} already exists; choose another --out or delete it")
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
    items = ds.map_batches(_items, fn_kwargs={"cfg": cfg, "kind": kind}, batch_format="default")
    items.filter(lambda r: r["error"] is not None).select_columns(["where", "id", "error"]).write_json(errors_uri)
    tagged = (
        items.filter(lambda r: r["error"] is None)
        .select_columns(["id", "text", "fmt"])
        .map_batches(
            _Tagger,
            fn_constructor_kwargs={"model_dir": cfg.model, "paragraphs": cfg.paragraphs},
            concurrency=max(cfg.workers, 1),
            batch_size=cfg.chunk_size,
            batch_format="default",
        )
    )
    fmt = cfg.output_format or "jsonl"
    {"jsonl": tagged.write_json, "parquet": tagged.write_parquet, "csv": tagged.write_csv}[fmt](out_uri)
    n_ok, n_err, labels = 0, 0, {}
    for file in sorted(out.glob("*.json")) if fmt == "jsonl" and not remote else []:
        for line in file.read_text(encoding="utf-8").splitlines():
            n_ok += 1
            for label in json.loads(line)["labels"]:
                labels[label] = labels.get(label, 0) + 1
    for file in sorted(errors_dir.glob("*.json")) if not remote else []:
        n_err += sum(1 for _ in file.open(encoding="utf-8"))
    return {
        "status": "complete",
        "engine": "ray",
        "output": out_uri,
        "errors_dir": errors_uri,
        "tagged": n_ok if fmt == "jsonl" and not remote else None,
        "errors": n_err if not remote else None,
        "elapsed_s": round(time.monotonic() - started, 2),
        "label_counts": labels,
    }
