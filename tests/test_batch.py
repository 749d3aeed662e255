"""`heichan batch`: formats, errors, order, resume after kill -9, workers, service parity."""

import csv
import gzip
import json
import random
import signal
import subprocess
import sys
import time

import pytest

from heichan.batch import BatchConfig, BatchError, run_batch
from heichan.cli import main


def fast_config(*args, **kwargs) -> BatchConfig:
    """Batch behaviour does not depend on the model; the fast one keeps these tests quick."""
    return BatchConfig(*args, **{"model": "fast", **kwargs})


def test_jsonl_archive_in_order_with_errors_reported(tmp_path, batch_io):
    ids = batch_io.write_jsonl(tmp_path / "in.jsonl", batch_io.articles(120), bad_every=20)
    summary = run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"), chunk_size=16))
    out = batch_io.read_jsonl(tmp_path / "out.jsonl")
    errors = batch_io.read_jsonl(tmp_path / "out.jsonl.errors.jsonl")
    assert [r["id"] for r in out] == ids
    assert all(set(r) == {"id", "labels", "scores"} and len(r["scores"]) == 16 for r in out)
    assert [e["reason"] for e in errors] == [
        "empty text",
        "invalid JSON (Expecting value at character 27)",
        "expected a JSON object, found list",
        "missing id field 'id'",
        "not valid UTF-8 (byte 28)",
        "missing text field 'text' (a string)",
    ]
    assert errors[0]["where"] == "in.jsonl:2" and errors[0]["id"] == "bad-empty"
    assert summary["rows"] == 126 and summary["tagged"] == 120 and summary["errors"] == 6
    assert sum(summary["label_counts"].values()) == sum(len(r["labels"]) for r in out)
    assert not (tmp_path / "out.jsonl.parts").exists()


def test_paragraph_results_match_the_service(tmp_path, ready, batch_io):
    from fastapi.testclient import TestClient

    from heichan.service import Settings, create_app

    rows = batch_io.articles(5, seed=3)
    batch_io.write_jsonl(tmp_path / "in.jsonl", rows)
    run_batch(BatchConfig(str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"), paragraphs=True))
    with TestClient(create_app(Settings())) as client:
        ready(client)
        for row, record in zip(rows, batch_io.read_jsonl(tmp_path / "out.jsonl")):
            served = client.post("/v1/tag", json={"text": row["text"]}).json()
            assert {k: record[k] for k in ("text", "labels", "scores", "paragraphs")} == {
                k: served[k] for k in ("text", "labels", "scores", "paragraphs")
            }


def test_csv_parquet_and_compressed_inputs_give_the_same_output(tmp_path, batch_io):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    rows = batch_io.articles(40, seed=1)
    rows[3]["text"] = "第一行，带逗号\n\n“引号”与换行"  # CSV quoting
    ids = batch_io.write_jsonl(tmp_path / "in.jsonl", rows)
    raw = (tmp_path / "in.jsonl").read_bytes()
    (tmp_path / "in.jsonl.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "in.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    with open(tmp_path / "in.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, ["doc", "body"])
        writer.writeheader()
        writer.writerows({"doc": r["id"], "body": r["text"]} for r in rows)
    pq.write_table(
        pa.table({"doc": [r["id"] for r in rows], "body": [r["text"] for r in rows]}), tmp_path / "in.parquet"
    )
    reference = None
    for name, extra in (
        ("in.jsonl", {}),
        ("in.jsonl.gz", {}),
        ("in.jsonl.zst", {}),
        ("in.csv", {"text_field": "body", "id_field": "doc"}),
        ("in.parquet", {"text_field": "body", "id_field": "doc"}),
    ):
        out = tmp_path / f"out-{name}.jsonl"
        run_batch(fast_config(str(tmp_path / name), str(out), **extra))
        records = batch_io.read_jsonl(out)
        assert [r["id"] for r in records] == ids, name
        reference = reference or records
        assert records == reference, name


def test_parquet_and_csv_outputs(tmp_path, batch_io):
    import pyarrow.parquet as pq

    ids = batch_io.write_jsonl(tmp_path / "in.jsonl", batch_io.articles(30, seed=2))
    run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "out.parquet"), chunk_size=7))
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("id").to_pylist() == ids and table.num_rows == 30
    assert len(json.loads(table.column("scores")[0].as_py())) == 16
    run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "out.csv"), chunk_size=7))
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == ids and isinstance(json.loads(rows[0]["labels"]), list)


