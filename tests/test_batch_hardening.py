"""`heichan batch` hardening: lone surrogates, a parts directory without its run file, disk full,
every row failing, and a missing output directory."""

import errno
import json
import os

import pytest

from heichan.batch import BatchConfig, BatchError, run_batch
from heichan.batch import parts as parts_module
from heichan.batch.parts import PartStore
from heichan.batch.readers import read_directory
from heichan.cli import main


def fast_config(*args, **kwargs) -> BatchConfig:
    return BatchConfig(*args, **{"model": "fast", **kwargs})


def leftovers(root) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.name.endswith(".tmp"))


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_lone_surrogates_go_to_the_errors_file_and_resume_works(tmp_path, monkeypatch, batch_io):
    rows = batch_io.articles(12)
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    lines.insert(2, '{"id": "bad-\\ud800-id", "text": "猫池窝点被端"}')
    lines.insert(5, '{"id": "bad-text", "text": "猫池\\udc80窝点"}')
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = dict(chunk_size=4, paragraphs=True)
    out = tmp_path / "out.jsonl"

    commits = 0
    original = PartStore.commit

    def commit_then_die(self, *args):
        nonlocal commits
        commits += 1
        if commits == 3:
            raise KeyboardInterrupt  # stands in for kill -9 after two committed chunks
        return original(self, *args)

    monkeypatch.setattr(PartStore, "commit", commit_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_batch(fast_config(str(tmp_path / "in.jsonl"), str(out), **cfg))
    monkeypatch.setattr(PartStore, "commit", original)
    summary = run_batch(fast_config(str(tmp_path / "in.jsonl"), str(out), resume=True, **cfg))
    assert summary["resumed_from_position"] == 8
    assert [r["id"] for r in batch_io.read_jsonl(out)] == [r["id"] for r in rows]
    errors = batch_io.read_jsonl(tmp_path / "out.jsonl.errors.jsonl")
    assert [(e["where"], e["reason"]) for e in errors] == [
        ("in.jsonl:3", "id field 'id' is not valid Unicode (a lone surrogate)"),
        ("in.jsonl:6", "text field 'text' is not valid Unicode (a lone surrogate)"),
    ]
    assert errors[1]["id"] == "bad-text"


def test_file_name_that_is_not_utf8(tmp_path):
    os.mkdir(tmp_path / "docs")
    with open(os.path.join(os.fsencode(tmp_path / "docs"), b"bad-\xff.txt"), "wb") as fh:
        fh.write("猫池窝点".encode())
    (tmp_path / "docs" / "good.txt").write_text("猫池窝点", encoding="utf-8")
    items = list(read_directory(str(tmp_path / "docs")))
    assert [(i.where, i.error) for i in items] == [
        ("bad-\\udcff.txt", "file name is not valid UTF-8"),
        ("good.txt", None),
    ]


@pytest.mark.parametrize("resume", [False, True])
def test_parts_directory_without_run_file_is_restartable(tmp_path, resume, batch_io):
    batch_io.write_jsonl(tmp_path / "in.jsonl", batch_io.articles(6))
    (tmp_path / "out.jsonl.parts").mkdir()  # killed between mkdir and writing run.json
    (tmp_path / "out.jsonl.parts" / "run.json.tmp").write_bytes(b'{"inp')
    summary = run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"), resume=resume))
    assert summary["status"] == "complete" and summary["tagged"] == 6
    assert not (tmp_path / "out.jsonl.parts").exists()


def test_disk_full_while_committing_is_one_clear_line(tmp_path, monkeypatch, capsys, batch_io):
    batch_io.write_jsonl(tmp_path / "in.jsonl", batch_io.articles(6))
    monkeypatch.setattr(parts_module.os, "fsync", enospc)
    with pytest.raises(BatchError, match=r"cannot write .*out.jsonl: No space left on device.*--resume"):
        run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl")))
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.jsonl").exists()
    assert main(["batch", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "cli.jsonl"), "--model", "fast"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "cli.jsonl" in err and "Traceback" not in err
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_disk_full_while_assembling_resumes_without_duplicates(tmp_path, monkeypatch, suffix, batch_io):
    batch_io.write_jsonl(tmp_path / "in.jsonl", batch_io.articles(20))
    out = tmp_path / f"out.{suffix}"
    run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / f"want.{suffix}"), chunk_size=4))

    copies = 0
    copy = parts_module.shutil.copyfileobj

    def copy_then_fill_up(src, dst):
        nonlocal copies
        copies += 1
        if copies == 3:
            dst.write(b"half a part")  # a torn write, to be cut off on resume
            enospc()
        copy(src, dst)

    monkeypatch.setattr(parts_module.shutil, "copyfileobj", copy_then_fill_up)
    with pytest.raises(BatchError, match="No space left on device"):
        run_batch(fast_config(str(tmp_path / "in.jsonl"), str(out), chunk_size=4))
    assert not out.exists() and leftovers(tmp_path) == []
    parts_dir = tmp_path / f"out.{suffix}.parts"
    assert len(list(parts_dir.glob("part-*"))) == 3  # the two streamed parts are already gone
    monkeypatch.setattr(parts_module.shutil, "copyfileobj", copy)
    run_batch(fast_config(str(tmp_path / "in.jsonl"), str(out), chunk_size=4, resume=True))
    assert out.read_bytes() == (tmp_path / f"want.{suffix}").read_bytes()
    assert not parts_dir.exists()


def test_every_row_failing_is_an_error_with_a_hint(tmp_path, capsys):
    rows = [{"id": f"d{i}", "body": "猫池窝点被端"} for i in range(5)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(BatchError, match=r"every row failed \(5 rows\): is --text-field .*first error: in.jsonl:1"):
        run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl")))
    assert not (tmp_path / "out.jsonl").exists()
    assert len((tmp_path / "out.jsonl.errors.jsonl").read_text().splitlines()) == 5
    assert main(["batch", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "o.jsonl"), "--model", "fast"]) == 2
    assert "every row failed" in capsys.readouterr().err
    summary = run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"), text_field="body"))
    assert summary["tagged"] == 5


def test_missing_output_directory_is_not_created(tmp_path, batch_io):
    batch_io.write_jsonl(tmp_path / "in.jsonl", batch_io.articles(2))
    target = tmp_path / "nonexistent" / "dir" / "x.jsonl"
    with pytest.raises(BatchError, match=r"the directory of --out .*x.jsonl, .*nonexistent/dir, does not exist"):
        run_batch(fast_config(str(tmp_path / "in.jsonl"), str(target)))
    assert not (tmp_path / "nonexistent").exists()
    with pytest.raises(BatchError, match="the directory of --errors"):
        run_batch(fast_config(str(tmp_path / "in.jsonl"), str(tmp_path / "x.jsonl"), errors=str(target)))
    assert not (tmp_path / "nonexistent").exists()
