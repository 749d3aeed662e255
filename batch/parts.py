"""Crash-safe output: each chunk of input positions becomes a complete part file (temp file,
fsync, atomic rename), committed in order; the final output is assembled from the parts and
renamed into place. After `kill -9` at any moment the final output is absent or complete, and
a resumed run redoes only the chunks whose part was never committed."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

_PART = re.compile(r"^part-(\d{12})-(\d{12})\.(jsonl|csv|parquet)$")
CSV_COLUMNS = ("id", "labels", "scores", "paragraphs")


def output_format(path: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    suffix = Path(path).suffix.lower()
    return {".parquet": "parquet", ".csv": "csv"}.get(suffix, "jsonl")


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _csv_row(record: dict) -> list[str]:
    return [
        record["id"],
        json.dumps(record["labels"], ensure_ascii=False),
        json.dumps(record["scores"]),
        json.dumps(record.get("paragraphs", []), ensure_ascii=False),
    ]


def _write_records(fh, records: list[dict], fmt: str) -> None:
    if fmt == "jsonl":
        fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8"))
    elif fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        csv.writer(buf).writerows(_csv_row(r) for r in records)
        fh.write(buf.getvalue().encode("utf-8"))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            {
                "id": [r["id"] for r in records],
                "labels": [r["labels"] for r in records],
                "scores": [json.dumps(r["scores"]) for r in records],
                "paragraphs": [json.dumps(r.get("paragraphs", []), ensure_ascii=False) for r in records],
            },
            schema=pa.schema(
                [
                    ("id", pa.string()),
                    ("labels", pa.list_(pa.string())),
                    ("scores", pa.string()),
                    ("paragraphs", pa.string()),
                ]
            ),
        )
        pq.write_table(table, fh)


class PartStore:
    """The `OUTPUT.parts/` directory of an unfinished run."""

    def __init__(self, output: Path, fmt: str):
        self.output, self.fmt = output, fmt
        self.dir = output.with_name(output.name + ".parts")

    def exists(self) -> bool:
        return self.dir.is_dir()

    def start(self, run_info: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.dir / "run.json", lambda fh: fh.write(json.dumps(run_info, ensure_ascii=False).encode()))

    def run_info(self) -> dict:
        return json.loads((self.dir / "run.json").read_text(encoding="utf-8"))

    def commit(self, start: int, end: int, records: list[dict], errors: list[dict]) -> None:
        """Write one chunk. The meta file (errors, label counts) goes first; the output part's
        rename is the commit point."""
        name = f"{start:012d}-{end:012d}"
        meta = {"ok": len(records), "errors": errors, "labels": Counter(l for r in records for l in r["labels"])}
        _atomic_write(
            self.dir / f"meta-{name}.json", lambda fh: fh.write(json.dumps(meta, ensure_ascii=False).encode())
        )
        _atomic_write(self.dir / f"part-{name}.{self.fmt}", lambda fh: _write_records(fh, records, self.fmt))
        _fsync_dir(self.dir)

    def committed(self) -> list[tuple[int, int]]:
        """The contiguous run of committed chunks from position 0; anything after a gap, or a
        part without its meta file, is removed so that it is redone."""
        spans = sorted((int(m[1]), int(m[2])) for m in map(_PART.match, os.listdir(self.dir)) if m and m[3] == self.fmt)
        kept, covered = [], 0
        for start, end in spans:
            name = f"{start:012d}-{end:012d}"
            if start != covered or not (self.dir / f"meta-{name}.json").is_file():
                break
            kept.append((start, end))
            covered = end
        keep = {f"part-{s:012d}-{e:012d}.{self.fmt}" for s, e in kept} | {
            f"meta-{s:012d}-{e:012d}.json" for s, e in kept
        }
        for name in os.listdir(self.dir):
            if name != "run.json" and name not in keep:
                (self.dir / name).unlink()
        return kept

    def assemble(self, errors_path: Path) -> dict:
        """Concatenate the parts into the output and the errors file (each renamed into place);
        return the totals."""
        spans = self.committed()
        totals = {"ok": 0, "errors": 0, "labels": Counter()}

        def write_errors(fh):
            for s, e in spans:
                meta = json.loads((self.dir / f"meta-{s:012d}-{e:012d}.json").read_text(encoding="utf-8"))
                totals["ok"] += meta["ok"]
                totals["errors"] += len(meta["errors"])
                totals["labels"].update(meta["labels"])
                fh.write("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in meta["errors"]).encode("utf-8"))

        def write_output(fh):
            parts = [self.dir / f"part-{s:012d}-{e:012d}.{self.fmt}" for s, e in spans]
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                writer = None
                for part in parts:
                    table = pq.read_table(part)
                    writer = writer or pq.ParquetWriter(fh, table.schema)
                    writer.write_table(table)
                if writer:
                    writer.close()
                else:
                    _write_records(fh, [], "parquet")  # an empty archive still gives a valid file
                return
            if self.fmt == "csv":
                fh.write((",".join(CSV_COLUMNS) + "\r\n").encode())
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, fh)

        _atomic_write(errors_path, write_errors)
        _atomic_write(self.output, write_output)
        shutil.rmtree(self.dir)
        return totals
