"""Paragraphs/s and peak memory of each model on the same paragraphs, as ratios to the fast model.

    python bench/model_speed.py                 # 2,000 paragraphs: the shipped models
    python bench/model_speed.py --n 500 --backends fast default tiny-bert bert-base-int8

`fast` and `default` are the shipped models; `default-no-cascade` is the default model with the
encoder run on every paragraph (its cascade gate set to 0). Each model runs in its own
subprocess, so that peak RSS is its own; ONNX Runtime uses both cores (HEICHAN_THREADS overrides). The BERT models are random-init
BERT shapes for comparison: speed and memory depend on the architecture, not the weights. The
tiny BERT is fine-tuned briefly so that its int8 variant's accuracy can be compared with fp32.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

BACKENDS = ["fast", "default", "default-no-cascade", "tiny-bert", "tiny-bert-int8", "bert-base", "bert-base-int8"]
SHIPPED = ("fast", "default", "default-no-cascade")


def paragraphs(n: int) -> list[str]:
    from heichan.labels.corpus import load_split

    texts = [r.text for s in ("train", "dev", "test") for r in load_split(s)]
    return [texts[i % len(texts)] for i in range(n)]


def build_bert(out: Path, size: str) -> None:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    from heichan.model.text import normalize

    chars = sorted({c for t in paragraphs(5000) for c in normalize(t).lower() if not c.isspace()})
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars)}
    BertTokenizer(vocab=vocab).save_pretrained(out)
    torch.manual_seed(0)
    if size == "tiny":
        config = BertConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            max_position_embeddings=512,
        )
    else:  # the shape of bert-base-chinese: 12 layers, 768 hidden, 21,128-token vocabulary
        config = BertConfig(vocab_size=21128)
    BertModel(config).save_pretrained(out, safe_serialization=True)


def prepare(size: str, work: Path) -> Path:
    """Build a BERT model directory of `size` ('tiny': fine-tuned briefly; 'base': random init)."""
    from heichan.labels import load_taxonomy
    from heichan.labels.taxonomy import TAXONOMY_PATH

    taxonomy = load_taxonomy()
    base, out = work / f"{size}-base", work / f"{size}-model"
    build_bert(base, size)
    if size == "tiny":
        from heichan.labels.corpus import load_split
        from heichan.training.bert import fine_tune
        from heichan.training.data import to_labelled_set

        train, dev = (
            to_labelled_set([asdict(r) for r in load_split(s)], taxonomy.ids, taxonomy) for s in ("train", "dev")
        )
        tagger, _ = fine_tune(
            train,
            dev,
            taxonomy.ids,
            str(base),
            epochs=3,
            batch_size=16,
            learning_rate=5e-3,
            max_length=128,
            stride=32,
            progress=False,
        )
    else:
        from heichan.model.bert import BertTagger

        tagger = BertTagger.from_pretrained(str(base), taxonomy.ids, max_length=128, stride=32)
    tagger.batch_size = 32
    tagger.save(
        out,
        taxonomy_file=TAXONOMY_PATH,
        name=f"{size}-bench",
        version="bench",
        taxonomy_version=taxonomy.version,
    )
    return out


def load(backend: str, model_dir: str | None):
    from heichan.model import load_tagger

    if backend in SHIPPED:
        tagger = load_tagger("fast" if backend == "fast" else "default")
        if backend == "default-no-cascade":
            tagger.gate = 0.0
        return tagger
    return load_tagger(model_dir, quantize="int8" if backend.endswith("int8") else None)


def measure(backend: str, model_dir: str | None, n: int) -> dict:
    """Runs in its own process: load, warm up, time; peak RSS is this process's own."""
    if backend not in SHIPPED:  # the shipped models never import torch; keep their memory honest
        import torch

        torch.set_num_threads(1)
    texts = paragraphs(n)
    tagger = load(backend, model_dir)
    tagger.predict_proba(texts[:16])  # warm-up
    start = time.perf_counter()
    tagger.predict_proba(texts)
    elapsed = time.perf_counter() - start
    return {
        "backend": backend,
        "paragraphs": n,
        "seconds": round(elapsed, 2),
        "paragraphs_per_s": round(n / elapsed, 2),
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM belongs to the address space, so unlike ru_maxrss it is
    not inherited from the parent across fork+exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def quality(backend: str, model_dir: str | None, sample: list[str]) -> dict:
    """Challenge-set macro-F1 for trained models; agreement with fp32 for int8 variants."""
    from heichan.labels import load_taxonomy
    from heichan.labels.corpus import load_split
    from heichan.training.evaluate import evaluate

    out, tagger = {}, load(backend, model_dir)
    if not backend.startswith("bert-base"):  # random-init BERT-base has no meaningful accuracy
        rows = [asdict(r) for r in load_split("challenge")]
        out["challenge_macro_f1"] = evaluate(tagger, rows, load_taxonomy()).metrics["model"]["macro"]["f1"]
    if backend.endswith("int8"):
        a, b = load(backend[:-5], model_dir).predict_proba(sample), tagger.predict_proba(sample)
        out["max_abs_prob_diff_vs_fp32"] = round(float(abs(a - b).max()), 4)
        out["label_agreement_vs_fp32"] = round(float(((a >= 0.5) == (b >= 0.5)).mean()), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--backends", nargs="+", default=list(SHIPPED), choices=BACKENDS)
    parser.add_argument("--one", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.model_dir, args.n)))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {
            size: str(prepare(size, Path(tmp)))
            for size in ("tiny", "base")
            if any(b.startswith(f"{size}-bert" if size == "tiny" else "bert-base") for b in args.backends)
        }
        for backend in args.backends:
            model_dir = None if backend in SHIPPED else dirs["tiny" if backend.startswith("tiny") else "base"]
            command = [sys.executable, __file__, "--one", backend, "--n", str(args.n)]
            proc = subprocess.run(
                command + (["--model-dir", model_dir] if model_dir else []), capture_output=True, text=True
            )
            if proc.returncode:
                sys.exit(f"{backend} failed:\n{proc.stderr[-2000:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            result.update(quality(backend, model_dir, paragraphs(200)))
            results.append(result)
            print(f"done: {backend}", file=sys.stderr)
    base = next((r for r in results if r["backend"] == "fast"), results[0])
    print(f"{args.n} paragraphs from the corpus, one process each; ratios are to {base['backend']} in this run\n")
    print(f"{'backend':<16}{'para/s':>10}{'x speed':>10}{'peak MB':>10}{'x memory':>10}  quality")
    for r in results:
        extra = {
            k: v
            for k, v in r.items()
            if k not in ("backend", "paragraphs", "seconds", "paragraphs_per_s", "peak_rss_mb")
        }
        print(
            f"{r['backend']:<16}{r['paragraphs_per_s']:>10.1f}{r['paragraphs_per_s'] / base['paragraphs_per_s']:>10.3f}"
            f"{r['peak_rss_mb']:>10.0f}{r['peak_rss_mb'] / base['peak_rss_mb']:>10.2f}  {json.dumps(extra)}"
        )


if __name__ == "__main__":
    main()
