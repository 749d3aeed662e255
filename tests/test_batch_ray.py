"""`heichan batch --engine ray` on a local Ray instance started by the test."""

import csv
import json
from pathlib import Path

import pytest

from heichan.batch import BatchConfig, run_batch
from heichan.batch.ray_engine import run_ray


def fast_config(*args, **kwargs) -> BatchConfig:
    """Batch behaviour does not depend on the model; the fast one keeps these tests quick."""
    return BatchConfig(*args, **{"model": "fast", **kwargs})


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def types_of(value):
    """The value's structure with every leaf replaced by its type (keys kept in order)."""
    if isinstance(value, dict):
        return [(key, types_of(v)) for key, v in value.items()]
    if isinstance(value, list):
        return [types_of(v) for v in value]
    return type(value)


def read_output(path: Path, fmt: str) -> tuple[list, list]:
    """(header or schema, rows) of a local output file or of every file in a Ray output directory.
    Rows are parsed JSON records (jsonl), CSV rows as string lists (csv) or Arrow rows (parquet)."""
    import pyarrow.parquet as pq

    files = sorted(path.glob(f"*.{fmt}")) if path.is_dir() else [path]
    assert files, f"no .{fmt} files in {path}"
    heads, rows = [], []
    for file in files:
        if fmt == "jsonl":
            rows += [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()]
        elif fmt == "csv":
            with open(file, encoding="utf-8", newline="") as fh:
                header, *body = list(csv.reader(fh))
            heads.append(header)
            rows += body
        else:
            table = pq.read_table(file)
            heads.append(table.schema)
            rows += table.to_pylist()
    return heads, rows


def test_ray_engine_gives_the_local_engines_records(tmp_path, ray_local, batch_io):
    ids = batch_io.write_jsonl(tmp_path / "in.jsonl", batch_io.articles(30, seed=5), bad_every=10)
    run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "local.jsonl")))
    summary = run_ray(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "ray-out"), workers=2, chunk_size=8))
    local = batch_io.read_jsonl(tmp_path / "local.jsonl")
    _, remote = read_output(tmp_path / "ray-out", "jsonl")
    assert sorted(r["id"] for r in remote) == sorted(ids)
    assert sorted(remote, key=lambda r: r["id"]) == local
    local_errors = batch_io.read_jsonl(tmp_path / "local.jsonl.errors.jsonl")
    ray_errors = [e for f in (tmp_path / "ray-out.errors").glob("*.jsonl") for e in batch_io.read_jsonl(f)]
    assert summary["tagged"] == 30 and summary["errors"] == len(local_errors) == len(ray_errors) == 3
    assert sorted(e["error"] for e in ray_errors) == sorted(e["reason"] for e in local_errors)
    local_counts = run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "again.jsonl")))["label_counts"]
    assert list(summary["label_counts"].items()) == list(local_counts.items())


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_ray_output_equals_the_local_output_in_every_format(tmp_path, ray_local, batch_io, fmt):
    """With --paragraphs: the same records, field by field and type by type; Parquet with the
    local writer's columns and Arrow types, CSV with its header and cells. The format comes from
    --out's suffix, as for the local engine."""
    batch_io.write_jsonl(tmp_path / "in.jsonl", batch_io.articles(10, seed=9), bad_every=4)
    local_out, ray_out = tmp_path / f"local.{fmt}", tmp_path / f"ray.{fmt}"
    run_batch(fast_config(str(tmp_path / "in.jsonl"), str(local_out), paragraphs=True))
    summary = run_ray(fast_config(str(tmp_path / "in.jsonl"), str(ray_out), paragraphs=True, chunk_size=4))
    assert ray_out.is_dir() and summary["output_format"] == fmt
    local_heads, local_rows = read_output(local_out, fmt)
    ray_heads, ray_rows = read_output(ray_out, fmt)
    assert all(head == local_heads[0] for head in ray_heads)  # CSV header; Parquet schema (names and types)
    key = (lambda r: r["id"]) if fmt != "csv" else (lambda r: r[0])
    ray_rows.sort(key=key)
    assert len(local_rows) == summary["tagged"] == 10 and summary["errors"] == 3
    assert [types_of(r) for r in ray_rows] == [types_of(r) for r in local_rows]
    assert ray_rows == local_rows
    if fmt == "jsonl":  # the records are native JSON: paragraphs with their evidence objects
        assert all(isinstance(p["evidence"], dict) for r in ray_rows for p in r["paragraphs"])
        assert any(p["evidence"] for r in ray_rows for p in r["paragraphs"])
        lines = sorted(line for f in ray_out.glob("*.jsonl") for line in f.read_text(encoding="utf-8").splitlines())
        assert lines == sorted(local_out.read_text(encoding="utf-8").splitlines())  # byte for byte


def test_ray_engine_reads_a_directory(tmp_path, ray_local, batch_io):
    root = tmp_path / "archive"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("民警查获猫池设备6台、手机卡900余张。", encoding="utf-8")
    (root / "sub" / "b.html").write_text("<p>钱某收购他人社交账号转卖给诈骗团伙。</p>", encoding="utf-8")
    (root / "sub" / "bad.md").write_bytes("猫池".encode("gb18030"))
    summary = run_ray(fast_config(str(root), str(tmp_path / "out"), workers=1))
    records = {r["id"]: r for r in read_output(tmp_path / "out", "jsonl")[1]}
    assert set(records) == {"a.txt", "sub/b.html"} and "modem_pool" in records["a.txt"]["labels"]
    assert summary["errors"] == 1
