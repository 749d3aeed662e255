"""Paragraphs/s and peak memory of each backend on the same paragraphs, as ratios to n-gram.

    python bench/models.py                 # 2,000 paragraphs, every backend (BERT-base takes minutes)
    python bench/models.py --n 500 --backends ngram tiny-bert

Each backend runs in its own subprocess so that peak RSS is its own. BERT models are random-init
(no weights can be downloaded here): speed and memory depend on the architecture, not the
weights. The tiny BERT is fine-tuned briefly on the corpus so that its int8 variant's accuracy
can be compared with fp32; for BERT-base-sized models only label agreement is reported.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BACKENDS = ["ngram", "tiny-bert", "tiny-bert-int8", "bert-base", "bert-base-int8"]


def paragraphs(n: int) -> list[str]:
    from labels.corpus import load_split

    texts = [r.text for s in ("train", "dev", "test") for r in load_split(s)]
    return [texts[i % len(texts)] for i in range(n)]


def build_bert(out: Path, size: str) -> None:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    from model.text import normalize

    chars = sorted({c for t in paragraphs(5000) for c in normalize(t).lower() if not c.isspace()})
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars)}
    BertTokenizer(vocab=vocab).save_pretrained(out)
    torch.manual_seed(0)
    if size == "tiny":
        config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=37, max_position_embeddings=512)
    else:  # the shape of bert-base-chinese: 12 layers, 768 hidden, 21,128-token vocabulary
        config = BertConfig(vocab_size=21128)
    BertModel(config).save_pretrained(out, safe_serialization=True)


def make_tagger(backend: str, work: Path):
    """Returns (tagger, quality) where quality compares against gold or against fp32."""
    from labels import load_taxonomy
    from model import load_tagger
    from model.artifacts import write_manifest

    if backend == "ngram":
        return load_tagger(), None
    taxonomy = load_taxonomy()
    size = "tiny" if backend.startswith("tiny") else "base"
    base, out = work / f"{size}-base", work / f"{size}-model"
    build_bert(base, size)
    if size == "tiny":
        from labels.corpus import load_split
        from training.bert import fine_tune
        from training.data import to_labelled_set
        train, dev = (to_labelled_set([asdict(r) for r in load_split(s)], taxonomy.ids, taxonomy) for s in ("train", "dev"))
        tagger, _ = fine_tune(train, dev, taxonomy.ids, str(base), epochs=3, batch_size=16, learning_rate=5e-3,
                              max_length=128, stride=32, progress=False)
    else:
        from model.bert import BertTagger
        tagger = BertTagger.from_pretrained(str(base), taxonomy.ids, max_length=128, stride=32)
    tagger.batch_size = 32
    tagger.save(out)
    write_manifest(out, backend="bert", name=backend, version="bench", labels=taxonomy.ids,
                   taxonomy_version=taxonomy.version, thresholds=[0.5] * len(taxonomy.ids))
    return load_tagger(out, quantize="int8" if backend.endswith("int8") else None), out


def quality(tagger, fp32_dir, sample: list[str]) -> dict:
    """Test-split macro-F1 (trained models), and agreement with the fp32 model for int8."""
    from dataclasses import asdict as _asdict

    from labels import load_taxonomy
    from labels.corpus import load_split
    from model import load_tagger
    from training.evaluate import evaluate

    out = {}
    if tagger.backend == "ngram" or tagger.name.startswith("tiny"):
        rows = [_asdict(r) for r in load_split("test")]
        out["test_macro_f1"] = evaluate(tagger, rows, load_taxonomy()).metrics["model"]["macro"]["f1"]
    if getattr(tagger, "quantized", False):
        reference = load_tagger(fp32_dir)
        a, b = reference.predict_proba(sample), tagger.predict_proba(sample)
        out["max_abs_prob_diff_vs_fp32"] = round(float(abs(a - b).max()), 4)
        out["label_agreement_vs_fp32"] = round(float(((a >= 0.5) == (b >= 0.5)).mean()), 4)
    return out


def run_one(backend: str, n: int) -> dict:
    if backend != "ngram":  # the n-gram path never imports torch; keep its memory honest
        import torch
        torch.set_num_threads(2)
    texts = paragraphs(n)
    with tempfile.TemporaryDirectory() as tmp:
        tagger, fp32_dir = make_tagger(backend, Path(tmp))
        tagger.predict_proba(texts[:16])  # warm-up
        start = time.perf_counter()
        tagger.predict_proba(texts)
        elapsed = time.perf_counter() - start
        result = {"backend": backend, "paragraphs": n, "seconds": round(elapsed, 2),
                  "paragraphs_per_s": round(n / elapsed, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
        result.update(quality(tagger, fp32_dir, texts[:200]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--backends", nargs="+", default=BACKENDS, choices=BACKENDS)
    parser.add_argument("--one", choices=BACKENDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.n)))
        return
    results = []
    for backend in args.backends:
        proc = subprocess.run([sys.executable, __file__, "--one", backend, "--n", str(args.n)],
                              capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{backend} failed:\n{proc.stderr[-2000:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"done: {backend}", file=sys.stderr)
    base = next((r for r in results if r["backend"] == "ngram"), results[0])
    print(f"{args.n} paragraphs from the corpus, 2 threads; ratios are to {base['backend']} in this run\n")
    print(f"{'backend':<16}{'para/s':>10}{'x speed':>10}{'peak MB':>10}{'x memory':>10}  quality")
    for r in results:
        extra = {k: v for k, v in r.items() if k not in ("backend", "paragraphs", "seconds", "paragraphs_per_s", "peak_rss_mb")}
        print(f"{r['backend']:<16}{r['paragraphs_per_s']:>10.1f}{r['paragraphs_per_s'] / base['paragraphs_per_s']:>10.3f}"
              f"{r['peak_rss_mb']:>10.0f}{r['peak_rss_mb'] / base['peak_rss_mb']:>10.2f}  {json.dumps(extra)}")


if __name__ == "__main__":
    main()
