"""`heichan batch --engine ray` on a local Ray instance started by the test."""

import json

import pytest
from test_batch import articles, read_jsonl, write_jsonl

from heichan.batch import BatchConfig, run_batch
from heichan.batch.ray_engine import run_ray


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def ray_records(out_dir):
    return [
        json.loads(line) for f in sorted(out_dir.glob("*.json")) for line in f.read_text(encoding="utf-8").splitlines()
    ]


def test_ray_engine_gives_the_local_engines_records(tmp_path, ray_local):
    ids = write_jsonl(tmp_path / "in.jsonl", articles(150, seed=5), bad_every=50)
    run_batch(BatchConfig(str(tmp_path / "in.jsonl"), str(tmp_path / "local.jsonl")))
    summary = run_ray(BatchConfig(str(tmp_path / "in.jsonl"), str(tmp_path / "ray-out"), workers=2, chunk_size=32))
    local = {r["id"]: r for r in read_jsonl(tmp_path / "local.jsonl")}
    remote = ray_records(tmp_path / "ray-out")
    assert sorted(r["id"] for r in remote) == sorted(ids)
    assert all(r == local[r["id"]] for r in remote)
    assert summary["tagged"] == 150 and summary["errors"] == len(read_jsonl(tmp_path / "local.jsonl.errors.jsonl")) == 3


def test_ray_engine_reads_a_directory(tmp_path, ray_local):
    root = tmp_path / "archive"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("民警查获猫池设备6台、手机卡900余张。", encoding="utf-8")
    (root / "sub" / "b.html").write_text("<p>钱某收购他人社交账号转卖给诈骗团伙。</p>", encoding="utf-8")
    (root / "sub" / "bad.md").write_bytes("猫池".encode("gb18030"))
    summary = run_ray(BatchConfig(str(root), str(tmp_path / "out"), workers=1))
    records = {r["id"]: r for r in ray_records(tmp_path / "out")}
    assert set(records) == {"a.txt", "sub/b.html"} and "modem_pool" in records["a.txt"]["labels"]
    assert summary["errors"] == 1
