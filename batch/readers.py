"""Stream input archives as items in a fixed order: JSONL (plain, gzip, zstd, or stdin), CSV,
Parquet, or a directory of .txt/.html/.md files. A bad row becomes an item with an `error`,
never an exception, so one bad row cannot stop an archive."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DIRECTORY_FORMATS = {".txt": "auto", ".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown"}
_GZIP, _ZSTD = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"


@dataclass
class Item:
    position: int  # stable across runs: line or row index, or file index in the directory walk
    where: str  # for error messages: "file.jsonl:17", "row 4", "a/b.html"
    id: str | None = None
    text: str | None = None
    fmt: str = "auto"
    error: str | None = None


def input_kind(path: str) -> str:
    if path == "-":
        return "jsonl"
    p = Path(path)
    if p.is_dir():
        return "directory"
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".zst"):
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    return {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(last, "jsonl")


def open_binary(path: str):
    """Binary stream of `path`, gzip or zstd decompressed transparently (by magic bytes)."""
    if path == "-":
        return sys.stdin.buffer
    raw = open(path, "rb")
    magic = raw.read(4)
    raw.seek(0)
    if magic.startswith(_GZIP):
        return gzip.GzipFile(fileobj=raw)
    if magic.startswith(_ZSTD):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
    return raw


def count_rows(path: str, kind: str) -> int | None:
    """Cheap total for the progress bar when it is knowable without decompressing."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if kind == "directory":
        return sum(1 for _, _, files in os.walk(path) for f in files if Path(f).suffix.lower() in DIRECTORY_FORMATS)
    if path == "-":
        return None
    with open(path, "rb") as fh:
        if fh.read(4)[:2] in (_GZIP, _ZSTD[:2]):
            return None  # compressed: counting would mean decompressing everything twice
        fh.seek(0)
        lines = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    return lines - 1 if kind == "csv" else lines


def has_surrogate(value: str) -> bool:
    """True if `value` holds a lone surrogate (a JSON escape such as \\ud800, or an undecodable
    file name): such text cannot be encoded as UTF-8, so it can be neither tagged nor written."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def record(item: Item, row: object, text_field: str, id_field: str) -> Item:
    """Validate a parsed row into `item` (id, text, or the reason it is unusable)."""
    if not isinstance(row, dict):
        item.error = f"expected a JSON object, found {type(row).__name__}"
    elif not isinstance(row.get(id_field), (str, int)) or row.get(id_field) == "":
        item.error = f"missing id field {id_field!r}"
    elif not isinstance(row.get(text_field), str):
        item.error = f"missing text field {text_field!r} (a string)"
    elif isinstance(row[id_field], str) and has_surrogate(row[id_field]):
        item.error = f"id field {id_field!r} is not valid Unicode (a lone surrogate)"
    elif has_surrogate(row[text_field]):
        item.id = str(row[id_field])
        item.error = f"text field {text_field!r} is not valid Unicode (a lone surrogate)"
    else:
        item.id, item.text = str(row[id_field]), row[text_field]
        if not item.text.strip():
            item.error = "empty text"
    return item


def read_jsonl(path: str, text_field: str, id_field: str) -> Iterator[Item]:
    name = "stdin" if path == "-" else Path(path).name
    with open_binary(path) as fh:
        for n, raw in enumerate(fh):
            if not raw.strip():
                continue
            item = Item(n, f"{name}:{n + 1}")
            try:
                row = json.loads(raw.rstrip(b"\r\n").decode("utf-8"))
            except UnicodeDecodeError as exc:
                item.error = f"not valid UTF-8 (byte {exc.start})"
            except json.JSONDecodeError as exc:
                item.error = f"invalid JSON ({exc.msg} at character {exc.pos})"
            else:
                record(item, row, text_field, id_field)
            yield item


def _check_columns(path: str, names: list[str], text_field: str, id_field: str) -> None:
    missing = [f for f in (text_field, id_field) if f not in names]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing}; columns are {names}. Use --text-field/--id-field.")


def _csv_reader(path: str):
    csv.field_size_limit(sys.maxsize)
    fh = io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", errors="surrogateescape", newline="")
    return fh, csv.DictReader(fh)


def read_csv(path: str, text_field: str, id_field: str) -> Iterator[Item]:
    fh, reader = _csv_reader(path)
    with fh:
        for n, row in enumerate(reader):
            item = Item(n, f"{Path(path).name} row {n + 1}")
            if any("\udc80" <= c <= "\udcff" for v in row.values() if isinstance(v, str) for c in v):
                item.error = "not valid UTF-8"
            else:
                record(item, row, text_field, id_field)
            yield item


def read_parquet(path: str, text_field: str, id_field: str) -> Iterator[Item]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)
    n = 0
    for batch in table.iter_batches(batch_size=1024, columns=[id_field, text_field]):
        for row in batch.to_pylist():
            yield record(Item(n, f"{Path(path).name} row {n + 1}"), row, text_field, id_field)
            n += 1


def read_directory(path: str) -> Iterator[Item]:
    """Files in a sorted recursive walk; the id is the path relative to `path`."""
    root, n = Path(path), 0
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            suffix = Path(name).suffix.lower()
            if suffix not in DIRECTORY_FORMATS:
                continue
            file = Path(folder) / name
            rel = file.relative_to(root).as_posix()
            item = Item(n, rel, id=rel, fmt=DIRECTORY_FORMATS[suffix])
            n += 1
            if has_surrogate(rel):
                item.where = item.id = rel.encode("utf-8", "backslashreplace").decode("utf-8")
                item.error = "file name is not valid UTF-8"
                yield item
                continue
            try:
                item.text = file.read_bytes().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                item.error = f"not valid UTF-8 (byte {exc.start})"
            except OSError as exc:
                item.error = f"cannot read: {exc.strerror or exc}"
            else:
                if not item.text.strip():
                    item.error = "empty text"
            yield item


def check_input(path: str, text_field: str = "text", id_field: str = "id", remote_ok: bool = False) -> None:
    """Raise ValueError now, before any output exists, if the input cannot be read as asked."""
    if "://" in path:
        if not remote_ok:
            raise ValueError(f"{path!r} is a remote URI; the local engine reads local files (use --engine ray)")
        return  # Ray reads it and reports its own errors
    kind = input_kind(path)
    if path != "-" and not Path(path).exists():
        raise ValueError(f"input {path!r} does not exist")
    if kind == "csv":
        fh, reader = _csv_reader(path)
        with fh:
            _check_columns(path, list(reader.fieldnames or []), text_field, id_field)
    elif kind == "parquet":
        import pyarrow.parquet as pq

        _check_columns(path, pq.ParquetFile(path).schema_arrow.names, text_field, id_field)


def read_items(path: str, text_field: str = "text", id_field: str = "id") -> Iterator[Item]:
    kind = input_kind(path)
    if kind == "directory":
        return read_directory(path)
    return {"jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet}[kind](path, text_field, id_field)