def test_directory_of_files(tmp_path, batch_io):
    root = tmp_path / "archive"
    (root / "2023" / "wechat").mkdir(parents=True)
    (root / "a.txt").write_text(
        "民警查获猫池设备6台、手机卡900余张，设备收到的验证码被上传到接码平台。", encoding="utf-8"
    )
    (root / "2023" / "b.html").write_text(
        "<div><p>二、“收号”团伙案。</p><p>钱某收购他人社交账号转卖给诈骗团伙。</p></div>", encoding="utf-8"
    )
    (root / "2023" / "wechat" / "c.md").write_text(
        "**1、某地破获接码平台案。**平台为号商提供验证码。\n\n微信扫一扫", encoding="utf-8"
    )
    (root / "2023" / "gbk.txt").write_bytes("猫池窝点".encode("gb18030"))
    (root / "2023" / "empty.md").write_text("  \n", encoding="utf-8")
    (root / "2023" / "cover.png").write_bytes(b"\x89PNG")
    run_batch(BatchConfig(str(root), str(tmp_path / "out.jsonl"), paragraphs=True))
    out = {r["id"]: r for r in batch_io.read_jsonl(tmp_path / "out.jsonl")}
    assert list(out) == ["a.txt", "2023/b.html", "2023/wechat/c.md"]  # a folder's files, then its sorted subfolders
    assert "modem_pool" in out["a.txt"]["labels"]
    assert [p["text"] for p in out["2023/b.html"]["paragraphs"]] == [
        "二、“收号”团伙案。",
        "钱某收购他人社交账号转卖给诈骗团伙。",
    ]
    assert "微信扫一扫" not in out["2023/wechat/c.md"]["text"]
    errors = {e["id"]: e["reason"] for e in batch_io.read_jsonl(tmp_path / "out.jsonl.errors.jsonl")}
    assert errors == {"2023/gbk.txt": "not valid UTF-8 (byte 2)", "2023/empty.md": "empty text"}  # C3 A8 is valid UTF-8


def test_stdin_input(tmp_path, batch_io):
    ids = batch_io.write_jsonl(tmp_path / "in.jsonl", batch_io.articles(10))
    proc = subprocess.run(
        [sys.executable, "-m", "heichan", "batch", "-", "--out", str(tmp_path / "out.jsonl"), "--model", "fast"],
        stdin=open(tmp_path / "in.jsonl", "rb"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert [r["id"] for r in batch_io.read_jsonl(tmp_path / "out.jsonl")] == ids
    assert json.loads(proc.stdout)["tagged"] == 10


def test_fail_fast_and_refusals(tmp_path, capsys, batch_io):
    batch_io.write_jsonl(tmp_path / "in.jsonl", batch_io.articles(30), bad_every=25)
    with pytest.raises(BatchError, match=r"in.jsonl:2: empty text \(--fail-fast\)"):
        run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "ff.jsonl"), fail_fast=True))
    with pytest.raises(BatchError, match="an unfinished run left .*ff.jsonl.parts; rerun with --resume"):
        run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "ff.jsonl")))
    (tmp_path / "other.jsonl").write_text('{"id": "x", "text": "猫池窝点被端"}\n', encoding="utf-8")
    with pytest.raises(BatchError, match="cannot resume: head_sha256, input, size differ"):
        run_batch(fast_config(str(tmp_path / "other.jsonl"), str(tmp_path / "ff.jsonl"), resume=True))
    run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "ok.jsonl")))
    with pytest.raises(BatchError, match="ok.jsonl already exists"):
        run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "ok.jsonl")))
    assert (
        run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "ok.jsonl"), resume=True))["status"]
        == "already complete"
    )
    assert main(["batch", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "m.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "in.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    assert main(["batch", str(tmp_path / "in.csv"), "--out", str(tmp_path / "c.jsonl")]) == 2
    assert "no column(s) ['text', 'id']" in capsys.readouterr().err


def test_two_workers_give_identical_output(tmp_path, batch_io):
    batch_io.write_jsonl(tmp_path / "in.jsonl", batch_io.articles(200), bad_every=40)
    run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "one.jsonl"), chunk_size=16))
    run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "two.jsonl"), chunk_size=16, workers=2))
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    assert (tmp_path / "one.jsonl.errors.jsonl").read_bytes() == (tmp_path / "two.jsonl.errors.jsonl").read_bytes()


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_minus_nine_and_resume_loses_and_duplicates_nothing(tmp_path, workers, batch_io):
    ids = batch_io.write_jsonl(tmp_path / "in.jsonl", batch_io.articles(1200, seed=7), bad_every=50)
    clean = tmp_path / "clean.jsonl"
    run_batch(fast_config(str(tmp_path / "in.jsonl"), str(clean), chunk_size=10))  # 120 chunks
    out = tmp_path / "out.jsonl"
    command = [
        sys.executable,
        "-m",
        "heichan",
        "batch",
        str(tmp_path / "in.jsonl"),
        "--out",
        str(out),
        "--model",
        "fast",
        "--chunk-size",
        "10",
        "--workers",
        str(workers),
    ]
    parts = tmp_path / "out.jsonl.parts"

    def committed() -> int:
        return len(list(parts.glob("part-*"))) if parts.exists() else 0

    rng, kills = random.Random(workers), 0
    for attempt in range(12):
        proc = subprocess.Popen(
            command + (["--resume"] if attempt else []), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        if kills < 5:
            # kill at a random point: the first time during start-up, then after a random
            # number of newly committed chunks (possibly mid-write of the next one)
            target = committed() + (0 if kills == 0 else rng.randint(1, 20))
            deadline = time.monotonic() + (rng.uniform(0.1, 0.8) if kills == 0 else 120)
            while proc.poll() is None and committed() < target and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.05))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                assert not out.exists() or out.read_bytes() == clean.read_bytes()  # never a corrupt final file
                continue
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr.decode()
        break
    assert kills == 5
    assert out.read_bytes() == clean.read_bytes()
    assert (tmp_path / "out.jsonl.errors.jsonl").read_bytes() == (tmp_path / "clean.jsonl.errors.jsonl").read_bytes()
    records = batch_io.read_jsonl(out)
    assert [r["id"] for r in records] == ids and len(set(r["id"] for r in records)) == len(ids)
    assert out.read_bytes().endswith(b"\n")
