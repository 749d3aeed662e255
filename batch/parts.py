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
_META = re.compile(r"^meta-(\d{12})-(\d{12})\.json$")
CSV_COLUMNS = ("id", "labels", "scores", "paragraphs")


def output_format(path: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    suffix = Path(path).suffix.lower()
    return {".parquet": "parquet", ".csv": "csv"}.get(suffix, "jsonl")


def _json_bytes(value) -> bytes:
    """UTF-8 JSON; a lone surrogate that slipped through is written as its JSON escape (\\ud800)
    instead of failing the whole run."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "backslashreplace")


def _atomic_write(path: Path, write) -> None:
    """Write `path` through `path.tmp` (fsync, rename); on any failure (disk full…) the temp
    file is removed and the error re-raised."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
        fh.write(b"".join(_json_bytes(r) + b"\n" for r in records))
    elif fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        csv.writer(buf).writerows(_csv_row(r) for r in records)
        fh.write(buf.getvalue().encode("utf-8", "backslashreplace"))
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
        """An unfinished run: the directory with its run file. A directory without one is a run
        killed before anything was committed; `start` clears it."""
        return (self.dir / "run.json").is_file()

    def start(self, run_info: dict) -> None:
        if self.dir.is_dir():  # killed between mkdir and run.json: only temp files can be there
            for name in os.listdir(self.dir):
                if not (name.endswith(".tmp") or _PART.match(name) or name.startswith("meta-")):
                    raise OSError(f"{self.dir} holds {name!r}, which is not a batch part; move it away")
            for name in os.listdir(self.dir):
                (self.dir / name).unlink()
        self.dir.mkdir(exist_ok=True)  # never parents: a missing output directory is an error
        _atomic_write(self.dir / "run.json", lambda fh: fh.write(_json_bytes(run_info)))

    def run_info(self) -> dict:
        return json.loads((self.dir / "run.json").read_text(encoding="utf-8"))

    def commit(self, start: int, end: int, records: list[dict], errors: list[dict]) -> None:
        """Write one chunk. The meta file (errors, label counts) goes first; the output part's
        rename is the commit point."""
        name = f"{start:012d}-{end:012d}"
        meta = {"ok": len(records), "errors": errors, "labels": Counter(l for r in records for l in r["labels"])}
        _atomic_write(self.dir / f"meta-{name}.json", lambda fh: fh.write(_json_bytes(meta)))
        _atomic_write(self.dir / f"part-{name}.{self.fmt}", lambda fh: _write_records(fh, records, self.fmt))
        _fsync_dir(self.dir)

    @property
    def _state(self) -> Path:
        return self.dir / "assembled.json"

    @property
    def _partial(self) -> Path:
        return self.dir / f"assembling.{self.fmt}"

    def _assembled(self) -> dict:
        """How far the streaming assembly got: parts before `next` are already in the partial
        output (its first `size` bytes) and have been deleted."""
        try:
            return json.loads(self._state.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"next": 0, "size": 0}

    def committed(self) -> list[tuple[int, int]]:
        """The contiguous run of committed chunks from position 0; anything after a gap, or a
        meta file without its part (unless that part is already assembled), is removed so that
        it is redone."""
        done = self._assembled()["next"]
        spans = sorted((int(m[1]), int(m[2])) for m in map(_META.match, os.listdir(self.dir)) if m)
        kept, covered = [], 0
        for start, end in spans:
            name = f"{start:012d}-{end:012d}"
            if start != covered or not (end <= done or (self.dir / f"part-{name}.{self.fmt}").is_file()):
                break
            kept.append((start, end))
            covered = end
        keep = {f"part-{s:012d}-{e:012d}.{self.fmt}" for s, e in kept} | {
            f"meta-{s:012d}-{e:012d}.json" for s, e in kept
        }
        keep |= {"run.json", self._state.name, self._partial.name}
        for name in os.listdir(self.dir):
            if name not in keep:
                (self.dir / name).unlink()
        return kept

    def assemble(self, errors_path: Path) -> dict:
        """Write the errors file, then the output (each renamed into place); return the totals.
        JSONL and CSV parts are streamed into the output one at a time and deleted once their
        progress is recorded, so assembling needs about one part of extra space, and a run
        stopped while assembling (disk full, kill -9) resumes where it stopped. Parquet parts
        are copied (their footer rules out appending), which needs the output's size again."""
        spans = self.committed()
        totals: dict = {"ok": 0, "errors": 0, "labels": Counter()}

        def write_errors(fh):
            for s, e in spans:
                meta = json.loads((self.dir / f"meta-{s:012d}-{e:012d}.json").read_text(encoding="utf-8"))
                totals["ok"] += meta["ok"]
                totals["errors"] += len(meta["errors"])
                totals["labels"].update(meta["labels"])
                fh.write(b"".join(_json_bytes(x) + b"\n" for x in meta["errors"]))

        _atomic_write(errors_path, write_errors)
        parts = [(e, self.dir / f"part-{s:012d}-{e:012d}.{self.fmt}") for s, e in spans]
        if self.fmt == "parquet":
            _atomic_write(self.output, lambda fh: _concat_parquet(fh, [p for _, p in parts]))
        else:
            self._stream(parts)
        shutil.rmtree(self.dir)
        return totals

    def _stream(self, parts: list[tuple[int, Path]]) -> None:
        state = self._assembled()
        if state["next"] and not self._partial.exists():
            if self.output.exists():
                return  # renamed into place before a crash; only the cleanup was left
            raise OSError(f"{self._partial} is missing; delete {self.dir} and start over")
        with open(self._partial, "r+b" if self._partial.exists() else "wb") as fh:
            fh.truncate(state["size"])
            fh.seek(state["size"])
            if state["size"] == 0 and self.fmt == "csv":
                fh.write((",".join(CSV_COLUMNS) + "\r\n").encode())
            for end, part in parts:
                if end <= state["next"]:
                    continue
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, fh)
                fh.flush()
                os.fsync(fh.fileno())
                state = {"next": end, "size": fh.tell()}
                data = _json_bytes(state)
                _atomic_write(self._state, lambda out, data=data: out.write(data))
                part.unlink()
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(self._partial, self.output)
        _fsync_dir(self.output.parent)


def _concat_parquet(fh, parts: list[Path]) -> None:
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
