"""Batch throughput of the shipped model on a generated archive, for 1 and 2 workers.

    python bench/batch_throughput.py                  # 100,000 articles
    python bench/batch_throughput.py --rows 1000000 --workers 2   # memory flatness check

Reports rows/s, the peak RSS of the whole process tree (sampled from /proc every 0.1 s), and
the ratio of end-to-end batch throughput to the bare model's rows/s measured in the same run
(tag_article without evidence, in-process: what one worker does per row, minus reading,
parsing, writing and committing).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_archive(path: Path, rows: int, seed: int = 0) -> None:
    """Articles of 1–4 corpus paragraphs, about 1 KB each on average."""
    from heichan.labels.corpus import load_split

    texts = [r.text for s in ("train", "dev", "test") for r in load_split(s)]
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(rows):
            text = "\n\n".join(rng.sample(texts, rng.randint(1, 4)))
            fh.write(json.dumps({"id": f"a{i:08d}", "text": text}, ensure_ascii=False) + "\n")


def tree_rss_mb(pid: int) -> float:
    """RSS of `pid` and all its descendants."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def run(archive: Path, workers: int, out: Path, model: str) -> dict:
    proc = subprocess.Popen(
        [sys.executable, "-m", "heichan", "batch", str(archive), "--out", str(out), "--workers", str(workers)]
        + ["--model", model],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    peak, start = 0.0, time.perf_counter()
    while proc.poll() is None:
        peak = max(peak, tree_rss_mb(proc.pid))
        time.sleep(0.1)
    elapsed = time.perf_counter() - start
    summary = json.loads(proc.stdout.read())
    return {
        "workers": workers,
        "rows": summary["rows"],
        "seconds": round(elapsed, 1),
        "rows_per_s": round(summary["rows"] / elapsed, 1),
        "peak_rss_mb": round(peak),
    }


def bare_model(archive: Path, seconds: float, model: str) -> tuple[float, float]:
    from heichan.model import load_tagger, tag_article

    tagger = load_tagger(model)
    texts = []
    with open(archive, encoding="utf-8") as fh:
        for line, _ in zip(fh, range(5000)):
            texts.append(json.loads(line)["text"])
    rows = paragraphs = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        paragraphs += len(tag_article(tagger, texts[rows % len(texts)], evidence=False).paragraphs)
        rows += 1
    elapsed = time.perf_counter() - start
    return rows / elapsed, paragraphs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", default="fast", help="shipped model name or directory (default: fast, for archives)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive.jsonl"
        make_archive(archive, args.rows)
        size = archive.stat().st_size / 2**20
        bare_rows, bare_paragraphs = bare_model(archive, 10, args.model)
        results = [run(archive, w, Path(tmp) / f"out-{w}.jsonl", args.model) for w in args.workers]
    print(f"archive: {args.rows} articles, {size:.0f} MB JSONL; {os.cpu_count()} cores")
    print(
        f"bare model (segment + tag, no evidence, one process): {bare_rows:.0f} rows/s = {bare_paragraphs:.0f} paragraphs/s\n"
    )
    print(f"{'workers':>8}{'rows':>10}{'seconds':>9}{'rows/s':>9}{'peak RSS MB':>13}{'vs bare':>9}")
    for r in results:
        print(
            f"{r['workers']:>8}{r['rows']:>10}{r['seconds']:>9}{r['rows_per_s']:>9}{r['peak_rss_mb']:>13}"
            f"{r['rows_per_s'] / bare_rows:>9.2f}"
        )


if __name__ == "__main__":
    main()
